"""Deadlines under clock skew: a bounded skew is tolerated, a larger one is loud and counted.

The caller's clock is skewed here by writing the request's ``Deadline`` attribute directly
(raw boto3): SQS stamps ``SentTimestamp`` now, by its own clock, while the deadline says the
caller gave up seconds ago. No clock in sqs-rpc is patched.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import ConfigurationError, IncomingMessage, MessageHandler, MessagePoller
from sqs_rpc._server.deadline import expiry
from sqs_rpc._wire import encode_request
from sqs_rpc.aws_lambda import LambdaResponder
from tests.support.helpers import messages_in, wait_for

Serve = Callable[..., MessagePoller]


class Echo(MessageHandler):
    def __init__(self) -> None:
        self.ran = threading.Event()
        self.bodies: list[Any] = []

    def handle(self, message: IncomingMessage) -> Any:
        self.bodies.append(message.body)
        self.ran.set()
        return message.body


def send_with_deadline(sqs: Any, queue_url: str, reply_to: str, deadline_ms: int) -> str:
    """Send a call whose Deadline is what the test says, as a caller with that clock would."""
    correlation_id = uuid.uuid4().hex
    request = encode_request(
        body='"hello"',
        content_type="application/json",
        correlation_id=correlation_id,
        reply_to=reply_to,
        deadline_ms=deadline_ms,
        attributes={},
    )
    sqs.send_message(QueueUrl=queue_url, **request.to_send_kwargs())
    return correlation_id


def replies_to(sqs: Any, reply_queue: str, correlation_id: str) -> list[str]:
    response = sqs.receive_message(
        QueueUrl=reply_queue, MessageAttributeNames=["All"], WaitTimeSeconds=1
    )
    return [
        m["Body"]
        for m in response.get("Messages", [])
        if m["MessageAttributes"]["CorrelationId"]["StringValue"] == correlation_id
    ]


def test_a_call_within_the_skew_tolerance_runs(
    sqs: Any, queue_url: str, reply_queue: str, serve: Serve
) -> None:
    # The caller's clock is 3 s behind: its deadline passed 3 s ago by the server's clock,
    # though SQS accepted the request just now. Before the fix the call expired unrun.
    deadline_ms = int((time.time() - 3) * 1000)
    correlation_id = send_with_deadline(sqs, queue_url, reply_queue, deadline_ms)
    handler = Echo()
    poller = serve(queue_url, handler)  # clock_skew_tolerance 5 s by default
    assert handler.ran.wait(20)
    assert wait_for(lambda: replies_to(sqs, reply_queue, correlation_id), timeout=20) == ['"hello"']
    stats = wait_for(lambda: (s := poller.stats()).handled == 1 and s, timeout=10)
    assert (stats.expired, stats.expired_skewed) == (0, 0)


def test_a_skew_beyond_the_tolerance_is_logged_as_such_and_counted(
    sqs: Any,
    queue_url: str,
    reply_queue: str,
    serve: Serve,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sqs_rpc._server")
    # The caller's clock is 30 s behind SQS's: beyond the tolerance, the call is not run,
    # but it is no quiet INFO line: both clocks are logged at WARNING, and it is counted.
    deadline_ms = int((time.time() - 30) * 1000)
    correlation_id = send_with_deadline(sqs, queue_url, reply_queue, deadline_ms)
    handler = Echo()
    poller = serve(queue_url, handler)
    wait_for(lambda: poller.stats().expired == 1, timeout=20)
    wait_for(lambda: messages_in(sqs, queue_url) == 0, timeout=20)
    assert poller.stats().expired_skewed == 1
    assert handler.bodies == []
    [record] = [
        r for r in caplog.records if r.levelno >= logging.WARNING and "deadline" in r.getMessage()
    ]
    text = record.getMessage()
    assert correlation_id in text
    assert "by this server's clock" in text
    assert "SQS accepted it at" in text
    assert "clock_skew_tolerance=5s" in text


def test_an_ordinary_expiry_is_not_taken_for_skew(
    sqs: Any,
    queue_url: str,
    reply_queue: str,
    serve: Serve,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sqs_rpc._server")
    # A caller that gave up while its request waited: sent before its deadline, by every
    # clock. With no tolerance the server drops it at INFO, as before, and counts no skew.
    deadline_ms = int((time.time() + 0.5) * 1000)
    send_with_deadline(sqs, queue_url, reply_queue, deadline_ms)
    wait_for(lambda: time.time() * 1000 > deadline_ms + 1000, timeout=5)  # it waits a while
    handler = Echo()
    poller = serve(queue_url, handler, clock_skew_tolerance=0)
    wait_for(lambda: poller.stats().expired == 1, timeout=20)
    assert poller.stats().expired_skewed == 0
    assert handler.bodies == []
    assert "after its caller's deadline" in caplog.text
    assert not [
        r for r in caplog.records if r.levelno >= logging.WARNING and "deadline" in r.getMessage()
    ]


def test_a_server_clock_ahead_of_sqs_is_told_from_a_late_call() -> None:
    # The reported case: this server's clock 60 s ahead of SQS's (and of the caller's). The
    # request was sent 1 s ago by SQS's clock, with a 30 s budget.
    sqs_now = 1_800_000_000_000
    late = expiry(
        sqs_now - 1000 + 30_000,
        server_ms=sqs_now + 60_000,
        sqs_ms=sqs_now,
        sent_ms=sqs_now - 1000,
        tolerance=5,
    )
    assert late is not None
    assert late.skewed
    # The same call where the clocks agree and the request waited 40 s: an ordinary expiry.
    waited = expiry(
        sqs_now - 40_000 + 30_000,
        server_ms=sqs_now,
        sqs_ms=sqs_now,
        sent_ms=sqs_now - 40_000,
        tolerance=5,
    )
    assert waited is not None
    assert not waited.skewed


@pytest.mark.parametrize("bad", [-1, 3601, float("nan"), "5", True])
def test_the_tolerance_is_validated_on_both_servers(sqs: Any, bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="clock_skew_tolerance"):
        MessagePoller("http://q/1/x", Echo(), sqs_client=sqs, clock_skew_tolerance=bad)
    with pytest.raises(ConfigurationError, match="clock_skew_tolerance"):
        LambdaResponder(Echo(), sqs_client=sqs, clock_skew_tolerance=bad)
