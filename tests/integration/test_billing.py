"""stats().billed_requests and stats().s3_requests over real round trips."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sqs_rpc import MessagePoller, RpcClient, S3Offload
from tests.support.handlers import Echo
from tests.support.helpers import Endpoint, wait_for

Serve = Callable[..., MessagePoller]
KiB = 1024


def _sends(counts: dict[str, int] | Any) -> int:
    # A lone call goes as SendMessage, concurrent ones share a SendMessageBatch.
    return int(counts.get("SendMessage", 0) + counts.get("SendMessageBatch", 0))


def test_a_100_kib_request_is_two_billed_requests(
    endpoint: Endpoint, queue_url: str, serve: Serve
) -> None:
    poller = serve(queue_url, Echo())
    # A boto3 client of its own: one shared with the poller would count the poller's requests.
    with RpcClient(sqs_client=endpoint.client()) as client:
        client.call(queue_url, "x" * (100 * KiB), timeout=30)
        stats = client.stats()
    assert _sends(stats.requests) == 1
    assert _sends(stats.billed_requests) == 2
    # The server received it (2 billed: its payload) and replied with 100 KiB (2 billed).
    server = wait_for(lambda: (s := poller.stats()).replies_sent == 1 and s, timeout=10)
    assert _sends(server.billed_requests) == 2
    assert server.billed_requests["ReceiveMessage"] >= server.requests["ReceiveMessage"] + 1


def test_small_calls_bill_one_request_each(
    endpoint: Endpoint, queue_url: str, serve: Serve
) -> None:
    serve(queue_url, Echo())
    with RpcClient(sqs_client=endpoint.client()) as client:
        for i in range(3):
            client.call(queue_url, i, timeout=30)
        stats = client.stats()
    assert stats.billed_requests == stats.requests


@pytest.fixture
def bucket(endpoint: Endpoint) -> Iterator[tuple[Any, str]]:
    s3 = endpoint.s3_client()
    name = f"sqs-rpc-test-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    yield s3, name
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.mark.s3
def test_s3_requests_of_an_offloaded_call_are_counted(
    endpoint: Endpoint, queue_url: str, serve: Serve, bucket: tuple[Any, str]
) -> None:
    _, name = bucket
    # Each side its own S3 client: a shared one counts both sides' requests on each.
    server_offload = S3Offload(bucket=name, s3_client=endpoint.s3_client(), threshold="always")
    poller = serve(queue_url, Echo(), offload=server_offload)
    offload = S3Offload(bucket=name, s3_client=endpoint.s3_client(), threshold="always")
    with RpcClient(sqs_client=endpoint.client(), offload=offload) as client:
        client.call(queue_url, "hello", timeout=30)
        assert client.stats().s3_requests.get("PutObject") == 1
        # The reply's body is in S3 too: the client read it.
        assert client.stats().s3_requests.get("GetObject") == 1
    wait_for(lambda: poller.stats().s3_requests.get("GetObject") == 1, timeout=10)
    assert poller.stats().s3_requests.get("PutObject") == 1
