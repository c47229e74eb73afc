"""What clients and servers record about each call and message: stats and hook events.

:class:`CallObserver` is a client's: it counts every call by outcome, records latency, and
fires the call hooks from the call's future, whichever thread settles it. :class:`MessageObserver`
is a server's: it counts the :class:`Outcome` the dispatcher returns for each message, and
turns it into a latency sample and ``on_message_handled``.
Both cost a few lock acquisitions per call when no hooks are set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
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
from ._tracing import NO_SPAN, CallSpan, MessageSpan, tracer
from ._wire import correlation_id_of

__all__ = ["CallObserver", "MessageObserver", "Outcome"]

_NO_HOOKS = Hooks()

# The PollerStats counters each outcome adds to (a Retry is a failure, and a retry).
_COUNTERS: Mapping[MessageOutcome, tuple[str, ...]] = {
    "ok": ("handled",),
    "error": ("failed",),
    "retry": ("failed", "retried"),
    "expired": ("expired",),
    "duplicate": ("duplicates",),
    "rejected": ("rejected",),
    "undecodable": ("undecodable",),
}
_RAN: frozenset[MessageOutcome] = frozenset({"ok", "error", "retry"})


@dataclass(frozen=True)
class Outcome:
    """What became of one message.

    ``kind`` is the outcome hooks see and stats count; ``finished`` is True when the message
    is (or will be) deleted, False when it was left in the queue to come back. ``counted`` is
    False for outcomes that are noted but not counted (a copy of a request still running).
    """

    kind: MessageOutcome
    finished: bool
    counted: bool = True


class CallObserver:
    """A client's counters, latency window, request counter and call hooks."""

    def __init__(self, hooks: Hooks | None) -> None:
        self._hooks = hooks if hooks is not None else _NO_HOOKS
        self._counters = Counters(int_fields(ClientStats))
        self._latency = LatencyWindow()
        self.requests = RequestCounter()
        self.s3_requests = RequestCounter("s3")

    def span(self, correlation_id: str, queue_url: str, *, publish: bool = False) -> CallSpan:
        """The tracing span of a call or publish: a no-op unless ``sqs_rpc.otel`` is on."""
        return tracer().call(queue_url, correlation_id, publish=publish)

    def started(
        self, correlation_id: str, queue_url: str, future: Future[Any], span: CallSpan = NO_SPAN
    ) -> Callable[[], None]:
        """A call is about to be sent; its future's outcome is recorded when it settles.

        Returns ``record()``: it records a settled future's outcome now, or waits until its
        done-callback has. Callbacks run after the future's waiters wake, so a caller that
        returns the outcome calls it first: the call is in ``stats()``, and its
        ``on_call_finished`` hook has run, once ``call()`` returned.
        """
        self._counters.add("calls")
        if self._hooks.on_call_started is not None:  # no event object without a hook
            fire(self._hooks.on_call_started, CallStarted(correlation_id, queue_url))
        begun = time.monotonic()
        recording = threading.Lock()  # the first of callback and record() records
        unrecorded = [True]

        def settled(done: Future[Any]) -> None:
            with recording:
                if not unrecorded:
                    return
                unrecorded.clear()
                outcome, error = self._finished(
                    correlation_id, queue_url, done, time.monotonic() - begun
                )
                span.end(outcome, error)

        def record() -> None:
            if future.done():
                settled(future)

        future.add_done_callback(settled)
        return record

    def published(self) -> None:
        self._counters.add("published")

    def _finished(
        self, correlation_id: str, queue_url: str, future: Future[Any], duration: float
    ) -> tuple[CallOutcome, BaseException | None]:
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
        return outcome, error

    def snapshot(self, pending: int) -> ClientStats:
        return ClientStats(
            **{**self._counters.values(), "pending": pending},
            latency=self._latency.snapshot(),
            requests=self.requests.snapshot(),
            billed_requests=self.requests.billed_snapshot(),
            s3_requests=self.s3_requests.snapshot(),
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
        self.s3_requests = RequestCounter("s3")

    def begin(self, message: Mapping[str, Any]) -> MessageSpan:
        """The message's tracing span, current in this context until :meth:`end`."""
        return tracer().message(self._queue_url, message)

    def end(
        self,
        span: MessageSpan,
        message: Mapping[str, Any],
        received: float,
        outcome: Outcome | None,
    ) -> None:
        """Count ``outcome`` (None: the work failed unexpectedly), time it, fire the hook."""
        # An exception out of the work is logged by the receiver; here it is an "error".
        kind: MessageOutcome = "error" if outcome is None else outcome.kind
        span.finish(kind)
        if outcome is not None and outcome.counted:
            for name in _COUNTERS[kind]:
                self.counters.add(name)
        duration = time.monotonic() - received
        if kind in _RAN:
            self._latency.add(duration)
        callback = self._hooks.on_message_handled
        if callback is not None:
            event = MessageHandled(
                self._queue_url,
                message.get("MessageId"),
                correlation_id_of(message),
                kind,
                duration,
                outcome is not None and outcome.finished,
            )
            fire(callback, event)

    def snapshot(self, in_flight: int) -> PollerStats:
        return PollerStats(
            **{**self.counters.values(), "in_flight": in_flight},
            latency=self._latency.snapshot(),
            requests=self.requests.snapshot(),
            billed_requests=self.requests.billed_snapshot(),
            s3_requests=self.s3_requests.snapshot(),
        )
