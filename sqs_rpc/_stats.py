"""Counters and latency percentiles: PollerStats, PollerHealth and ClientStats.

Client and server count the same way: integer counters behind one lock (:class:`Counters`),
latency percentiles over a bounded window of recent samples (:class:`LatencyWindow`, constant
memory whatever the traffic), and SQS requests by operation from a
:class:`~sqs_rpc.RequestCounter` on the boto3 client. ``stats()`` returns a frozen snapshot.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

__all__ = [
    "LATENCY_WINDOW",
    "ClientStats",
    "Counters",
    "Latency",
    "LatencyWindow",
    "PollerHealth",
    "PollerStats",
    "int_fields",
    "percentile",
]

# Percentiles are computed over the most recent samples only: enough for a stable p99 (ten
# samples above it), small enough that a snapshot's sort costs microseconds.
LATENCY_WINDOW = 1000


@dataclass(frozen=True)
class Latency:
    """Durations in seconds: all-time count and sum, percentiles over the recent samples.

    Example::

        latency = client.stats().latency
        if latency.p99 is not None and latency.p99 > 1.0:
            print(f"slow: p99 {latency.p99 * 1000:.0f} ms over {latency.window} calls")

    Attributes:
        count: samples since creation.
        sum: their total, in seconds (with ``count``: the mean; a Prometheus summary's
            ``_sum`` and ``_count``).
        window: samples the percentiles are computed over: the most recent, at most
            ``LATENCY_WINDOW`` (1000).
        p50, p90, p99, max: over those ``window`` samples (nearest-rank); None when there are
            none yet.
    """

    count: int = 0
    sum: float = 0.0
    window: int = 0
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of a sorted, non-empty list."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


class LatencyWindow:
    """Thread-safe recorder of durations: O(1) per sample, memory bounded by ``size``."""

    def __init__(self, size: int = LATENCY_WINDOW) -> None:
        self._lock = threading.Lock()
        self._recent: deque[float] = deque(maxlen=size)
        self._count = 0
        self._sum = 0.0

    def add(self, seconds: float) -> None:
        with self._lock:
            self._recent.append(seconds)
            self._count += 1
            self._sum += seconds

    def snapshot(self) -> Latency:
        with self._lock:
            ordered = sorted(self._recent)
            count, total = self._count, self._sum
        if not ordered:
            return Latency(count=count, sum=total)
        return Latency(
            count=count,
            sum=total,
            window=len(ordered),
            p50=percentile(ordered, 0.50),
            p90=percentile(ordered, 0.90),
            p99=percentile(ordered, 0.99),
            max=ordered[-1],
        )


@dataclass(frozen=True)
class PollerStats:
    """Counters of one :class:`~sqs_rpc.MessagePoller` since it was created.

    Example::

        stats = poller.stats()
        print(stats.handled, stats.failed, stats.in_flight, stats.latency.p99)

    Attributes:
        received: messages received from the request queue (redeliveries included).
        handled: handler runs that returned.
        failed: handler runs that raised (``Retry`` included).
        retried: handler runs that raised ``Retry``: the message was left for redelivery.
        expired: requests not run because their caller's deadline had passed (deleted).
        expired_skewed: the ``expired`` whose deadline passed longer ago than SQS says the
            request existed: the caller's clock, or this server's, is off (logged at WARNING).
        duplicates: redelivered requests answered from the reply cache without running.
        rejected: requests not run because their ``ReplyTo`` is not allowed (left in queue).
        undecodable: messages that could not be decoded (left for redrive).
        replies_sent: replies SQS accepted.
        deleted: requests deleted from the request queue.
        in_flight: messages received and not yet finished (deleted or left).
        receive_errors: failed ``ReceiveMessage`` requests.
        latency: seconds from receiving a message to finishing with it (reply sent, request
            deleted or left), for messages whose handler ran.
        requests: SQS requests made through the poller's boto3 client while it was started,
            by operation (``{"ReceiveMessage": 12, ...}``); retries are not counted.
        billed_requests: the same requests as AWS bills them, by operation: one per started
            64 KiB of each request's payload (body plus attributes; a batch's summed, a
            receive's as returned). See docs/performance.md#what-a-call-costs.
        s3_requests: S3 requests of the ``offload``'s S3 client, by operation
            (``{"PutObject": 1, "GetObject": 1, ...}``).
    """

    received: int = 0
    handled: int = 0
    failed: int = 0
    retried: int = 0
    expired: int = 0
    expired_skewed: int = 0
    duplicates: int = 0
    rejected: int = 0
    undecodable: int = 0
    replies_sent: int = 0
    deleted: int = 0
    in_flight: int = 0
    receive_errors: int = 0
    latency: Latency = Latency()
    requests: Mapping[str, int] = field(default_factory=dict)
    billed_requests: Mapping[str, int] = field(default_factory=dict)
    s3_requests: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientStats:
    """Counters of one :class:`~sqs_rpc.RpcClient` (or AsyncRpcClient) since it was created.

    Every call ends as exactly one of ``replies``, ``remote_errors``, ``timeouts``, ``errors``
    or ``cancelled``; until then it counts in ``pending``.

    Example::

        stats = client.stats()
        print(stats.calls, stats.timeouts, stats.latency.p50, stats.requests)

    Attributes:
        calls: calls whose request was handed to SQS (bad input raised before that is not
            counted).
        replies: calls answered with a result.
        remote_errors: calls answered with an error (the caller got :class:`RemoteError`).
        timeouts: calls with no answer by their deadline (:class:`RpcTimeout`).
        errors: calls that failed otherwise: the request could not be sent, the reply could
            not be decoded, the reply queue was lost, or the client was closed.
        cancelled: calls whose future (or asyncio task) was cancelled.
        published: one-way messages sent with ``publish``.
        pending: calls waiting for an answer right now.
        latency: seconds from sending to the answer, for calls answered with a result or a
            remote error.
        requests: SQS requests made through the client's boto3 client, by operation
            (``{"SendMessage": 3, ...}``); retries are not counted. A boto3 client passed as
            ``sqs_client=`` and shared with other code counts their requests too.
        billed_requests: the same requests as AWS bills them, by operation: one per started
            64 KiB of each request's payload (a 100 KiB ``SendMessage`` is 2). See
            docs/performance.md#what-a-call-costs.
        s3_requests: S3 requests of the ``offload``'s S3 client, by operation; an
            ``S3Offload(s3_client=...)`` shared with other code counts theirs too.
    """

    calls: int = 0
    replies: int = 0
    remote_errors: int = 0
    timeouts: int = 0
    errors: int = 0
    cancelled: int = 0
    published: int = 0
    pending: int = 0
    latency: Latency = Latency()
    requests: Mapping[str, int] = field(default_factory=dict)
    billed_requests: Mapping[str, int] = field(default_factory=dict)
    s3_requests: Mapping[str, int] = field(default_factory=dict)


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


def int_fields(kind: type[PollerStats] | type[ClientStats]) -> list[str]:
    """The names of a stats class's integer counters."""
    return [f.name for f in fields(kind) if type(f.default) is int]


class Counters:
    """Thread-safe integer counters, by default those of :class:`PollerStats`."""

    def __init__(self, names: Iterable[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(int_fields(PollerStats) if names is None else names, 0)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] += amount

    def values(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)
