"""Transient SQS faults over HTTP: the poller backs off, recovers, and says how it is."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError

from sqs_rpc import MessagePoller, PollerHealth, RpcClient
from tests.support.handlers import EchoBody
from tests.support.helpers import Endpoint, wait_for

Serve = Callable[..., MessagePoller]


def _client_without_retries(endpoint: Endpoint) -> Any:
    # botocore's own retries would hide short faults; the poller's recovery is under test.
    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        region_name=endpoint.region_name,
    )
    return session.client(
        "sqs",
        endpoint_url=endpoint.endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def test_poller_survives_connection_resets_and_recovers(
    endpoint: Endpoint, queue_url: str, serve: Serve, client: RpcClient
) -> None:
    server_sqs = _client_without_retries(endpoint)
    down = threading.Event()
    down.set()

    def reset_connection(request: Any, **_: Any) -> None:
        if down.is_set():
            raise ConnectionClosedError(endpoint_url=request.url)

    server_sqs.meta.events.register("before-send.sqs.ReceiveMessage", reset_connection)
    poller = serve(queue_url, EchoBody(), sqs_client=server_sqs)
    wait_for(lambda: poller.health().consecutive_receive_errors >= 3, timeout=30)
    health = poller.health(max_receive_age=0.001)
    assert health.receiver_alive
    assert health.running
    assert health.last_receive_age is None
    assert not health.healthy  # no receive has ever succeeded
    down.clear()
    assert client.call(queue_url, "back", timeout=30) == "back"
    health = poller.health()
    assert health.healthy
    assert health.consecutive_receive_errors == 0
    assert poller.stats().receive_errors >= 3


def test_stats_count_what_happened(client: RpcClient, queue_url: str, serve: Serve) -> None:
    poller = serve(queue_url, EchoBody())
    for i in range(3):
        assert client.call(queue_url, i, timeout=20) == i
    wait_for(lambda: poller.stats().deleted == 3)
    stats = poller.stats()
    assert (stats.received, stats.handled, stats.replies_sent, stats.failed) == (3, 3, 3, 0)
    assert stats.in_flight == 0


def test_health_of_a_stopped_poller(sqs: Any, queue_url: str) -> None:
    poller = MessagePoller(queue_url, EchoBody(), sqs_client=sqs, wait_time_seconds=1)
    assert poller.health() == PollerHealth(
        healthy=False,
        running=False,
        receiver_alive=False,
        last_receive_age=None,
        consecutive_receive_errors=0,
        in_flight=0,
    )
    poller.start()
    wait_for(lambda: poller.health().last_receive_age is not None)
    assert poller.health().healthy
    poller.stop()
    assert not poller.health().healthy
