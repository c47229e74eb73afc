"""FIFO groups under a MessagePoller: a group's backlog holds no worker, and stays hidden.

AWS's FIFO receive "attempts to return as many messages with the same message group ID as
possible", so one receive can bring a group's backlog. These tests send a group's messages
before the poller starts, so that the first receive brings several of them at once (moto does
the same as AWS here: asked for 2, it returns A0 and A1, not A0 and B0).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, RpcClient
from tests.support.helpers import Endpoint, messages_in, wait_for

Serve = Callable[..., MessagePoller]


def fifo_queue(make_queue: Callable[..., str], **attributes: str) -> str:
    return make_queue(
        f"test-{uuid.uuid4().hex[:16]}.fifo",
        FifoQueue="true",
        ContentBasedDeduplication="true",
        **attributes,
    )


class Recording(MessageHandler):
    """Records each run; A0 runs until B0 has started (at most ``patience`` seconds)."""

    def __init__(self, patience: float = 10.0, work: float = 0.0) -> None:
        self.patience = patience
        self.work = work
        self.lock = threading.Lock()
        self.runs: list[str] = []
        self.events: list[tuple[str, str]] = []  # shared with the delete hooks below
        self.b0_started = threading.Event()
        self.a0_saw_b0: bool | None = None

    def handle(self, message: IncomingMessage) -> Any:
        body = str(message.body)
        with self.lock:
            self.runs.append(body)
            self.events.append(("start", body))
        if body == "B0":
            self.b0_started.set()
        if body == "A0":
            self.a0_saw_b0 = self.b0_started.wait(self.patience)
        if self.work:
            threading.Event().wait(self.work)  # the handler's work: it takes this long
        return body


def test_a_groups_backlog_holds_no_worker_from_other_groups(
    make_queue: Callable[..., str], client: RpcClient, serve: Serve
) -> None:
    queue_url = fifo_queue(make_queue)
    for i in range(4):
        client.publish(queue_url, f"A{i}", group_id="A")
    client.publish(queue_url, "B0", group_id="B")
    handler = Recording(patience=10)
    # Two workers; the first receive brings A0 and A1. Before the fix A1 held the second
    # worker, waiting for A0, and B0 could not start until A0 ended: A0 waited in vain.
    serve(queue_url, handler, concurrency=2)
    wait_for(lambda: len(handler.runs) == 5, timeout=30)
    assert handler.a0_saw_b0
    assert [body for body in handler.runs if body[0] == "A"] == ["A0", "A1", "A2", "A3"]


@pytest.mark.timeout(60)
def test_a_groups_next_message_starts_only_once_the_previous_is_deleted(
    endpoint: Endpoint, make_queue: Callable[..., str], client: RpcClient, serve: Serve
) -> None:
    queue_url = fifo_queue(make_queue)
    for i in range(4):
        client.publish(queue_url, f"A{i}", group_id="A")
    handler = Recording(patience=0)
    server_sqs = endpoint.client()
    bodies: dict[str, str] = {}  # receipt handle -> body

    def received(parsed: dict[str, Any], **kwargs: Any) -> None:
        for message in parsed.get("Messages", []):
            bodies[message["ReceiptHandle"]] = json.loads(message["Body"])

    def deleting(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        entries = params.get("Entries", [params])
        context["test_receipts"] = [entry["ReceiptHandle"] for entry in entries]

    def slow_delete(**kwargs: Any) -> None:
        threading.Event().wait(0.3)  # injected latency: each delete takes 0.3 s

    def deleted(parsed: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        failed = {entry["Id"] for entry in parsed.get("Failed", [])}
        with handler.lock:
            for i, receipt in enumerate(context.get("test_receipts", [])):
                if str(i) not in failed:
                    handler.events.append(("deleted", bodies[receipt]))

    events = server_sqs.meta.events
    events.register("after-call.sqs.ReceiveMessage", received)
    for operation in ("DeleteMessage", "DeleteMessageBatch"):
        events.register(f"before-parameter-build.sqs.{operation}", deleting)
        events.register(f"before-send.sqs.{operation}", slow_delete)
        events.register(f"after-call.sqs.{operation}", deleted)
    serve(queue_url, handler, sqs_client=server_sqs, concurrency=4)
    wait_for(lambda: handler.events.count(("deleted", "A3")) == 1, timeout=30)
    with handler.lock:
        events_seen = list(handler.events)
    for i in range(1, 4):
        assert events_seen.index(("deleted", f"A{i - 1}")) < events_seen.index(
            ("start", f"A{i}")
        ), events_seen


@pytest.mark.timeout(90)
def test_held_messages_stay_hidden_while_their_group_outlasts_the_visibility_timeout(
    sqs: Any, make_queue: Callable[..., str], client: RpcClient, serve: Serve
) -> None:
    queue_url = fifo_queue(make_queue, VisibilityTimeout="2")
    for i in range(4):
        client.publish(queue_url, f"A{i}", group_id="A")
    # Each run takes 1.5 s: the group takes 6 s, three times the queue's visibility timeout, so
    # A1 to A3, received at once with A0, must be kept hidden while they wait for their turn.
    handler = Recording(patience=0, work=1.5)
    # A second server, with its own reply cache, receives whatever reappears, and runs it.
    for _ in range(2):
        serve(queue_url, handler, concurrency=4, visibility_extension_interval=0.5)
    wait_for(lambda: len(handler.runs) >= 4 and messages_in(sqs, queue_url) == 0, timeout=30)
    assert handler.runs == ["A0", "A1", "A2", "A3"]
