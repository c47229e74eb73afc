"""sqs_rpc.testing and sqs_rpc.pytest_plugin: the helpers users test their own code with."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from sqs_rpc import IncomingMessage, MessageHandler, RemoteError, Retry
from sqs_rpc.testing import rpc_test_server
from tests.support.helpers import Endpoint, wait_for


class Orders(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        if message.body["order_id"] < 0:
            raise ValueError("no such order")
        return {"order_id": message.body["order_id"], "group": message.group_id}


class AlwaysRetry(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        raise Retry("not yet", delay=0)


@pytest.mark.embedded_server
def test_rpc_test_server_starts_and_removes_its_own_server() -> None:
    with rpc_test_server(Orders()) as rpc:
        assert rpc.call({"order_id": 7}) == {"order_id": 7, "group": None}
        with pytest.raises(RemoteError, match="no such order"):
            rpc.call({"order_id": -1})
        assert rpc.endpoint_url.startswith("http://127.0.0.1:")
        assert rpc.poller.running
        sqs = rpc.sqs_client()
    assert rpc.client.closed
    assert not rpc.poller.running
    with pytest.raises(EndpointConnectionError):
        sqs.list_queues()  # the embedded server is gone with the block


def test_rpc_test_server_on_an_endpoint_cleans_up(endpoint: Endpoint) -> None:
    sqs = endpoint.client()
    with rpc_test_server(
        Orders(),
        endpoint_url=endpoint.endpoint_url,
        region_name=endpoint.region_name,
        concurrency=2,
        timeout=20,
    ) as rpc:
        assert [rpc.call({"order_id": i}) for i in range(3)] == [
            {"order_id": i, "group": None} for i in range(3)
        ]
        assert rpc.publish({"order_id": 9})
        wait_for(lambda: rpc.poller.stats().handled == 4, 20)
        made = [rpc.queue_url, rpc.dead_letter_queue_url, rpc.client.reply_queue_url]
    for url in made:
        with pytest.raises(sqs.exceptions.QueueDoesNotExist):
            sqs.get_queue_attributes(QueueUrl=url)


def test_rpc_test_server_fifo_queue(endpoint: Endpoint) -> None:
    with rpc_test_server(
        Orders(), endpoint_url=endpoint.endpoint_url, region_name=endpoint.region_name, fifo=True
    ) as rpc:
        assert rpc.queue_url.endswith(".fifo")
        assert rpc.call({"order_id": 1}, group_id="alice") == {"order_id": 1, "group": "alice"}


def test_rpc_test_server_gives_the_queue_a_dead_letter_queue(endpoint: Endpoint) -> None:
    with rpc_test_server(
        AlwaysRetry(),
        endpoint_url=endpoint.endpoint_url,
        region_name=endpoint.region_name,
        max_receive_count=2,
        queue_attributes={"VisibilityTimeout": "1"},
    ) as rpc:
        sqs = rpc.sqs_client()
        attributes = sqs.get_queue_attributes(
            QueueUrl=rpc.queue_url, AttributeNames=["RedrivePolicy", "VisibilityTimeout"]
        )["Attributes"]
        assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 2
        assert attributes["VisibilityTimeout"] == "1"
        with pytest.raises(RemoteError, match="gave up after 2 attempts"):
            rpc.call({"order_id": 1}, timeout=30)
        assert rpc.dead_letter_queue_url is not None

        def in_dead_letter_queue() -> bool:
            received = sqs.receive_message(QueueUrl=rpc.dead_letter_queue_url, WaitTimeSeconds=1)
            return bool(received.get("Messages"))

        wait_for(in_dead_letter_queue, 30)


def test_testing_module_does_not_import_pytest() -> None:
    code = "import sys; sys.modules['pytest'] = None; import sqs_rpc.testing; print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
