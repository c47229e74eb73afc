"""What clients and servers record about each call and message: stats and hook events.

:class:`CallObserver` is a client's: it counts every call by outcome, records latency, and
fires the call hooks from the call's future, whichever thread settles it. :class:`MessageObserver`
is a server's: the :class:`~sqs_rpc._processing.Dispatcher` counts through it, and it turns
the last outcome counted for a message into its latency sample and ``on_message_handled``.
Both cost a few lock acquisitions per call when no hooks are set.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from ._aws import RequestCounter
from ._errors import RemoteError, RpcTimeout
from ._hooks import (
    CallFinished,
    CallOutcome,
    CallStarted,
    Hooks,
    MessageHandled,
    MessageOutcome,
    fire,
)
from ._stats import ClientStats, Counters, LatencyWindow, PollerStats, int_fields
from ._wire import correlation_id_of

__all__ = ["CallObserver", "MessageObserver"]

_NO_HOOKS = Hooks()

# Which PollerStats counter decides a message's outcome (the last one counted wins: a
# Retry counts "failed", then "retried").
_OUTCOMES: dict[str, MessageOutcome] = {
    "handled": "ok",
    "failed": "error",
    "retried": "retry",
    "expired": "expired",
    "duplicates": "duplicate",
    "rejected": "rejected",
    "undecodable": "undecodable",
}
_RAN: frozenset[MessageOutcome] = frozenset({"ok", "error", "retry"})
# Set in the fresh contextvars.Context each message is processed in (Dispatcher.process), so
# it never leaks from one message to the next on the same worker thread.
_OUTCOME: contextvars.ContextVar[MessageOutcome | None] = contextvars.ContextVar(
    "sqs_rpc_message_outcome", default=None
)


class CallObserver:
    """A client's counters, latency window, request counter and call hooks."""

    def __init__(self, hooks: Hooks | None) -> None:
        self._hooks = hooks if hooks is not None else _NO_HOOKS
        self._counters = Counters(int_fields(ClientStats))
        self._latency = LatencyWindow()
        self.requests = RequestCounter()

    def started(self, correlation_id: str, queue_url: str, future: Future[Any]) -> None:
        """A call is about to be sent; its future's outcome is recorded when it settles."""
        self._counters.add("calls")
        if self._hooks.on_call_started is not None:  # no event object without a hook
            fire(self._hooks.on_call_started, CallStarted(correlation_id, queue_url))
        begun = time.monotonic()

        def settled(done: Future[Any]) -> None:
            self._finished(correlation_id, queue_url, done, time.monotonic() - begun)

        future.add_done_callback(settled)

    def published(self) -> None:
        self._counters.add("published")

    def _finished(
        self, correlation_id: str, queue_url: str, future: Future[Any], duration: float
    ) -> None:
        error = None if future.cancelled() else future.exception()
        outcome: CallOutcome
        if future.cancelled():
            outcome = "cancelled"
        elif error is None:
            outcome = "ok"
        elif isinstance(error, RemoteError):
            outcome = "remote_error"
        elif isinstance(error, RpcTimeout):
            outcome = "timeout"
        else:
            outcome = "error"
        self._counters.add(_CALL_COUNTERS[outcome])
        if outcome in ("ok", "remote_error"):
            self._latency.add(duration)
        if self._hooks.on_call_finished is not None:
            fire(
                self._hooks.on_call_finished,
                CallFinished(correlation_id, queue_url, outcome, duration, error),
            )

    def snapshot(self, pending: int) -> ClientStats:
        return ClientStats(
            **{**self._counters.values(), "pending": pending},
            latency=self._latency.snapshot(),
            requests=self.requests.snapshot(),
        )


_CALL_COUNTERS: Mapping[CallOutcome, str] = {
    "ok": "replies",
    "remote_error": "remote_errors",
    "timeout": "timeouts",
    "error": "errors",
    "cancelled": "cancelled",
}


class MessageObserver:
    """A server's counters, handling latency, request counter and message hook."""

    def __init__(self, queue_url: str, hooks: Hooks | None) -> None:
        self._queue_url = queue_url
        self._hooks = hooks if hooks is not None else _NO_HOOKS
        self.counters = Counters()
        self._latency = LatencyWindow()
        self.requests = RequestCounter()

    def count(self, name: str) -> None:
        """Add one to a PollerStats counter; an outcome counter also sets the message's outcome."""
        self.counters.add(name)
        outcome = _OUTCOMES.get(name)
        if outcome is not None:
            _OUTCOME.set(outcome)

    @staticmethod
    def note(outcome: MessageOutcome) -> None:
        """Set the current message's outcome without counting it."""
        _OUTCOME.set(outcome)

    def observe(
        self,
        process: Callable[[Mapping[str, Any], float], bool],
        message: Mapping[str, Any],
        received: float,
    ) -> bool:
        """Run ``process(message, received)`` (in the message's own context) and record it."""
        finished = False
        try:
            finished = process(message, received)
            return finished
        finally:
            # An exception out of process() is logged by the receiver; here it is an "error".
            outcome = _OUTCOME.get() or "error"
            duration = time.monotonic() - received
            if outcome in _RAN:
                self._latency.add(duration)
            callback = self._hooks.on_message_handled
            if callback is not None:
                event = MessageHandled(
                    self._queue_url,
                    message.get("MessageId"),
                    correlation_id_of(message),
                    outcome,
                    duration,
                    finished,
                )
                fire(callback, event)

    def snapshot(self, in_flight: int) -> PollerStats:
        return PollerStats(
            **{**self.counters.values(), "in_flight": in_flight},
            latency=self._latency.snapshot(),
            requests=self.requests.snapshot(),
        )
