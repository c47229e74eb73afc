"""Hooks: callbacks on call started/finished and message handled, for metrics and tracing.

sqs-rpc depends on no metrics library. A :class:`Hooks` object passed as ``hooks=`` to
:class:`~sqs_rpc.RpcClient`, :class:`~sqs_rpc.AsyncRpcClient` or
:class:`~sqs_rpc.MessagePoller` receives one frozen event per call or message, which an
application feeds to Prometheus, CloudWatch or OpenTelemetry. A hook that raises is logged
and ignored: it never fails a call nor stops a poller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from ._errors import ConfigurationError

__all__ = [
    "CallFinished",
    "CallOutcome",
    "CallStarted",
    "Hooks",
    "MessageHandled",
    "MessageOutcome",
    "check_hooks",
    "fire",
]

logger = logging.getLogger("sqs_rpc.hooks")

CallOutcome = Literal["ok", "remote_error", "timeout", "error", "cancelled"]
"""How a call ended: a result, an error reply, no answer in time, another failure, cancelled."""

MessageOutcome = Literal["ok", "error", "retry", "expired", "duplicate", "rejected", "undecodable"]
"""What a server did with a message; see ``docs/server.md`` for each case."""


@dataclass(frozen=True)
class CallStarted:
    """A call's request is about to be handed to SQS.

    Attributes:
        correlation_id: the call's id; its reply carries the same.
        queue_url: the request queue.
    """

    correlation_id: str
    queue_url: str


@dataclass(frozen=True)
class CallFinished:
    """A call ended.

    Attributes:
        correlation_id: the call's id.
        queue_url: the request queue.
        outcome: ``"ok"`` (a result), ``"remote_error"`` (the handler raised),
            ``"timeout"``, ``"error"`` (not sent, undecodable reply, reply queue lost, client
            closed) or ``"cancelled"``.
        duration: seconds since :class:`CallStarted`.
        error: the exception the caller gets (None for ``"ok"`` and ``"cancelled"``).
    """

    correlation_id: str
    queue_url: str
    outcome: CallOutcome
    duration: float
    error: BaseException | None = None


@dataclass(frozen=True)
class MessageHandled:
    """A server finished with one received message.

    Attributes:
        queue_url: the request queue.
        message_id: SQS's message id.
        correlation_id: the call's id (``publish`` sets one too); None when the message
            carries none (a message from another sender, an undecodable one).
        outcome: ``"ok"`` (handler returned), ``"error"`` (handler raised), ``"retry"``
            (handler raised ``Retry``), ``"expired"`` (caller's deadline passed, not run),
            ``"duplicate"`` (a redelivery not run again), ``"rejected"`` (``ReplyTo`` not
            allowed) or ``"undecodable"``.
        duration: seconds since the message was received.
        finished: True when the message was deleted; False when it was left in the queue
            (it comes back after its visibility timeout, or goes to the dead-letter queue).
    """

    queue_url: str
    message_id: str | None
    correlation_id: str | None
    outcome: MessageOutcome
    duration: float
    finished: bool


@dataclass(frozen=True)
class Hooks:
    """Callbacks sqs-rpc runs on call and message events; every one is optional.

    Hooks run on sqs-rpc's threads (the caller's, the reply poller's, the timeout timer's, a
    server worker's): keep them fast and thread-safe, for example by incrementing a counter.
    An exception in a hook is logged (logger ``sqs_rpc.hooks``) and ignored.

    Example::

        def finished(event: CallFinished) -> None:
            CALLS.labels(event.outcome).observe(event.duration)

        client = RpcClient(hooks=Hooks(on_call_finished=finished))
        poller = MessagePoller(url, handler, hooks=Hooks(on_message_handled=print))

    Args:
        on_call_started: a client sends a call (clients only).
        on_call_finished: a call ends, however it ends (clients only).
        on_message_handled: a server is done with a message (pollers only).
    """

    on_call_started: Callable[[CallStarted], None] | None = None
    on_call_finished: Callable[[CallFinished], None] | None = None
    on_message_handled: Callable[[MessageHandled], None] | None = None

    def __post_init__(self) -> None:
        for name in ("on_call_started", "on_call_finished", "on_message_handled"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigurationError(f"Hooks({name}={value!r}) must be a callable or None")


def check_hooks(hooks: object) -> Hooks | None:
    if hooks is not None and not isinstance(hooks, Hooks):
        raise ConfigurationError(f"hooks={hooks!r} must be a sqs_rpc.Hooks or None")
    return hooks


E = TypeVar("E")


def fire(callback: Callable[[E], None] | None, event: E) -> None:
    """Run one hook; log and swallow what it raises (a metrics bug must not fail a call)."""
    if callback is None:
        return
    try:
        callback(event)
    except Exception:
        logger.exception("hook %r raised on %r; ignored", callback, event)
