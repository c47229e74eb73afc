"""Service: a MessageHandler that routes each request to an ``@rpc`` method by its operation.

A request names its operation in the ``SqsRpcOperation`` attribute and carries the arguments
as a JSON object. ``handle`` looks the operation up, validates the arguments against the
method's type hints, calls it and encodes its result. Everything else (deadlines, the reply
cache, visibility, FIFO, Lambda) is the poller's, as for any handler.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any, ClassVar

from sqs_rpc._errors import ServiceError, ValidationError
from sqs_rpc._models import Invalid, to_data
from sqs_rpc._operations import Operation, operations_of

from .handler import IncomingMessage, MessageHandler

__all__ = ["Service", "UnknownOperation", "runs_async"]

logger = logging.getLogger(__name__)


class UnknownOperation(ServiceError):
    """A request named no operation, or one the service does not have."""


class Service(MessageHandler):
    """A typed service: subclass it and mark its operations with :func:`~sqs_rpc.rpc`.

    Example::

        @dataclass
        class Quote:
            sku: str
            price_cents: int

        class Pricing(Service):
            @rpc
            def quote(self, sku: str, qty: int = 1) -> Quote:
                return Quote(sku, 250 * qty)

            @rpc
            async def reprice(self, sku: str) -> None: ...

        MessagePoller(queue_url, Pricing()).run()

    Callers use ``client.proxy(Pricing, queue_url)`` (or a Protocol of it). A ``Service`` is a
    :class:`~sqs_rpc.MessageHandler`: every poller option applies. Arguments that do not fit
    the hints get an error reply with code ``invalid_arguments``; an unknown operation one
    with code ``unknown_operation`` naming the known ones.
    """

    # The operations of each subclass, by wire name (built once, at class creation).
    _operations: ClassVar[dict[str, Operation]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._operations = {op.name: op for op in operations_of(cls, marked_only=True).values()}

    def handle(self, message: IncomingMessage) -> Any:
        """Route ``message`` to its operation; a coroutine for an ``async def`` one."""
        operation = self._operations.get(message.operation or "")
        if operation is None:
            known = sorted(self._operations)
            named = None if message.operation is None else message.operation[:100]
            raise UnknownOperation(
                "unknown_operation",
                f"{type(self).__name__} has no operation {named!r}; it has: {', '.join(known)}",
                details={"operation": named, "known": known},
            )
        try:
            arguments = operation.parse(message.body)
        except Invalid as exc:
            raise ValidationError(
                "invalid_arguments", f"invalid arguments to {operation.name}: {exc}", exc.errors
            ) from None
        method = getattr(self, operation.attribute)
        if operation.is_async:
            return _encoded(method(**arguments))
        return to_data(method(**arguments))


def runs_async(handler: MessageHandler, operation: str | None) -> bool:
    """True when ``handler`` answers ``operation`` with a coroutine (an ``async def`` one).

    Known before the call, so that the worker knows whether the handler will hold it.
    """
    if not isinstance(handler, Service):
        return False
    found = handler._operations.get(operation or "")
    return found is not None and found.is_async


async def _encoded(result: Coroutine[Any, Any, Any]) -> Any:
    return to_data(await result)
