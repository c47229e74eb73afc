"""The life of a client, as in httpx's ``ClientState``: unopened, opened, then closed."""

from __future__ import annotations

import enum

from sqs_rpc._errors import ClientClosedError

__all__ = ["ClientState"]


class ClientState(enum.Enum):
    """Where a client is in its life. It only moves forward, and ``close()`` is the end.

    ``RpcClient`` and ``AsyncRpcClient`` both use it.
    """

    UNOPENED = "unopened"  # created: no thread, no queue, no request yet
    OPENED = "opened"  # entered or used: threads and a reply queue may exist
    CLOSED = "closed"  # close() ran: every use raises ClientClosedError

    def open(self, client: str) -> ClientState:
        """The state after a use of ``client`` (a class name): OPENED, unless it is closed.

        Raises:
            ClientClosedError: the client is closed; the message says to create a new one.
        """
        if self is ClientState.CLOSED:
            raise ClientClosedError(f"this {client} is closed; create a new one")
        return ClientState.OPENED
