"""What a server's own code sees and implements: IncomingMessage, MessageHandler, Retry."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqs_rpc._attributes import AttributeValue
from sqs_rpc._errors import ConfigurationError, SqsRpcError

__all__ = ["IncomingMessage", "MessageHandler", "Retry"]


@dataclass(frozen=True)
class IncomingMessage:
    """A request (or one-way message) as a handler sees it.

    Example::

        def handle(self, message: IncomingMessage) -> Any:
            budget = message.remaining_time()       # seconds, or None without a deadline
            if budget is not None and budget < 1:
                raise TimeoutError("not enough time left")
            return {"echo": message.body}

    Attributes:
        body: the decoded payload.
        attributes: the sender's own message attributes.
        correlation_id: the call's id (None for some foreign one-way messages).
        reply_to: the reply queue URL; None for a one-way message.
        deadline: the caller's deadline (epoch seconds), or None.
        message_id: the SQS message id.
        receive_count: how many times SQS has delivered this message (1 the first time).
        queue_url: the request queue.
        group_id: the FIFO message group id, or None on a standard queue.
        max_receive_count: the request queue's ``maxReceiveCount`` (redrive policy), or None.
        traceparent, tracestate: the caller's W3C trace context, or None.
        operation: the :class:`~sqs_rpc.Service` operation the caller named, or None.
    """

    body: Any
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    correlation_id: str | None = None
    reply_to: str | None = None
    deadline: float | None = None
    message_id: str = ""
    receive_count: int = 1
    queue_url: str = ""
    group_id: str | None = None
    max_receive_count: int | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    operation: str | None = None

    @property
    def trace_headers(self) -> dict[str, str]:
        """The trace context as headers (empty without one): ``propagate.extract``'s carrier."""
        headers = {"traceparent": self.traceparent, "tracestate": self.tracestate}
        return {name: value for name, value in headers.items() if value}

    @property
    def one_way(self) -> bool:
        """True when no reply is expected."""
        return self.reply_to is None

    @property
    def last_attempt(self) -> bool:
        """True when SQS will move this message to the dead-letter queue if it is not deleted."""
        return self.max_receive_count is not None and self.receive_count >= self.max_receive_count

    def remaining_time(self) -> float | None:
        """Seconds left before the caller gives up (may be negative), or None without deadline."""
        return None if self.deadline is None else self.deadline - time.time()


class MessageHandler(ABC):
    """Subclass and implement :meth:`handle`; its return value becomes the reply.

    Example::

        class Echo(MessageHandler):
            def handle(self, message: IncomingMessage) -> Any:
                return {"echo": message.body}

        class AsyncEcho(MessageHandler):
            async def handle(self, message: IncomingMessage) -> Any:
                await asyncio.sleep(0)
                return {"echo": message.body}

    An exception raised by ``handle`` is sent to the caller as an error reply and raised there
    as :class:`~sqs_rpc.RemoteError`; raise :class:`Retry` instead to have the request
    redelivered. A plain ``handle`` runs on worker threads, concurrently; an ``async def
    handle`` runs on the poller's own event loop.
    """

    @abstractmethod
    def handle(self, message: IncomingMessage) -> Any:
        """Handle one message; return the reply payload (ignored for one-way messages)."""


class Retry(SqsRpcError):
    """Raise from a handler to leave the request for redelivery instead of replying.

    Example::

        def handle(self, message: IncomingMessage) -> Any:
            if not database.available():
                raise Retry("database down", delay=30)
            ...

    The request is not deleted and no reply is sent, so SQS delivers it again after ``delay``
    seconds (0 to 43200; None: after the queue's visibility timeout). On the last delivery
    before the redrive policy moves it to the dead-letter queue (``maxReceiveCount``), the
    caller gets an error reply of type ``Retry`` instead, so it does not wait in vain.
    """

    def __init__(self, message: str = "", *, delay: int | None = None) -> None:
        super().__init__(message)
        if delay is not None and (
            isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 43200
        ):
            raise ConfigurationError(f"Retry delay={delay!r} must be whole seconds from 0 to 43200")
        self.delay = delay
