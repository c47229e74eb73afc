"""Deadline propagation: a call made while handling a request never outlives that request.

The dispatcher sets the inbound request's deadline in a contextvar around the handler call
(each message runs in a fresh ``contextvars.Context``, and an async handler's task copies it).
A client reads it when it resolves a call's timeout, as gRPC propagates deadlines: no timeout
means the time the inbound caller has left, and a longer one is capped to it.
"""

from __future__ import annotations

import contextvars
import time

from ._errors import RpcTimeout

__all__ = ["bounded_timeout", "remaining_time", "set_inbound_deadline"]

# Epoch seconds (the caller's clock, as sent in its Deadline attribute), or None.
_inbound_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "sqs_rpc_inbound_deadline", default=None
)


def set_inbound_deadline(deadline: float | None) -> None:
    """Set the current request's deadline; for the dispatcher, in the message's own context."""
    _inbound_deadline.set(deadline)


def remaining_time() -> float | None:
    """Seconds left before the request being handled times out at its caller, or None.

    None outside a handler, and for a request without a deadline (a one-way message). Calls
    made from the handler use this as their timeout unless given a shorter one.

    Example::

        class Pricing(Service):
            @rpc
            def quote(self, sku: str) -> int:
                left = remaining_time()
                if left is not None and left < 0.5:
                    raise ServiceError("no_time", "not enough time left")
                return stock.price(sku, timeout=left)
    """
    deadline = _inbound_deadline.get()
    return None if deadline is None else deadline - time.time()


def bounded_timeout(timeout: float | None, default: float) -> float:
    """The timeout of a call: ``timeout`` (or ``default``), within the inbound request's time.

    Raises :class:`RpcTimeout` at once when the inbound request has no time left.
    """
    left = remaining_time()
    if left is None:
        return default if timeout is None else timeout
    if left <= 0:
        raise RpcTimeout(
            f"the request being handled ran out of time {-left:.3f}s ago; its caller has "
            "given up, so this call was not sent"
        )
    return left if timeout is None else min(timeout, left)
