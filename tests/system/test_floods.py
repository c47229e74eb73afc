"""Junk must not starve real work: floods of junk replies and of poison requests, over HTTP.

Anyone allowed to send to ``sqs-rpc-reply-*`` (every client and server, by the documented IAM
policy) can fill a client's reply queue; anyone allowed to send to a request queue can fill
it with messages no server can decode. Real calls must still be answered within their
timeouts. The rates each side withstands are measured by ``tools/junk_flood``. These are load
tests (hundreds of messages cycling), so they run in the system tier, one at a time.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, RpcClient
from tests.support.handlers import EchoBody as Echo
from tests.support.helpers import wait_for

Serve = Callable[..., MessagePoller]


class Gated(MessageHandler):
    """Answers at once, except a request for "held", which waits for ``gate``."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def handle(self, message: IncomingMessage) -> Any:
        if message.body == "held":
            self.gate.wait(60)
        return message.body


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def poison(index: int) -> dict[str, Any]:
    """A request no server can decode, in one of several ways; none names a reply queue."""
    kinds: list[dict[str, Any]] = [
        {"MessageBody": "{not json", "MessageAttributes": {"SqsRpcVersion": _string("1")}},
        {"MessageBody": "1", "MessageAttributes": {"SqsRpcVersion": _string("99")}},
        {"MessageBody": "1", "MessageAttributes": {"Deadline": _string("soon")}},
        {"MessageBody": "1", "MessageAttributes": {"ContentType": _string("text/x-poison")}},
    ]
    return {"Id": str(index % 10), **kinds[index % len(kinds)]}


def junk_reply(index: int) -> dict[str, Any]:
    """A reply that looks valid to anyone but answers no call: a random correlation id."""
    return {
        "Id": str(index % 10),
        "MessageBody": '{"junk": true}',
        "MessageAttributes": {
            "CorrelationId": _string(uuid.uuid4().hex),
            "SqsRpcVersion": _string("1"),
            "Status": _string("ok"),
            "ContentType": _string("application/json"),
        },
    }


def send_batches(sqs: Any, queue_url: str, entries: list[dict[str, Any]]) -> int:
    """Send ``entries`` ten at a time; stop when the queue is gone. Returns how many went."""
    sent = 0
    for start in range(0, len(entries), 10):
        try:
            sqs.send_message_batch(QueueUrl=queue_url, Entries=entries[start : start + 10])
        except sqs.exceptions.QueueDoesNotExist:
            break
        sent += len(entries[start : start + 10])
    return sent


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_client_answers_calls_while_its_reply_queue_is_flooded_with_junk(
    sqs: Any, queue_url: str, serve: Serve, client: RpcClient
) -> None:
    serve(queue_url, Echo())
    assert client.call(queue_url, "first", timeout=30) == "first"
    flooded = client.reply_queue_url
    assert flooded is not None
    # What anyone allowed to send to sqs-rpc-reply-* can do. SQS hands out the oldest
    # messages first, so a reply sent after the junk waits until all of it was received.
    sent = send_batches(sqs, flooded, [junk_reply(i) for i in range(2000)])
    assert sent >= 50, sent
    # The client stopped naming the flooded queue in new calls (it made a new one).
    wait_for(lambda: client.reply_queue_url != flooded, timeout=60)
    with ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(client.call, queue_url, i, timeout=30) for i in range(8)]
        assert sorted(call.result() for call in calls) == list(range(8))
    assert client.reply_queue_url != flooded


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_server_answers_calls_while_poison_without_a_dead_letter_queue_cycles(
    sqs: Any, make_queue: Callable[..., str], serve: Serve, client: RpcClient
) -> None:
    # No redrive policy, and a short visibility timeout: every undecodable message comes back
    # two seconds after each receive, for as long as the queue keeps it (days).
    queue_url = make_queue(VisibilityTimeout="2")
    send_batches(sqs, queue_url, [poison(i) for i in range(300)])
    poller = serve(queue_url, Echo())
    with ThreadPoolExecutor(15) as pool:
        calls = [pool.submit(client.call, queue_url, i, timeout=45) for i in range(15)]
        assert sorted(call.result() for call in calls) == list(range(15))
    assert poller.stats().undecodable >= 1


@pytest.mark.timeout(120)
def test_a_call_waiting_on_a_flooded_queue_gets_its_reply_and_then_the_queue_goes(
    sqs: Any, queue_url: str, serve: Serve, client: RpcClient
) -> None:
    handler = Gated()
    serve(queue_url, handler)
    assert client.call(queue_url, "first", timeout=30) == "first"
    flooded = client.reply_queue_url
    assert flooded is not None
    held = client.call_async(queue_url, "held", timeout=60)
    assert send_batches(sqs, flooded, [junk_reply(i) for i in range(100)]) == 100
    wait_for(lambda: client.reply_queue_url != flooded, timeout=30)
    # New calls use a new queue; the waiting call is still served by the old one.
    assert client.call(queue_url, "new", timeout=30) == "new"
    assert client.reply_queue_url not in (None, flooded)
    handler.gate.set()
    assert held.result(timeout=60) == "held"
    # No call waits on it any more: the flooded queue is deleted, junk and all.
    queue_name = flooded.rsplit("/", 1)[1]
    wait_for(
        lambda: flooded not in sqs.list_queues(QueueNamePrefix=queue_name).get("QueueUrls", [])
    )
