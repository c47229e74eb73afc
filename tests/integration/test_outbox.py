"""Batched replies and deletes over HTTP: coalescing, and retrying only failed entries."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, RequestCounter, RpcClient
from tests.support.helpers import Endpoint, wait_for

Serve = Callable[..., MessagePoller]


class Together(MessageHandler):
    """Holds every handler until ``parties`` of them run, so they all finish together."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=20)
        self.lock = threading.Lock()
        self.done = 0

    def handle(self, message: IncomingMessage) -> Any:
        self.barrier.wait()
        with self.lock:
            self.done += 1
        return message.body


def test_replies_and_deletes_that_complete_together_go_out_in_batches(
    endpoint: Endpoint, client: RpcClient, queue_url: str, serve: Serve
) -> None:
    futures = [client.call_async(queue_url, i, timeout=30) for i in range(10)]
    server_sqs = endpoint.client()
    counter = RequestCounter.attach(server_sqs)
    poller = serve(queue_url, Together(10), concurrency=10, sqs_client=server_sqs)
    assert [f.result(timeout=30) for f in futures] == list(range(10))
    calls = counter.snapshot()
    assert calls.get("SendMessage", 0) == 0
    assert calls.get("DeleteMessage", 0) == 0
    assert calls["SendMessageBatch"] < 10  # at least two replies shared a request
    wait_for(lambda: poller.stats().replies_sent == 10)
    poller.stop()
    assert poller.stats().deleted == 10


@pytest.mark.skipif(
    os.environ.get("SQS_RPC_TEST_SERVER") == "fauxqs",
    reason="timing-dependent on fauxqs: once (of three CI runs) no reply batch there had the "
    "two entries the injection needs; open, see docs/reliability.md",
)
def test_only_failed_entries_of_a_batch_are_retried(
    endpoint: Endpoint, client: RpcClient, queue_url: str, serve: Serve
) -> None:
    server_sqs = endpoint.client()
    handler = Together(6)
    batches: list[list[str]] = []  # the correlation ids of each SendMessageBatch
    failed: list[str] = []
    injected = threading.Event()

    slow = threading.Event()  # never set: its wait is the slow endpoint's delay

    def record(params: dict[str, Any], **_: Any) -> None:
        if not batches:
            # A slow endpoint on the first flush: the other replies queue up behind it and
            # must leave together in the next one.
            wait_for(lambda: handler.done == 6, timeout=20)
            slow.wait(0.3)
        batches.append(
            [e["MessageAttributes"]["CorrelationId"]["StringValue"] for e in params["Entries"]]
        )

    def fail_one_entry(parsed: dict[str, Any], **_: Any) -> None:
        # Once, report one delivered entry as failed on SQS's side (an InternalError entry).
        successful = parsed.get("Successful", [])
        if injected.is_set() or len(successful) < 2:
            return
        injected.set()
        entry = successful.pop(0)
        failed.append(batches[-1][int(entry["Id"])])  # the outbox is one thread: last batch
        parsed.setdefault("Failed", []).append(
            {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "x"}
        )

    server_sqs.meta.events.register("provide-client-params.sqs.SendMessageBatch", record)
    server_sqs.meta.events.register("after-call.sqs.SendMessageBatch", fail_one_entry)
    futures = [client.call_async(queue_url, i, timeout=30) for i in range(6)]
    poller = serve(queue_url, handler, concurrency=6, sqs_client=server_sqs)
    assert [f.result(timeout=30) for f in futures] == list(range(6))
    assert injected.is_set()
    # Six replies, one of them sent twice: the retry carried the failed entry alone.
    wait_for(lambda: sum(map(len, batches)) == 7)
    assert [batch for batch in batches if failed[0] in batch][1] == failed
    poller.stop()
    assert poller.stats().deleted == 6
