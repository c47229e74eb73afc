"""The plug point for tracing spans (OpenTelemetry's, in ``sqs_rpc.otel``), off by default.

sqs-rpc imports no tracing library. ``sqs_rpc.otel.instrument()`` installs a :class:`Tracer`
here; until then every client and server uses :data:`NO_TRACER`, whose spans do nothing and
cost one function call. Clients ask for a :class:`CallSpan` per call or publish; servers for a
:class:`MessageSpan` per message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from ._hooks import CallOutcome, MessageOutcome
from ._trace import TraceContext, trace_context

__all__ = [
    "NO_SPAN",
    "NO_TRACER",
    "CallSpan",
    "MessageSpan",
    "Tracer",
    "carrying",
    "install",
    "tracer",
]


class CallSpan(Protocol):
    """One call's (or publish's) span: started before its request is built."""

    def trace(self) -> TraceContext | None:
        """The trace context its request carries (None: keep the current one, if any)."""

    def sent(self, message_id: str) -> None:
        """SQS accepted the request under ``message_id``."""

    def end(self, outcome: CallOutcome, error: BaseException | None) -> None:
        """The call ended (idempotent)."""


class MessageSpan(Protocol):
    """One message's span on a server, current while its handler runs."""

    def finish(self, outcome: MessageOutcome) -> None:
        """The server is done with the message (ends the span; idempotent)."""


class Tracer(Protocol):
    def call(self, queue_url: str, correlation_id: str, *, publish: bool) -> CallSpan:
        """Start the span of a call (``publish=False``) or a one-way message."""

    def message(self, queue_url: str, message: Mapping[str, Any]) -> MessageSpan:
        """Start, and make current in this context, the span of processing ``message``."""


class _NoSpan:
    def trace(self) -> TraceContext | None:
        return None

    def sent(self, message_id: str) -> None:
        pass

    def end(self, outcome: CallOutcome, error: BaseException | None) -> None:
        pass

    def finish(self, outcome: MessageOutcome) -> None:
        pass


class _NoTracer:
    def call(self, queue_url: str, correlation_id: str, *, publish: bool) -> CallSpan:
        return NO_SPAN

    def message(self, queue_url: str, message: Mapping[str, Any]) -> MessageSpan:
        return NO_SPAN


NO_SPAN = _NoSpan()
NO_TRACER: Tracer = _NoTracer()
_tracer: Tracer = NO_TRACER


def install(new: Tracer | None) -> None:
    """Make ``new`` the tracer of every client and server (None: none)."""
    global _tracer  # noqa: PLW0603 - one process-wide switch, as OpenTelemetry instrumentors
    _tracer = NO_TRACER if new is None else new


def tracer() -> Tracer:
    return _tracer


@contextmanager
def carrying(span: CallSpan) -> Iterator[None]:
    """Requests built in the block carry ``span``'s trace context; an error ends the span."""
    try:
        context = span.trace()
        if context is None:
            yield
        else:
            with trace_context(context):
                yield
    except BaseException as exc:
        span.end("error", exc)
        raise
