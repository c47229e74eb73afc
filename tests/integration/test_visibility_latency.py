"""The visibility heartbeat with a slow SQS: extensions on the wire delay nobody else.

The latency is injected into boto3 (a ``before-send`` hook on the server's own client), not
into sqs-rpc: the heartbeat's ``ChangeMessageVisibilityBatch`` takes seconds, as it did when
an endpoint was slow, while every other request is as fast as the test server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, RpcClient
from sqs_rpc._server.visibility import VisibilityHeartbeat
from tests.support.helpers import Endpoint

Serve = Callable[..., MessagePoller]

EXTENSION_LATENCY = 5.0  # seconds each ChangeMessageVisibilityBatch spends "on the wire"
FAST_CALL_BOUND = 2.5  # a fast call must end well within one extension's latency


class SlowExtensions:
    """A boto3 client whose visibility extensions take ``EXTENSION_LATENCY`` seconds."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.sqs = endpoint.client()
        self.on_wire = threading.Event()
        self.sent = threading.Event()
        self.release = threading.Event()  # set at the end of a test: cut the latency short
        self.sqs.meta.events.register(
            "before-send.sqs.ChangeMessageVisibilityBatch", self._before_send
        )
        self.sqs.meta.events.register(
            "after-call.sqs.ChangeMessageVisibilityBatch", self._after_call
        )

    def _before_send(self, **kwargs: Any) -> None:
        self.on_wire.set()
        self.release.wait(EXTENSION_LATENCY)  # the injected latency, not a synchronisation

    def _after_call(self, **kwargs: Any) -> None:
        self.sent.set()


@pytest.fixture
def slow(endpoint: Endpoint) -> Iterator[SlowExtensions]:
    slow = SlowExtensions(endpoint)
    yield slow
    slow.release.set()


class SlowAndFast(MessageHandler):
    """``"slow"`` runs until ``done`` is set; anything else returns at once."""

    def __init__(self) -> None:
        self.done = threading.Event()

    def handle(self, message: IncomingMessage) -> Any:
        if message.body == "slow":
            self.done.wait(30)
        return message.body


@pytest.mark.timeout(90)
def test_fast_calls_do_not_wait_for_a_slow_visibility_extension(
    make_queue: Callable[..., str], serve: Serve, client: RpcClient, slow: SlowExtensions
) -> None:
    queue_url = make_queue(VisibilityTimeout="20")
    handler = SlowAndFast()
    serve(queue_url, handler, sqs_client=slow.sqs, concurrency=4, visibility_extension_interval=1)
    slow_call = client.call_async(queue_url, "slow", timeout=60)
    assert slow.on_wire.wait(15), "the slow handler's message was never extended"
    took = []
    try:
        for i in range(3):
            begun = time.monotonic()
            assert client.call(queue_url, i, timeout=30) == i
            took.append(time.monotonic() - begun)
    finally:
        handler.done.set()
        slow.release.set()
    assert slow_call.result(timeout=30) == "slow"
    # Before the fix, each fast call waited behind the heartbeat's lock, held for the whole
    # 5 s extension: 4 to 10 s each.
    assert max(took) < FAST_CALL_BOUND, took


@pytest.mark.timeout(60)
def test_untrack_waits_for_the_extension_of_its_own_message_on_the_wire(
    sqs: Any, queue_url: str, slow: SlowExtensions
) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody="x")
    sqs.send_message(QueueUrl=queue_url, MessageBody="y")
    messages = []
    while len(messages) < 2:
        messages += sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=2).get(
            "Messages", []
        )
    heartbeat = VisibilityHeartbeat(
        slow.sqs, queue_url, owner="test", interval=0.1, timeout=30, max_extension=600
    )
    heartbeat.start()
    try:
        extended = heartbeat.track(messages[0]["ReceiptHandle"], time.monotonic())
        assert slow.on_wire.wait(10)
        # Tracking and untracking another message does not wait for the request on the wire.
        begun = time.monotonic()
        heartbeat.untrack(heartbeat.track(messages[1]["ReceiptHandle"], time.monotonic()))
        assert time.monotonic() - begun < 1.0
        # Untracking the message being extended waits for its extension: none may follow
        # the delete that comes next.
        untracked = threading.Event()

        def untrack() -> None:
            heartbeat.untrack(extended)
            untracked.set()

        worker = threading.Thread(target=untrack)
        worker.start()
        assert not untracked.wait(0.5)
        assert not slow.sent.is_set()
        slow.release.set()
        assert untracked.wait(10)
        assert slow.sent.is_set()
        worker.join(10)
    finally:
        slow.release.set()
        assert heartbeat.stop(10)
