"""FIFO request queues over HTTP: one group's messages are handled in order, groups in parallel."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, Retry, RpcClient
from tests.support.helpers import wait_for

Serve = Callable[..., MessagePoller]


class Recording(MessageHandler):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.finished: dict[str, list[str]] = {}
        self.b0_started = threading.Event()
        self.a0_saw_b0 = False

    def handle(self, message: IncomingMessage) -> Any:
        body = message.body
        if body == "B0":
            self.b0_started.set()
        if body == "A0":
            # Another group may run meanwhile; the rest of group A must not.
            self.a0_saw_b0 = self.b0_started.wait(10)
        with self.lock:
            self.finished.setdefault(str(message.group_id), []).append(body)
        return body


def test_messages_of_one_group_are_handled_in_order_even_with_concurrency(
    make_queue: Callable[..., str], client: RpcClient, serve: Serve
) -> None:
    queue_url = make_queue(
        f"test-{uuid.uuid4().hex[:16]}.fifo", FifoQueue="true", ContentBasedDeduplication="true"
    )
    for i in range(5):
        for group in "AB":
            client.publish(queue_url, f"{group}{i}", group_id=group)
    handler = Recording()
    serve(queue_url, handler, concurrency=4)
    wait_for(lambda: sum(map(len, handler.finished.values())) == 10, timeout=30)
    assert handler.finished == {"A": [f"A{i}" for i in range(5)], "B": [f"B{i}" for i in range(5)]}
    assert handler.a0_saw_b0  # the two groups ran side by side


def test_calls_on_a_fifo_queue_get_replies(
    make_queue: Callable[..., str], client: RpcClient, serve: Serve
) -> None:
    queue_url = make_queue(
        f"test-{uuid.uuid4().hex[:16]}.fifo", FifoQueue="true", ContentBasedDeduplication="true"
    )
    serve(queue_url, Recording(), concurrency=2)
    futures = [client.call_async(queue_url, f"C{i}", group_id="C", timeout=30) for i in range(4)]
    assert [f.result(timeout=30) for f in futures] == [f"C{i}" for i in range(4)]


def test_identical_calls_are_distinct_requests_despite_content_based_deduplication(
    make_queue: Callable[..., str], client: RpcClient, serve: Serve
) -> None:
    queue_url = make_queue(
        f"test-{uuid.uuid4().hex[:16]}.fifo", FifoQueue="true", ContentBasedDeduplication="true"
    )
    handler = Recording()
    serve(queue_url, handler, concurrency=1)
    # The same body three times: SQS would keep one of them if the body decided identity.
    futures = [client.call_async(queue_url, "same", group_id="S", timeout=30) for _ in range(3)]
    assert [f.result(timeout=30) for f in futures] == ["same"] * 3
    assert handler.finished == {"S": ["same"] * 3}


def test_a_group_is_not_overtaken_when_one_of_its_messages_is_retried(
    make_queue: Callable[..., str], client: RpcClient, serve: Serve
) -> None:
    queue_url = make_queue(
        f"test-{uuid.uuid4().hex[:16]}.fifo", FifoQueue="true", ContentBasedDeduplication="true"
    )
    for i in range(3):
        client.publish(queue_url, f"A{i}", group_id="A")
    finished: list[str] = []

    class RetryFirstOnce(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            if message.body == "A0" and message.receive_count == 1:
                raise Retry("not yet", delay=0)
            finished.append(message.body)

    serve(queue_url, RetryFirstOnce(), concurrency=4)
    wait_for(lambda: len(finished) == 3, timeout=30)
    assert finished == ["A0", "A1", "A2"]
