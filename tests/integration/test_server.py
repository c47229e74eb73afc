"""MessagePoller behaviour over HTTP: validation, bad input, concurrency, shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sqs_rpc import (
    ClientClosedError,
    ConfigurationError,
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    QueueDoesNotExist,
    RpcClient,
)
from tests.support.handlers import EchoBody
from tests.support.helpers import Endpoint, messages_in, wait_for

Serve = Callable[..., MessagePoller]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"wait_time_seconds": 0}, "wait_time_seconds"),
        ({"wait_time_seconds": 21}, "wait_time_seconds"),
        ({"shutdown_timeout": -1}, "shutdown_timeout"),
    ],
)
def test_invalid_options_are_rejected(sqs: Any, options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        MessagePoller("http://q/x", EchoBody(), sqs_client=sqs, **options)


def test_handler_without_handle_is_rejected(sqs: Any) -> None:
    with pytest.raises(ConfigurationError, match="MessageHandler"):
        MessagePoller("http://q/x", object(), sqs_client=sqs)  # type: ignore[arg-type]


def test_queue_name_instead_of_url_is_rejected(sqs: Any) -> None:
    with pytest.raises(ConfigurationError, match="URL"):
        MessagePoller("my-queue", EchoBody(), sqs_client=sqs)


def test_start_fails_fast_on_a_missing_queue(sqs: Any, queue_url: str) -> None:
    poller = MessagePoller(queue_url + "-missing", EchoBody(), sqs_client=sqs)
    with pytest.raises(QueueDoesNotExist):
        poller.start()
    poller.stop()


def test_start_and_stop_are_idempotent(sqs: Any, queue_url: str) -> None:
    poller = MessagePoller(queue_url, EchoBody(), sqs_client=sqs, wait_time_seconds=1)
    assert repr(poller).startswith("<MessagePoller unopened ")
    assert not poller.running
    poller.start()
    poller.start()
    assert poller.running
    assert repr(poller).startswith("<MessagePoller opened ")
    assert poller.stop()
    assert poller.stop()
    assert not poller.running
    assert repr(poller).startswith("<MessagePoller closed ")
    with pytest.raises(ClientClosedError, match="MessagePoller is stopped; create a new one"):
        poller.start()


def test_concurrency_bounds_running_handlers(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    lock = threading.Lock()
    running = [0]
    peak = [0]
    gate = threading.Event()

    class Tracking(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            gate.wait(10)
            with lock:
                running[0] -= 1
            return message.body

    serve(queue_url, Tracking(), concurrency=3)
    futures = [client.call_async(queue_url, i, timeout=30) for i in range(12)]
    wait_for(lambda: running[0] == 3)
    gate.set()
    assert [f.result(timeout=30) for f in futures] == list(range(12))
    assert peak[0] == 3


def test_a_lone_slow_handler_does_not_hold_back_the_next_message(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    # After a lone message the receiver waits for it before receiving again (its reply then
    # has the process to itself), but only briefly: a slow one must not stall the queue.
    gate = threading.Event()
    started = threading.Event()

    class SlowFirst(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            if message.body == "slow":
                started.set()
                gate.wait(30)
            return message.body

    serve(queue_url, SlowFirst(), concurrency=2)
    slow = client.call_async(queue_url, "slow", timeout=60)
    assert started.wait(30)
    try:
        assert client.call(queue_url, "fast", timeout=20) == "fast"
        assert not slow.done()
    finally:
        gate.set()
    assert slow.result(timeout=30) == "slow"


def test_garbage_request_gets_an_error_reply_and_stays_for_redrive(
    queue_url: str, make_queue: Callable[..., str], serve: Serve, sqs: Any
) -> None:
    reply_queue = make_queue(f"sqs-rpc-reply-{uuid.uuid4().hex}")
    handler = EchoBody()
    poller = serve(queue_url, handler)
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody="{not json",
        MessageAttributes={
            "ReplyTo": {"DataType": "String", "StringValue": reply_queue},
            "CorrelationId": {"DataType": "String", "StringValue": "c-1"},
        },
    )
    replies = sqs.receive_message(
        QueueUrl=reply_queue, WaitTimeSeconds=10, MessageAttributeNames=["All"]
    )["Messages"]
    (reply,) = replies
    assert reply["MessageAttributes"]["Status"]["StringValue"] == "error"
    assert reply["MessageAttributes"]["CorrelationId"]["StringValue"] == "c-1"
    assert json.loads(reply["Body"])["type"] == "DecodeError"
    poller.stop()
    assert handler.calls == 0
    assert messages_in(sqs, queue_url) == 1  # still there, for the dead-letter queue


def test_undecodable_one_way_message_is_left_for_redrive(
    queue_url: str, serve: Serve, sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    handler = EchoBody()
    poller = serve(queue_url, handler)
    sqs.send_message(QueueUrl=queue_url, MessageBody="{not json")
    wait_for(lambda: "left for redrive" in caplog.text)
    poller.stop()
    assert handler.calls == 0
    assert messages_in(sqs, queue_url) == 1


def test_failing_one_way_handler_leaves_the_message(
    client: RpcClient, queue_url: str, serve: Serve, sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    class Boom(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            raise RuntimeError("boom")

    poller = serve(queue_url, Boom())
    client.publish(queue_url, 1)
    wait_for(lambda: "left for retry/redrive" in caplog.text)
    poller.stop()
    assert messages_in(sqs, queue_url) == 1


def test_request_whose_reply_queue_is_gone_is_deleted(
    queue_url: str,
    make_queue: Callable[..., str],
    serve: Serve,
    sqs: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="sqs_rpc")
    gone = make_queue(f"sqs-rpc-reply-{uuid.uuid4().hex}")
    sqs.delete_queue(QueueUrl=gone)
    handler = EchoBody()
    poller = serve(queue_url, handler)
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody="1",
        MessageAttributes={
            "ReplyTo": {"DataType": "String", "StringValue": gone},
            "CorrelationId": {"DataType": "String", "StringValue": "c"},
        },
    )
    wait_for(lambda: "is gone" in caplog.text)
    poller.stop()
    assert handler.calls == 1
    assert messages_in(sqs, queue_url) == 0


def test_stop_waits_for_running_handlers(client: RpcClient, queue_url: str, serve: Serve) -> None:
    started, release = threading.Event(), threading.Event()

    class Blocking(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            started.set()
            release.wait(10)
            return "done"

    poller = serve(queue_url, Blocking())
    future = client.call_async(queue_url, 1, timeout=30)
    assert started.wait(10)
    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(poller.stop()))
    stopper.start()
    release.set()
    stopper.join(30)
    assert stopped == [True]
    assert future.result(timeout=10) == "done"  # the in-flight call was answered


def test_stop_gives_up_on_a_stuck_handler_and_keeps_its_message(
    sqs: Any, queue_url: str, serve: Serve, client: RpcClient
) -> None:
    started, release = threading.Event(), threading.Event()

    class Stuck(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            started.set()
            release.wait(30)
            return None

    poller = serve(queue_url, Stuck())
    client.publish(queue_url, 1)
    assert started.wait(10)
    assert poller.stop(timeout=0.2) is False
    release.set()
    wait_for(lambda: messages_in(sqs, queue_url) == 0)  # the late finish still deletes


@pytest.mark.timeout(90)
def test_run_stops_gracefully_on_sigterm(endpoint: Endpoint, queue_url: str, sqs: Any) -> None:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "examples" / "echo_server.py"),
            queue_url,
            "--endpoint-url",
            endpoint.endpoint_url,
            "--region",
            endpoint.region_name,
            "--wait-time",
            "1",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with RpcClient(sqs_client=sqs) as rpc:
            assert rpc.call(queue_url, "before", timeout=30) == {"echo": "before"}
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
        assert server.returncode == 0, stderr
        assert "SIGTERM received: stopping" in stderr
        assert "stopped polling" in stderr
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.mark.parametrize("value", [float("inf"), "10", True])
def test_shutdown_timeout_must_be_finite_seconds(sqs: Any, value: Any) -> None:
    with pytest.raises(ConfigurationError, match="shutdown_timeout"):
        MessagePoller("http://q/x", EchoBody(), sqs_client=sqs, shutdown_timeout=value)


def test_codec_is_checked(sqs: Any) -> None:
    with pytest.raises(ConfigurationError, match="codec"):
        MessagePoller("http://q/x", EchoBody(), sqs_client=sqs, codec=object())  # type: ignore[arg-type]
