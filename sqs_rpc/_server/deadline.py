"""Deadlines under clock skew: has the caller given up, and do the clocks agree?

A request carries its caller's deadline (epoch milliseconds, by the caller's clock), and the
server compares it with its own clock. Clocks drift, so a request counts as expired only once
its deadline passed more than ``clock_skew_tolerance`` seconds ago.

An expiry looks *skewed* when the deadline passed longer ago than the request has existed.
SQS's clock says when the request was sent (``SentTimestamp``) and, on a first delivery, when
it was received (``ApproximateFirstReceiveTimestamp``). A caller never sends a request whose
deadline has passed, so a deadline well before the send means a clock is off: the caller's,
or this server's (then every call expires, and a quiet INFO line would hide why).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqs_rpc._wire import Request

__all__ = ["SKEW_MARGIN_MS", "Expiry", "expiry", "expiry_of"]

# Clocks kept by NTP, and SQS's timestamps, agree far more closely than this.
SKEW_MARGIN_MS = 1000


@dataclass(frozen=True)
class Expiry:
    """A request past its caller's deadline, and what the clocks said about it."""

    overdue: float  # seconds past the deadline, by this server's clock
    server_ms: int  # this server's clock (epoch ms)
    sqs_ms: int | None  # SQS's clock at the same moment, when known
    sent_ms: int | None  # when SQS accepted the request (SQS's clock)
    skewed: bool  # the deadline passed longer ago than the request existed


def expiry(
    deadline_ms: int,
    *,
    server_ms: float,
    sqs_ms: float | None,
    sent_ms: int | None,
    tolerance: float,
) -> Expiry | None:
    """An :class:`Expiry` if the deadline passed more than ``tolerance`` seconds ago, else None.

    ``sqs_ms`` is SQS's clock now, or None to take this server's clock for it.
    """
    overdue_ms = server_ms - deadline_ms
    if overdue_ms <= tolerance * 1000:
        return None
    skewed = False
    if sent_ms is not None:
        # How long the request has existed, by SQS's clock, against how long ago its
        # deadline passed, by ours: a deadline cannot plausibly precede the send.
        age_ms = (server_ms if sqs_ms is None else sqs_ms) - sent_ms
        skewed = overdue_ms - age_ms > SKEW_MARGIN_MS
    return Expiry(
        overdue=overdue_ms / 1000,
        server_ms=int(server_ms),
        sqs_ms=None if sqs_ms is None else int(sqs_ms),
        sent_ms=sent_ms,
        skewed=skewed,
    )


def expiry_of(request: Request, received: float | None, tolerance: float) -> Expiry | None:
    """:func:`expiry` for a received request; ``received`` is the monotonic time of its receive.

    Pass ``received=None`` when that time is not the moment SQS handed the request out (a
    Lambda record comes later): SQS's clock is then taken to agree with this server's.
    """
    if request.deadline_ms is None:
        return None
    now = time.time() * 1000
    sqs_ms: float | None = None
    if received is not None and request.receive_count == 1 and request.first_receive_ms:
        # On a first delivery, ApproximateFirstReceiveTimestamp is SQS's clock at our receive.
        sqs_ms = request.first_receive_ms + (time.monotonic() - received) * 1000
    return expiry(
        request.deadline_ms,
        server_ms=now,
        sqs_ms=sqs_ms,
        sent_ms=request.sent_ms,
        tolerance=tolerance,
    )
