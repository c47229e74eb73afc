"""The visibility heartbeat over HTTP: a long handler keeps its message and runs once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import (
    ConfigurationError,
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    RpcClient,
)
from sqs_rpc._server.visibility import VisibilityHeartbeat

Serve = Callable[..., MessagePoller]


class Slow(MessageHandler):
    """Runs for ``seconds`` (or until a second run starts); counts its runs."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.runs = 0
        self.second_run = threading.Event()

    def handle(self, message: IncomingMessage) -> Any:
        with self.lock:
            self.runs += 1
            if self.runs > 1:
                self.second_run.set()
                return "second"
        self.second_run.wait(self.seconds)
        return "first"


def test_heartbeat_must_be_shorter_than_the_visibility_timeout(sqs: Any) -> None:
    with pytest.raises(ConfigurationError, match="shorter than the visibility timeout"):
        MessagePoller(
            "http://q/123456789012/x",
            Slow(0),
            sqs_client=sqs,
            visibility_timeout=5,
            visibility_extension_interval=5,
        )


def test_heartbeat_is_checked_against_the_queue_at_start(
    sqs: Any, make_queue: Callable[..., str]
) -> None:
    queue_url = make_queue(VisibilityTimeout="2")
    poller = MessagePoller(queue_url, Slow(0), sqs_client=sqs, visibility_extension_interval=3)
    with pytest.raises(ConfigurationError, match="visibility_extension_interval"):
        poller.start()
    poller.stop()


@pytest.mark.timeout(90)
def test_handler_running_three_visibility_timeouts_runs_once(
    sqs: Any, make_queue: Callable[..., str], serve: Serve, client: RpcClient
) -> None:
    queue_url = make_queue(VisibilityTimeout="2")
    handler = Slow(6.5)
    # Two servers on one queue: without the heartbeat, the message reappears after 2 s and the
    # other server (which has no reply cache entry for it) runs it a second time. One worker
    # each, so the busy server does not receive the copy itself.
    serve(queue_url, handler, visibility_extension_interval=0.5, concurrency=1)
    serve(queue_url, handler, visibility_extension_interval=0.5, concurrency=1)
    assert client.call(queue_url, 1, timeout=60) == "first"
    assert handler.runs == 1


@pytest.mark.timeout(90)
def test_extension_stops_at_the_cap(
    sqs: Any, make_queue: Callable[..., str], serve: Serve, client: RpcClient
) -> None:
    queue_url = make_queue(VisibilityTimeout="1")
    handler = Slow(30)
    for _ in range(2):
        serve(
            queue_url,
            handler,
            visibility_extension_interval=0.3,
            max_visibility_extension=2,
            concurrency=1,
        )
    future = client.call_async(queue_url, 1, timeout=60)
    assert handler.second_run.wait(30)  # the capped message was let go and ran again
    assert future.result(timeout=30) in {"first", "second"}


@pytest.mark.timeout(60)
def test_a_message_wakes_no_idle_heartbeat_and_is_still_extended_in_time(
    sqs: Any, queue_url: str
) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody="x")
    messages: list[Any] = []
    while not messages:
        messages = sqs.receive_message(QueueUrl=queue_url).get("Messages", [])
    extended = threading.Event()
    sqs.meta.events.register(
        "after-call.sqs.ChangeMessageVisibilityBatch", lambda **_: extended.set()
    )
    heartbeat = VisibilityHeartbeat(
        sqs, queue_url, owner="test", interval=0.5, timeout=30, max_extension=600
    )
    # Idle, the heartbeat looks again one interval later, rather than only when woken...
    assert heartbeat._beat() == pytest.approx(0.5, abs=0.1)
    # ... so a message tracked now is due no sooner than that look: it wakes no thread (a
    # lone call used to wake it for every message).
    token = heartbeat.track(messages[0]["ReceiptHandle"], time.monotonic())
    assert not heartbeat._loop._wakeup.is_set()
    heartbeat.start()
    try:
        assert extended.wait(10), "the message was never extended"
    finally:
        heartbeat.untrack(token)
        assert heartbeat.stop(10)
