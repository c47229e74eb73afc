"""Junk must not starve real work: floods of junk replies and of poison requests, over HTTP.

Anyone allowed to send to ``sqs-rpc-reply-*`` (every client and server, by the documented IAM
policy) can fill a client's reply queue; anyone allowed to send to a request queue can fill
it with messages no server can decode. Real calls must still be answered within their
timeouts. The rates each side withstands are measured by ``tools/junk_flood.py``, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, RpcClient

Serve = Callable[..., MessagePoller]


class Echo(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
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


def send_batches(sqs: Any, queue_url: str, entries: list[dict[str, Any]]) -> None:
    for start in range(0, len(entries), 10):
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries[start : start + 10])


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
