"""The reply poller's receives: a second one in flight only while receives come back full."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqs_rpc import MessagePoller, RequestCounter, RpcClient
from sqs_rpc._batcher import Batcher
from sqs_rpc._client.pending import PendingCalls
from sqs_rpc._client.reply_poller import ReplyPoller
from sqs_rpc._codecs import JsonCodec
from sqs_rpc._wire import encode_reply
from tests.support.handlers import Echo
from tests.support.helpers import Endpoint, wait_for

Serve = Callable[..., MessagePoller]


class _Receives:
    """Records the thread and WaitTimeSeconds of each ReceiveMessage a boto3 client makes."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self._lock = threading.Lock()
        self.seen: list[tuple[str, int | None]] = []

    def __enter__(self) -> _Receives:
        self._sqs.meta.events.register("before-parameter-build.sqs.ReceiveMessage", self._on)
        return self

    def __exit__(self, *_: object) -> None:
        self._sqs.meta.events.unregister("before-parameter-build.sqs.ReceiveMessage", self._on)

    def _on(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.seen.append((threading.current_thread().name, params.get("WaitTimeSeconds")))


def test_full_receives_in_a_row_start_a_second_short_receive(sqs: Any, queue_url: str) -> None:
    pending = PendingCalls("sqs-rpc-test-timeouts")
    pending.start()
    codec = JsonCodec()
    futures: list[Future[Any]] = []
    # Thirty replies wait in the queue before the poller starts: its first two receives are
    # full, and the second of them starts the second receive.
    for start in range(0, 30, 10):
        entries = []
        for i in range(start, start + 10):
            correlation_id = uuid.uuid4().hex
            future: Future[Any] = Future()
            pending.add(correlation_id, future, 30)
            futures.append(future)
            reply = encode_reply(
                correlation_id=correlation_id,
                status="ok",
                body=codec.encode(i),
                content_type=codec.content_type,
            )
            entries.append({"Id": str(i - start), **reply})
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    batcher = Batcher(sqs, name="sqs-rpc-test-batcher", delete_delay=0.05)
    poller = ReplyPoller(
        sqs,
        queue_url,
        pending,
        codec,
        batcher,
        name="sqs-rpc-test-replies",
        second_receive_round_trip=0.0,  # a local SQS answers faster than the default
    )
    with _Receives(sqs) as receives:
        poller.start()
        try:
            assert [f.result(timeout=30) for f in futures] == list(range(30))
            wait_for(lambda: any(name.endswith("-replies-1") for name, _ in receives.seen))
        finally:
            assert poller.stop(30)
            assert batcher.stop(30)
            assert pending.stop(10)
    second = [wait for name, wait in receives.seen if name == "sqs-rpc-test-replies-1"]
    assert second, receives.seen
    assert set(second) == {0}  # a short poll: stop() never waits on it
    assert not any(t.name.startswith("sqs-rpc-test-") for t in threading.enumerate())


def test_sequential_calls_make_one_long_poll_at_a_time(
    endpoint: Endpoint, sqs: Any, queue_url: str, serve: Serve
) -> None:
    serve(queue_url, Echo(), sqs_client=endpoint.client())  # not counted below
    counter = RequestCounter.attach(sqs)
    with _Receives(sqs) as receives, RpcClient(sqs_client=sqs) as rpc:
        for i in range(5):
            assert rpc.call(queue_url, i, timeout=10) == {"echo": i}
        owner = f"{id(rpc):x}"
        assert not any(t.name.endswith(f"replies-{owner}-1") for t in threading.enumerate())
    mine = [(name, wait) for name, wait in receives.seen if owner in name]
    assert mine
    assert all(wait == 20 for _, wait in mine)  # never a second receive
    assert counter.snapshot()["SendMessageBatch"] == 5  # one request per call, at once
    counter.detach()
