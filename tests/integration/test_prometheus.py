"""sqs_rpc.prometheus: a real client and poller feed prometheus_client's metrics."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("prometheus_client", reason="install the prometheus extra")

from prometheus_client import CollectorRegistry

from sqs_rpc import AsyncRpcClient, Hooks, MessageHandled, MessagePoller, RemoteError, RpcClient
from sqs_rpc.prometheus import PrometheusMetrics
from tests.support.handlers import Echo
from tests.support.helpers import Endpoint, wait_for

Serve = Callable[..., MessagePoller]


def _queue(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def test_calls_and_messages_are_counted_and_timed(
    endpoint: Endpoint, queue_url: str, serve: Serve
) -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    feed = metrics.hooks.on_message_handled
    assert feed is not None
    done = threading.Semaphore(0)

    def handled(event: MessageHandled) -> None:
        feed(event)
        done.release()

    poller = metrics.watch(serve(queue_url, Echo(), hooks=Hooks(on_message_handled=handled)))
    queue = _queue(queue_url)
    with metrics.watch(RpcClient(sqs_client=endpoint.client(), hooks=metrics.hooks)) as client:
        for i in range(3):
            client.call(queue_url, i, timeout=10)
        with pytest.raises(RemoteError):
            client.call(queue_url, "fail", timeout=10)
        client.call(queue_url, "x" * (100 * 1024), timeout=10)  # 2 billed requests to send
        for _ in range(5):
            assert done.acquire(timeout=10)

        def value(name: str, **labels: str) -> float:
            sample = registry.get_sample_value(name, labels)
            assert sample is not None, (name, labels)
            return sample

        # A call's hook runs from its future's callbacks, which may follow the call's return.
        wait_for(
            lambda: (
                registry.get_sample_value(
                    "sqs_rpc_client_calls_total", {"queue": queue, "outcome": "ok"}
                )
                == 4
            )
        )
        assert value("sqs_rpc_client_calls_total", queue=queue, outcome="remote_error") == 1
        assert value("sqs_rpc_client_call_duration_seconds_count", queue=queue) == 5
        assert value("sqs_rpc_client_call_duration_seconds_bucket", queue=queue, le="+Inf") == 5
        assert value("sqs_rpc_server_messages_total", queue=queue, outcome="ok") == 4
        assert value("sqs_rpc_server_messages_total", queue=queue, outcome="error") == 1
        assert value("sqs_rpc_server_message_duration_seconds_count", queue=queue) == 5

        # Reply deletes go in batches off the callers' path, up to 200 ms after the last call:
        # the exported counts must settle on what the client counted.
        def exported_matches_stats() -> bool:
            requests = client.stats().requests
            return all(
                registry.get_sample_value("sqs_rpc_client_sqs_requests_total", {"operation": op})
                == count
                for op, count in requests.items()
            )

        wait_for(exported_matches_stats)
        stats = client.stats()
        sends = sum(
            value("sqs_rpc_client_sqs_billed_requests_total", operation=op) - n
            for op, n in stats.requests.items()
            if op.startswith("SendMessage")
        )
        assert sends == 1  # the 100 KiB request: 2 billed requests for 1 API request
        assert value("sqs_rpc_client_pending_calls") == 0
        assert (
            value("sqs_rpc_server_sqs_requests_total", queue=queue, operation="ReceiveMessage")
            == poller.stats().requests["ReceiveMessage"]
        )
        assert value("sqs_rpc_server_in_flight", queue=queue) == 0


def test_async_clients_and_several_pollers_add_up(
    endpoint: Endpoint, make_queue: Callable[..., str], serve: Serve
) -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    first, second = make_queue(), make_queue()
    for url in (first, second):
        metrics.watch(serve(url, Echo(), sqs_client=endpoint.client()))
    client = metrics.watch(AsyncRpcClient(sqs_client=endpoint.client(), hooks=metrics.hooks))

    async def calls() -> Any:
        async with client:
            return [await client.call(url, 1, timeout=10) for url in (first, second)]

    assert asyncio.run(calls()) == [{"echo": 1}, {"echo": 1}]
    for url in (first, second):
        ok = registry.get_sample_value(
            "sqs_rpc_client_calls_total", {"queue": _queue(url), "outcome": "ok"}
        )
        assert ok == 1
        created = registry.get_sample_value(
            "sqs_rpc_server_sqs_requests_total",
            {"queue": _queue(url), "operation": "GetQueueAttributes"},
        )
        assert created == 1
    metrics.unwatch(client)
    assert (
        registry.get_sample_value("sqs_rpc_client_sqs_requests_total", {"operation": "CreateQueue"})
        is None
    )


def test_two_metrics_need_two_registries() -> None:
    registry = CollectorRegistry()
    PrometheusMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusMetrics(registry)
