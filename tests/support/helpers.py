"""The test endpoint, waiting with a deadline, and small SQS queries the tests share."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from sqs_rpc._codecs import JSON_CONTENT_TYPE
from sqs_rpc._server.replies import reply_message

__all__ = [
    "ROOT",
    "S3_SERVERS",
    "Endpoint",
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
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            region_name=self.region_name,
        )

    def client(self) -> Any:
        return self.session().client("sqs", endpoint_url=self.endpoint_url)

    def s3_client(self) -> Any:
        """An S3 client for the same endpoint (path-style: the endpoint is an IP address)."""
        return self.session().client(
            "s3", endpoint_url=self.endpoint_url, config=Config(s3={"addressing_style": "path"})
        )


def stored_reply(correlation_id: str, body: str) -> dict[str, Any]:
    """An ``ok`` reply as the idempotency store and the reply cache keep it."""
    reply = reply_message(correlation_id, "ok", body, JSON_CONTENT_TYPE, {})
    return dict(reply.to_send_kwargs())
