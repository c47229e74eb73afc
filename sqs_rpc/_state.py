"""The life of a resource owner, as in httpx's ``ClientState``: unopened, opened, then closed.

Both sides use it: ``RpcClient`` and ``AsyncRpcClient`` (opened by ``with`` or their first use,
closed by ``close()``), and ``MessagePoller`` (opened by ``start()``, closed by ``stop()``).
"""

from __future__ import annotations

import enum

from sqs_rpc._errors import ClientClosedError

__all__ = ["ClientState"]


class ClientState(enum.Enum):
    """Where a client or poller is in its life. It only moves forward; closing is the end."""

    UNOPENED = "unopened"  # created: no thread, no queue, no request yet
    OPENED = "opened"  # entered, used or started: threads and a reply queue may exist
    CLOSED = "closed"  # close() or stop() ran: every use raises ClientClosedError

    def open(self, owner: str, *, closed_by: str = "closed") -> ClientState:
        """The state after a use of ``owner`` (a class name): OPENED, unless it is closed.

        Raises:
            ClientClosedError: it is closed; the message says to create a new one.
        """
        if self is ClientState.CLOSED:
            raise ClientClosedError(f"this {owner} is {closed_by}; create a new one")
        return ClientState.OPENED
