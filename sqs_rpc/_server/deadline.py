"""Deadlines under clock skew: has the caller given up, and do the clocks agree?

A request carries its caller's deadline (epoch milliseconds, by the caller's clock), and the
server compares it with its own clock. Clocks drift, so a request counts as expired only once
its deadline passed more than ``clock_skew_tolerance`` seconds ago.

An expiry looks *skewed* when the deadline passed longer ago than the request has existed.
SQS's clock says when the request was sent (``SentTimestamp``) and, on a first delivery, when
it was received (``ApproximateFirstReceiveTimestamp``). A caller never sends a request whose
deadline has passed. So a deadline well before the send means a clock is off: the caller's, or
this server's. In the latter case every call expires, and a quiet INFO line would hide why.
"""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass

from sqs_rpc._wire import Request

logger = logging.getLogger(__name__)

__all__ = ["SKEW_MARGIN_MS", "Expiry", "expiry", "expiry_of", "log_expiry"]

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

    Pass ``received=None`` when that time is not the moment SQS handed the request out: a
    Lambda record comes later. SQS's clock is then taken to agree with this server's.
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


def log_expiry(request: Request, expired: Expiry, tolerance: float) -> bool:
    """Log an expired request: at INFO, or at WARNING with both clocks when it looks like skew.

    Returns True for skew, which the caller counts.
    """
    name = request.correlation_id or request.message_id
    if not expired.skewed:
        logger.info("request %s arrived after its caller's deadline; deleted without running", name)
        return False
    logger.warning(
        "request %s arrived after its caller's deadline; deleted without running. Its "
        "deadline (%s, by the caller's clock) passed %.1fs ago by this server's clock (now "
        "%s), but SQS accepted it at %s (SQS's clock now: %s): the caller's clock or this "
        "server's is off by more than clock_skew_tolerance=%gs; sync them (NTP)",
        name,
        _utc(request.deadline_ms),
        expired.overdue,
        _utc(expired.server_ms),
        _utc(expired.sent_ms),
        _utc(expired.sqs_ms),
        tolerance,
    )
    return True


def _utc(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return "unknown"
    moment = datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds")
