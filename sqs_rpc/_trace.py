"""W3C trace context (``traceparent``, ``tracestate``) carried from caller to handler and back.

No tracing library is needed: the current trace context lives in a :class:`contextvars.ContextVar`.
A caller sets it with :func:`trace_context`; every request sent inside the block carries it as
message attributes. The server runs each handler with the request's trace context current (so
calls the handler makes pass it on) and sends it back on the reply. ``docs/tracing.md`` shows
how to feed it from and to OpenTelemetry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from ._errors import ConfigurationError

__all__ = ["TraceContext", "current_trace_context", "set_trace_context", "trace_context"]

# version-traceid-parentid-flags; version ff is invalid, and so are all-zero ids. A future
# version may append fields after a dash, which a version-00 parser accepts and ignores.
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
MAX_TRACESTATE = 512  # W3C: vendors may drop tracestate beyond this
# W3C: tracestate is list-members of printable ASCII. Checked, so that a value SQS would refuse
# in an attribute (a lone surrogate, a control character) fails where it is set.
_TRACESTATE = re.compile(rf"[\x20-\x7e]{{1,{MAX_TRACESTATE}}}")


def _traceparent_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"traceparent must be a str, not {type(value).__name__}"
    match = _TRACEPARENT.match(value)
    if match is None:
        return f"traceparent {value!r} is not version-traceid-parentid-flags in lowercase hex"
    version, trace_id, parent_id, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return f"traceparent {value!r} has an invalid version"
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return f"traceparent {value!r} has an all-zero trace id or parent id"
    return None


@dataclass(frozen=True)
class TraceContext:
    """A W3C trace context: the ``traceparent`` and optional ``tracestate`` headers.

    Example::

        ctx = TraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        ctx.headers()   # {"traceparent": "00-4bf9...-01"}

    Raises :class:`ConfigurationError` for a malformed ``traceparent``.
    """

    traceparent: str
    tracestate: str | None = None

    def __post_init__(self) -> None:
        problem = _traceparent_problem(self.traceparent)
        if problem is not None:
            raise ConfigurationError(f"{problem}; see https://www.w3.org/TR/trace-context/")
        if self.tracestate is not None and not isinstance(self.tracestate, str):
            raise ConfigurationError(
                f"tracestate must be a str or None, not {type(self.tracestate).__name__}"
            )
        if self.tracestate and not _TRACESTATE.fullmatch(self.tracestate):
            raise ConfigurationError(
                f"tracestate {self.tracestate[:80]!r} must be at most {MAX_TRACESTATE} "
                "printable ASCII characters; see https://www.w3.org/TR/trace-context/"
            )

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> TraceContext | None:
        """Read ``traceparent``/``tracestate`` from a header mapping; None if absent or invalid.

        Invalid input is ignored, as the W3C specification asks of a receiver.
        """
        traceparent = headers.get("traceparent")
        if traceparent is None or _traceparent_problem(traceparent) is not None:
            return None
        tracestate = headers.get("tracestate")
        if not isinstance(tracestate, str) or not _TRACESTATE.fullmatch(tracestate):
            tracestate = None
        return cls(traceparent, tracestate)

    def headers(self) -> dict[str, str]:
        """The trace context as headers, for ``opentelemetry.propagate.extract``."""
        headers = {"traceparent": self.traceparent}
        if self.tracestate:
            headers["tracestate"] = self.tracestate
        return headers


_current: ContextVar[TraceContext | None] = ContextVar("sqs_rpc_trace_context", default=None)


def current_trace_context() -> TraceContext | None:
    """The trace context that requests sent now would carry (in a handler: the request's)."""
    return _current.get()


def set_trace_context(context: TraceContext | None) -> None:
    """Make ``context`` current for the rest of this context (the server, per message)."""
    _current.set(context)


@contextmanager
def trace_context(
    context: TraceContext | Mapping[str, str] | str | None,
) -> Iterator[TraceContext | None]:
    """Within the block, requests sent from this thread or task carry ``context``.

    ``context`` is a :class:`TraceContext`, a ``traceparent`` string, or a header mapping such
    as the carrier ``opentelemetry.propagate.inject`` fills (other keys are ignored; an empty
    mapping means no trace context). ``None`` clears it.

    Example::

        with trace_context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"):
            client.call(queue_url, {"x": 1})
    """
    if isinstance(context, str):
        context = TraceContext(context)
    elif isinstance(context, Mapping):
        if "traceparent" in context:
            context = TraceContext(context["traceparent"], context.get("tracestate") or None)
        else:
            context = None
    elif context is not None and not isinstance(context, TraceContext):
        raise ConfigurationError(
            f"trace_context() takes a TraceContext, a traceparent str, a header mapping or "
            f"None, not {type(context).__name__}"
        )
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
