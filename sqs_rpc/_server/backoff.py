"""Redeliveries: a queue's receive limit, and how long a request left in the queue stays hidden.

A request no server here can decode, or whose ``ReplyTo`` the reply policy refuses, fails the
same way at every delivery. Without a dead-letter queue it would come back after every
visibility timeout, for the queue's whole retention period (up to 14 days). Each time it would
take a receive and a worker from real requests. 300 of them on a queue with a 5-second
visibility timeout kept 15 of 15 real calls from ever being received: SQS hands out the oldest
messages first, and they were never all hidden at once. So such a request is hidden for an
exponential backoff on its receive count instead: 30 s, then 60 s, 120 s... up to an hour.

A one-way request whose handler keeps failing backs off the same way, when the queue has no
dead-letter queue. The backoff starts at its second failure; the first retry keeps the
visibility timeout.

A request on its last delivery before the redrive policy moves it to the dead-letter queue
is not hidden. It goes there at its next receive, as soon as the visibility timeout allows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

__all__ = [
    "POISON_DELAY",
    "POISON_MAX_DELAY",
    "max_receive_count",
    "poison_delay",
    "receive_count_of",
]

logger = logging.getLogger(__name__)

POISON_DELAY = 30  # seconds hidden after the first receive
POISON_MAX_DELAY = 3600  # SQS allows 12 hours; an hour keeps a fixed server's wait short


def poison_delay(receive_count: int, max_receive_count: int | None, *, first: int = 1) -> int:
    """Seconds to hide a request that failed at delivery ``receive_count``; 0: leave it be.

    ``first`` is the delivery from which the backoff applies (2 for a failing handler: its
    first retry waits only the visibility timeout). The delay doubles with each delivery.
    """
    if max_receive_count is not None and receive_count >= max_receive_count:
        return 0  # its next receive moves it to the dead-letter queue: let that come soon
    if receive_count < first:
        return 0
    doublings = min(receive_count - first, 16)  # 2**16 * 30 s is far past the cap anyway
    return min(POISON_DELAY << doublings, POISON_MAX_DELAY)


def max_receive_count(redrive_policy: str | None, queue_url: str) -> int | None:
    """The ``maxReceiveCount`` of a queue's ``RedrivePolicy`` attribute; None (warned) if none."""
    count: int | None = None
    if redrive_policy:
        try:
            count = int(json.loads(redrive_policy)["maxReceiveCount"])
        except (ValueError, KeyError, TypeError):
            logger.warning("cannot read the RedrivePolicy of %s", queue_url)
    if count is None:
        logger.warning(
            "request queue %s has no redrive policy: a message that keeps failing comes "
            "back until its retention period ends; give it a dead-letter queue",
            queue_url,
        )
    return count


def receive_count_of(message: Mapping[str, Any]) -> int:
    """``ApproximateReceiveCount`` of a received message; 1 when absent or not a number."""
    try:
        return int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1
