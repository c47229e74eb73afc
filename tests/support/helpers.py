"""The test endpoint, waiting with a deadline, and small SQS queries the tests share."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from sqs_rpc import RpcClient
from sqs_rpc._aws import build_client
from sqs_rpc._codecs import JSON_CONTENT_TYPE
from sqs_rpc._server.replies import reply_message

__all__ = [
    "ROOT",
    "S3_SERVERS",
    "Endpoint",
    "heartbeating_clients",
    "messages_in",
    "queue_listed",
    "server_name",
    "stored_reply",
    "wait_for",
]

ROOT = Path(__file__).resolve().parents[2]  # the repository: examples/, docs/, README.md
S3_SERVERS = frozenset({"moto", "localstack"})


def server_name() -> str:
    """The name of the SQS implementation under test (SQS_RPC_TEST_SERVER, default moto)."""
    return os.environ.get("SQS_RPC_TEST_SERVER", "moto").strip().lower() or "moto"


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Wait until ``condition()`` is truthy; fail the test at the deadline. Returns the value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)


def messages_in(sqs: Any, queue_url: str) -> int:
    """Messages in a queue, visible or in flight (SQS's approximate counts)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def queue_listed(sqs: Any, queue_url: str) -> bool:
    """Whether ListQueues (what a sweeper sees) still lists the queue."""
    name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    return queue_url in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [])


class Endpoint:
    """Where the integration tests' SQS lives, and how to get a client for it."""

    def __init__(self, endpoint_url: str, region_name: str) -> None:
        self.endpoint_url = endpoint_url
        self.region_name = region_name

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(
            aws_access_key_id=self.credentials[0],
            aws_secret_access_key=self.credentials[1],
            region_name=self.region_name,
        )

    @property
    def credentials(self) -> tuple[str, str]:
        return (
            os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        )

    def client(self) -> Any:
        # Not from session(): a new boto3 session parses botocore's service models again.
        return build_client(
            "sqs",
            None,
            credentials=self.credentials,
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
        )

    def s3_client(self) -> Any:
        """An S3 client for the same endpoint (path-style: the endpoint is an IP address)."""
        return build_client(
            "s3",
            None,
            credentials=self.credentials,
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            config=Config(s3={"addressing_style": "path"}),
        )


def stored_reply(correlation_id: str, body: str) -> dict[str, Any]:
    """An ``ok`` reply as the idempotency store and the reply cache keep it."""
    reply = reply_message(correlation_id, "ok", body, JSON_CONTENT_TYPE, {})
    return dict(reply.to_send_kwargs())


TagQueueCalls = list[tuple[float, str]]


@contextmanager
def heartbeating_clients(
    endpoint: Endpoint, queue_url: str, interval: float, count: int = 3
) -> Iterator[tuple[list[RpcClient], TagQueueCalls]]:
    """``count`` open clients, each with a call in flight, so each has a reply queue.

    They share one boto3 client whose ``TagQueue`` requests (the heartbeats) are recorded as
    ``(time.monotonic(), queue URL)`` in the list yielded with them. The clients close on exit.
    """
    sqs = endpoint.client()
    calls: TagQueueCalls = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append((time.monotonic(), params["QueueUrl"]))

    sqs.meta.events.register("before-parameter-build.sqs.TagQueue", record)
    with ExitStack() as stack:
        clients = [
            stack.enter_context(
                RpcClient(sqs_client=sqs, heartbeat_interval=interval, idle_retention=60)
            )
            for _ in range(count)
        ]
        for client in clients:
            client.call_async(queue_url, "x", timeout=60)
        yield clients, calls
