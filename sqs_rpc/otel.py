"""OpenTelemetry spans for every call and every handled message (the ``otel`` extra).

``instrument()`` turns them on for every client and server in the process, as OpenTelemetry's
own instrumentors do; nothing in sqs-rpc imports OpenTelemetry unless this module is imported.
Spans follow OpenTelemetry's messaging semantic conventions (``docs/tracing.md``):

- a call: span kind CLIENT named ``send <queue name>``, from sending the request to its answer;
  a one-way ``publish``: PRODUCER, ``send <queue name>``, until SQS accepted it;
- a handled message: CONSUMER, ``process <queue name>``, current while the handler runs, its
  parent the caller's span (read from the request's ``traceparent``/``tracestate``);
- attributes ``messaging.system`` (``aws_sqs``), ``messaging.destination.name``,
  ``messaging.operation.name`` and ``.type``, ``messaging.message.id``,
  ``messaging.message.conversation_id`` (the correlation id) and ``sqs_rpc.outcome``.

The trace context travels by itself: a call's request carries its span's context, and the
calls a handler makes are children of the handler's span.

Example::

    from opentelemetry.sdk.trace import TracerProvider
    import sqs_rpc.otel

    sqs_rpc.otel.instrument(tracer_provider=TracerProvider())  # or the global provider
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "sqs_rpc.otel needs OpenTelemetry's API: pip install 'sqs-rpc[otel]'"
    ) from exc

from . import __version__
from ._hooks import CallOutcome, MessageOutcome
from ._trace import TraceContext, current_trace_context
from ._tracing import CallSpan, MessageSpan, install
from ._wire import correlation_id_of

__all__ = ["instrument", "is_instrumented", "uninstrument"]

SYSTEM = "aws_sqs"
# Outcomes that are failures: the span's status is ERROR. A Retry, an expired or a duplicate
# request is sqs-rpc working as designed.
_CALL_ERRORS: frozenset[str] = frozenset({"remote_error", "timeout", "error"})
_MESSAGE_ERRORS: frozenset[str] = frozenset({"error", "rejected", "undecodable"})
_W3C = TraceContextTextMapPropagator()  # the wire format is W3C, whatever the global propagator


def instrument(tracer_provider: trace.TracerProvider | None = None) -> None:
    """Trace every call and handled message from now on (``tracer_provider``: the global one).

    Calling it again replaces the provider.
    """
    tracer = trace.get_tracer("sqs_rpc", __version__, tracer_provider=tracer_provider)
    install(_OtelTracer(tracer))


def uninstrument() -> None:
    """Stop tracing. Spans already started still end."""
    install(None)


def is_instrumented() -> bool:
    from ._tracing import tracer

    return isinstance(tracer(), _OtelTracer)


def queue_name(queue_url: str) -> str:
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def _attributes(queue_url: str, operation: str, correlation_id: str | None) -> dict[str, str]:
    attributes = {
        "messaging.system": SYSTEM,
        "messaging.destination.name": queue_name(queue_url),
        "messaging.operation.name": operation,
        "messaging.operation.type": operation,
    }
    if correlation_id:
        attributes["messaging.message.conversation_id"] = correlation_id
    return attributes


def _parent() -> otel_context.Context | None:
    """The current OpenTelemetry context; else one from sqs-rpc's ``trace_context()``."""
    if trace.get_current_span().get_span_context().is_valid:
        return None  # the current context is the parent
    explicit = current_trace_context()
    return None if explicit is None else _W3C.extract(explicit.headers())


class _OtelCallSpan:
    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._lock = threading.Lock()
        self._ended = False

    def trace(self) -> TraceContext | None:
        carrier: dict[str, str] = {}
        _W3C.inject(carrier, context=trace.set_span_in_context(self._span))
        return TraceContext.from_headers(carrier)

    def sent(self, message_id: str) -> None:
        with self._lock:
            if not self._ended:  # a reply may end the call before the send returns
                self._span.set_attribute("messaging.message.id", message_id)

    def end(self, outcome: CallOutcome, error: BaseException | None) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        span = self._span
        span.set_attribute("sqs_rpc.outcome", outcome)
        if outcome in _CALL_ERRORS:
            if error is not None:
                span.record_exception(error)
                span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(Status(StatusCode.ERROR, None if error is None else str(error)))
        span.end()


class _OtelMessageSpan:
    def __init__(self, span: trace.Span) -> None:
        self._span = span
        # Current in the context the server processes the message in (one per message).
        self._token: object | None = otel_context.attach(trace.set_span_in_context(span))

    def finish(self, outcome: MessageOutcome) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        self._span.set_attribute("sqs_rpc.outcome", outcome)
        if outcome in _MESSAGE_ERRORS:
            self._span.set_attribute("error.type", outcome)
            self._span.set_status(Status(StatusCode.ERROR, f"message outcome: {outcome}"))
        self._span.end()
        otel_context.detach(token)  # type: ignore[arg-type]


class _OtelTracer:
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def call(self, queue_url: str, correlation_id: str, *, publish: bool) -> CallSpan:
        span = self._tracer.start_span(
            f"send {queue_name(queue_url)}",
            context=_parent(),
            kind=SpanKind.PRODUCER if publish else SpanKind.CLIENT,
            attributes=_attributes(queue_url, "send", correlation_id),
        )
        return _OtelCallSpan(span)

    def message(self, queue_url: str, message: Mapping[str, Any]) -> MessageSpan:
        headers = {
            name: value["StringValue"]
            for name, value in message.get("MessageAttributes", {}).items()
            if name in ("traceparent", "tracestate") and isinstance(value, Mapping)
            if isinstance(value.get("StringValue"), str)
        }
        attributes = _attributes(queue_url, "process", correlation_id_of(message))
        message_id = message.get("MessageId")
        if isinstance(message_id, str):
            attributes["messaging.message.id"] = message_id
        span = self._tracer.start_span(
            f"process {queue_name(queue_url)}",
            # No trace context on the request: the current one (a Lambda invocation's span, say).
            context=_W3C.extract(headers) if headers else None,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )
        return _OtelMessageSpan(span)
