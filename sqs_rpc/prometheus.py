"""Prometheus metrics for clients and servers (the ``prometheus`` extra: prometheus_client).

Example::

    from prometheus_client import start_http_server
    from sqs_rpc.prometheus import PrometheusMetrics

    metrics = PrometheusMetrics()                 # registers in prometheus_client's REGISTRY
    client = metrics.watch(RpcClient(hooks=metrics.hooks))
    poller = metrics.watch(MessagePoller(url, handler, hooks=metrics.hooks))
    start_http_server(9464)

Hooks feed counters and histograms as each call and message ends; the clients and pollers
passed to :meth:`PrometheusMetrics.watch` add, at each scrape, their SQS requests (API calls
and billed), S3 requests, pending calls and in-flight messages from ``stats()``. Labels are
queue names, outcomes and operations, never correlation ids: one series per id would swamp
Prometheus.

=================================================  =========  ============================
metric                                             type       labels
=================================================  =========  ============================
``sqs_rpc_client_calls_total``                     counter    queue, outcome
``sqs_rpc_client_call_duration_seconds``           histogram  queue (answered calls)
``sqs_rpc_server_messages_total``                  counter    queue, outcome
``sqs_rpc_server_message_duration_seconds``        histogram  queue (messages whose handler ran)
``sqs_rpc_client_sqs_requests_total``              counter    operation
``sqs_rpc_client_sqs_billed_requests_total``       counter    operation
``sqs_rpc_client_s3_requests_total``               counter    operation
``sqs_rpc_client_pending_calls``                   gauge
``sqs_rpc_server_sqs_requests_total``              counter    queue, operation
``sqs_rpc_server_sqs_billed_requests_total``       counter    queue, operation
``sqs_rpc_server_s3_requests_total``               counter    queue, operation
``sqs_rpc_server_in_flight``                       gauge      queue
=================================================  =========  ============================
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TypeVar

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "sqs_rpc.prometheus needs prometheus_client: pip install 'sqs-rpc[prometheus]'"
    ) from exc

from ._client.async_client import AsyncRpcClient
from ._client.client import RpcClient
from ._hooks import CallFinished, Hooks, MessageHandled
from ._server.poller import MessagePoller

__all__ = ["DEFAULT_BUCKETS", "PrometheusMetrics"]

# Seconds: an SQS round trip is tens of milliseconds, a slow handler seconds.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_TIMED_CALLS = frozenset({"ok", "remote_error"})  # as ClientStats.latency
_TIMED_MESSAGES = frozenset({"ok", "error", "retry"})  # as PollerStats.latency

Watched = TypeVar("Watched", RpcClient, AsyncRpcClient, MessagePoller)


def queue_name(queue_url: str) -> str:
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


class PrometheusMetrics:
    """Counters, histograms and ``stats()`` collectors of sqs-rpc clients and servers.

    Args:
        registry: where the metrics are registered; prometheus_client's global ``REGISTRY``
            by default. Two ``PrometheusMetrics`` need two registries (names would clash).
        buckets: the histograms' bucket bounds, in seconds.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        registry = REGISTRY if registry is None else registry
        self._calls = Counter(
            "sqs_rpc_client_calls", "Calls ended, by outcome.", ["queue", "outcome"],
            registry=registry,
        )  # fmt: skip
        self._call_seconds = Histogram(
            "sqs_rpc_client_call_duration_seconds",
            "Seconds from sending a call to its reply or error reply.",
            ["queue"],
            buckets=buckets,
            registry=registry,
        )
        self._messages = Counter(
            "sqs_rpc_server_messages", "Messages handled, by outcome.", ["queue", "outcome"],
            registry=registry,
        )  # fmt: skip
        self._message_seconds = Histogram(
            "sqs_rpc_server_message_duration_seconds",
            "Seconds from receiving a message to finishing with it, for messages run.",
            ["queue"],
            buckets=buckets,
            registry=registry,
        )
        self._lock = threading.Lock()
        self._clients: list[RpcClient | AsyncRpcClient] = []
        self._pollers: list[MessagePoller] = []
        registry.register(_StatsCollector(self))

    @property
    def hooks(self) -> Hooks:
        """The :class:`~sqs_rpc.Hooks` to pass as ``hooks=`` to clients and pollers."""
        return Hooks(on_call_finished=self._call_finished, on_message_handled=self._handled)

    def watch(self, target: Watched) -> Watched:
        """Export ``target``'s ``stats()`` (requests, pending, in flight) too; returns it.

        Counters keep the totals of what is watched: :meth:`unwatch` a client only when the
        process is done with its numbers (a drop reads as a counter reset).
        """
        with self._lock:
            if isinstance(target, MessagePoller):
                self._pollers.append(target)
            else:
                self._clients.append(target)
        return target

    def unwatch(self, target: RpcClient | AsyncRpcClient | MessagePoller) -> None:
        with self._lock:
            self._clients = [c for c in self._clients if c is not target]
            self._pollers = [p for p in self._pollers if p is not target]

    def _call_finished(self, event: CallFinished) -> None:
        queue = queue_name(event.queue_url)
        self._calls.labels(queue, event.outcome).inc()
        if event.outcome in _TIMED_CALLS:
            self._call_seconds.labels(queue).observe(event.duration)

    def _handled(self, event: MessageHandled) -> None:
        queue = queue_name(event.queue_url)
        self._messages.labels(queue, event.outcome).inc()
        if event.outcome in _TIMED_MESSAGES:
            self._message_seconds.labels(queue).observe(event.duration)

    def _watched(self) -> tuple[list[RpcClient | AsyncRpcClient], list[MessagePoller]]:
        with self._lock:
            return list(self._clients), list(self._pollers)


class _StatsCollector:
    """Reads ``stats()`` of the watched clients and pollers at each scrape."""

    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        clients, pollers = self._metrics._watched()
        client_stats = [client.stats() for client in clients]
        yield _by_operation(
            "sqs_rpc_client_sqs_requests", "SQS API requests of clients, by operation.",
            (s.requests for s in client_stats),
        )  # fmt: skip
        yield _by_operation(
            "sqs_rpc_client_sqs_billed_requests",
            "SQS requests of clients as AWS bills them (one per 64 KiB of payload).",
            (s.billed_requests for s in client_stats),
        )
        yield _by_operation(
            "sqs_rpc_client_s3_requests", "S3 requests of clients' offload, by operation.",
            (s.s3_requests for s in client_stats),
        )  # fmt: skip
        pending = GaugeMetricFamily("sqs_rpc_client_pending_calls", "Calls waiting for a reply.")
        pending.add_metric([], sum(s.pending for s in client_stats))
        yield pending
        server = [(queue_name(p.queue_url), p.stats()) for p in pollers]
        for name, what, field in (
            ("sqs_rpc_server_sqs_requests", "SQS API requests of pollers", "requests"),
            ("sqs_rpc_server_sqs_billed_requests", "Billed SQS requests of pollers", "billed"),
            ("sqs_rpc_server_s3_requests", "S3 requests of pollers' offload", "s3"),
        ):
            family = CounterMetricFamily(name, f"{what}, by queue and operation.",
                                         labels=["queue", "operation"])  # fmt: skip
            totals: Tally[tuple[str, str]] = Tally()
            for queue, stats in server:
                counts = {
                    "requests": stats.requests,
                    "billed": stats.billed_requests,
                    "s3": stats.s3_requests,
                }[field]
                for operation, count in counts.items():
                    totals[(queue, operation)] += count
            for (queue, operation), count in sorted(totals.items()):
                family.add_metric([queue, operation], count)
            yield family
        in_flight = GaugeMetricFamily(
            "sqs_rpc_server_in_flight", "Messages being handled.", labels=["queue"]
        )
        flights: Tally[str] = Tally()
        for queue, stats in server:
            flights[queue] += stats.in_flight
        for queue, count in sorted(flights.items()):
            in_flight.add_metric([queue], count)
        yield in_flight


def _by_operation(name: str, help_text: str, counts: Iterable[Mapping[str, int]]) -> Metric:
    totals: Tally[str] = Tally()
    for mapping in counts:
        totals.update(mapping)
    family = CounterMetricFamily(name, help_text, labels=["operation"])
    for operation, count in sorted(totals.items()):
        family.add_metric([operation], count)
    return family
