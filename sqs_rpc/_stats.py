"""A server's counters (PollerStats) and its health report (PollerHealth)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields, replace

__all__ = ["Counters", "PollerHealth", "PollerStats"]


@dataclass(frozen=True)
class PollerStats:
    """Counters of one :class:`~sqs_rpc.MessagePoller` since it was created.

    Example::

        stats = poller.stats()
        print(stats.handled, stats.failed, stats.in_flight)

    Attributes:
        received: messages received from the request queue (redeliveries included).
        handled: handler runs that returned.
        failed: handler runs that raised (``Retry`` included).
        retried: handler runs that raised ``Retry``: the message was left for redelivery.
        expired: requests not run because their caller's deadline had passed (deleted).
        duplicates: redelivered requests answered from the reply cache without running.
        rejected: requests not run because their ``ReplyTo`` is not allowed (left in queue).
        undecodable: messages that could not be decoded (left for redrive).
        replies_sent: replies SQS accepted.
        deleted: requests deleted from the request queue.
        in_flight: messages received and not yet finished (deleted or left).
        receive_errors: failed ``ReceiveMessage`` requests.
    """

    received: int = 0
    handled: int = 0
    failed: int = 0
    retried: int = 0
    expired: int = 0
    duplicates: int = 0
    rejected: int = 0
    undecodable: int = 0
    replies_sent: int = 0
    deleted: int = 0
    in_flight: int = 0
    receive_errors: int = 0


@dataclass(frozen=True)
class PollerHealth:
    """What a process manager needs to know about a :class:`~sqs_rpc.MessagePoller`.

    Example::

        health = poller.health()
        if not health.healthy:
            sys.exit(1)   # let the supervisor restart the process

    Attributes:
        healthy: running, receiver thread alive, and a receive succeeded within
            ``max_receive_age`` seconds.
        running: between ``start()`` and ``stop()``.
        receiver_alive: the receiving thread is alive.
        last_receive_age: seconds since the last successful ``ReceiveMessage`` (None: none yet).
        consecutive_receive_errors: failed receives since the last successful one.
        in_flight: messages being handled.
    """

    healthy: bool
    running: bool
    receiver_alive: bool
    last_receive_age: float | None
    consecutive_receive_errors: int
    in_flight: int


class Counters:
    """Thread-safe mutable counters behind :class:`PollerStats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = {f.name: 0 for f in fields(PollerStats)}

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] += amount

    def snapshot(self) -> PollerStats:
        with self._lock:
            return replace(PollerStats(), **self._values)
