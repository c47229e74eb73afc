"""The process-wide heartbeat: one thread, one TagQueue per interval, backoff on throttling."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sqs_rpc import ConfigurationError, RpcClient
from sqs_rpc._attributes import HEARTBEAT_TAG, RETENTION_TAG
from sqs_rpc._client.heartbeat import SCHEDULER, THREAD_NAME
from tests.support.helpers import Endpoint, heartbeating_clients, wait_for


def heartbeat_of(sqs: Any, url: str) -> int:
    return int(sqs.list_queue_tags(QueueUrl=url)["Tags"][HEARTBEAT_TAG])


def heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME and t.is_alive()]


def test_reply_queue_is_created_with_both_tags(sqs: Any, queue_url: str) -> None:
    before = int(time.time())
    with RpcClient(sqs_client=sqs, idle_retention=900) as client:
        client.call_async(queue_url, "x", timeout=30)
        assert client.reply_queue_url is not None
        tags = sqs.list_queue_tags(QueueUrl=client.reply_queue_url)["Tags"]
        assert tags[RETENTION_TAG] == "900"
        assert int(tags[HEARTBEAT_TAG]) >= before


def test_many_clients_share_one_thread(endpoint: Endpoint, queue_url: str) -> None:
    with heartbeating_clients(endpoint, queue_url, interval=0.5) as (clients, calls):
        assert len(heartbeat_threads()) == 1
        assert SCHEDULER.registered() == 3
        urls = {client.reply_queue_url for client in clients}
        # Every queue gets its turn: the oldest heartbeat goes first.
        wait_for(lambda: {url for _, url in calls} == urls, timeout=30)
    wait_for(lambda: not heartbeat_threads(), timeout=10)  # gone with the last client
    # How often each queue is refreshed: tests/system/test_many_clients.py.


def test_throttled_heartbeats_back_off_and_retry(endpoint: Endpoint, queue_url: str) -> None:
    sqs = endpoint.client()
    throttled: list[float] = []

    def throttle(model: Any, **_: Any) -> None:
        if len(throttled) < 3:
            throttled.append(time.monotonic())
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                model.name,
            )

    sqs.meta.events.register("before-call.sqs.TagQueue", throttle)
    throttles_before = SCHEDULER.throttles
    with RpcClient(sqs_client=sqs, heartbeat_interval=0.5, idle_retention=10) as client:
        client.call_async(queue_url, "x", timeout=60)
        url = client.reply_queue_url
        assert url is not None
        created = heartbeat_of(sqs, url)
        wait_for(lambda: heartbeat_of(sqs, url) > created, timeout=30, interval=0.2)
        assert len(throttled) == 3
        assert SCHEDULER.throttles - throttles_before == 3  # counted, backed off, and never raised


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"heartbeat_interval": 60.0, "idle_retention": 120}, "three heartbeat intervals"),
        ({"heartbeat_interval": 1.0, "idle_retention": 10.5}, "whole seconds"),
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"reply_wait_time_seconds": 0}, "reply_wait_time_seconds"),
        ({"reply_wait_time_seconds": 21}, "reply_wait_time_seconds"),
    ],
)
def test_bad_heartbeat_combinations_are_rejected_at_construction(
    sqs: Any, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        RpcClient(sqs_client=sqs, **options)


def test_a_crowded_process_warns(
    sqs: Any, queue_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with ExitStack() as stack:
        for _ in range(2):  # each needs 10 TagQueue calls a second: together over the cap
            client = stack.enter_context(
                RpcClient(sqs_client=sqs, heartbeat_interval=0.1, idle_retention=1)
            )
            client.call_async(queue_url, "x", timeout=60)
    assert "Share one RpcClient between threads" in caplog.text
