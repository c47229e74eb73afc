"""Native async handling over HTTP: async handlers are tasks on the poller's loop, not threads.

``concurrency`` counts messages in flight: an async handler holds a slot but no worker thread,
so 200 of them wait together on a handful of threads; a sync one still holds a worker.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import (
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    RequestMessage,
    RpcClient,
    Service,
    remaining_time,
    rpc,
)
from tests.support.helpers import messages_in, wait_for

Serve = Callable[..., MessagePoller]
# Threads the workers may use for what is not a sync handler (workers.py's spare).
SPARE_WORKERS = 10


def library_threads(prefix: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


class Gate(MessageHandler):
    """Every handler waits until ``expected`` of them have started: they must all overlap."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.started = 0
        self.gate: asyncio.Event | None = None
        self.threads_when_full = 0
        self.loop_threads: set[str] = set()

    async def handle(self, message: IncomingMessage) -> Any:
        if message.body == "warm-up":
            return None
        if self.gate is None:
            self.gate = asyncio.Event()
        self.started += 1  # only the loop's thread runs this: no lock needed
        self.loop_threads.add(threading.current_thread().name)
        if self.started == self.expected:
            self.threads_when_full = threading.active_count()
            self.gate.set()
        # Bounded, so a broken server fails the test instead of hanging it.
        await asyncio.wait_for(self.gate.wait(), 240)
        return message.body


def run_gated_calls(client: RpcClient, queue_url: str, serve: Serve, count: int) -> None:
    """``count`` async handlers on ``concurrency=count``, all in flight at once."""
    handler = Gate(count)
    poller = serve(queue_url, handler, concurrency=count)
    client.publish(queue_url, "warm-up")  # the client's threads start before the baseline
    wait_for(lambda: poller.stats().handled == 1)
    baseline = threading.active_count()
    futures = [client.call_async(queue_url, i, timeout=240) for i in range(count)]
    assert [f.result(timeout=250) for f in futures] == list(range(count))
    # All of them were running at once (the gate opened only then), on the loop's thread...
    assert handler.started == count
    (loop_thread,) = handler.loop_threads
    assert loop_thread.startswith("sqs-rpc-asyncio-")
    # ...with only a few worker threads: before, each async handler in flight held one.
    # Worker threads live until the stop, so this counts the peak.
    workers = library_threads("sqs-rpc-worker-")
    assert 1 <= len(workers) <= SPARE_WORKERS, workers
    # The process as a whole: the loop, the outbox's two, the visibility thread, workers.
    assert handler.threads_when_full - baseline <= SPARE_WORKERS + 5
    # Counted once the reply is sent and the request deleted (batched, up to 100 ms later):
    # the client may have every reply before the server has counted the last few.
    wait_for(lambda: poller.stats().handled == count + 1)


def test_async_handlers_in_flight_hold_no_worker_thread(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    run_gated_calls(client, queue_url, serve, 3 * SPARE_WORKERS)


class Mixed(Service):
    """Sync and async operations in one service."""

    def __init__(self) -> None:
        self.threads: dict[str, set[str]] = {"add": set(), "echo": set()}

    @rpc
    def add(self, a: int, b: int) -> int:
        self.threads["add"].add(threading.current_thread().name)
        return a + b

    @rpc
    async def echo(self, text: str) -> dict[str, Any]:
        self.threads["echo"].add(threading.current_thread().name)
        await asyncio.sleep(0)
        # The request's deadline reaches the task through its context.
        return {"text": text, "left": remaining_time()}


def test_a_service_mixes_sync_and_async_operations(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    service = Mixed()
    serve(queue_url, service, concurrency=4)
    adds = [
        client.send(RequestMessage(queue_url, {"a": i, "b": 1}, operation="add"), timeout=30)
        for i in range(6)
    ]
    echoes = [
        client.send(RequestMessage(queue_url, {"text": str(i)}, operation="echo"), timeout=30)
        for i in range(6)
    ]
    assert [f.result(timeout=30) for f in adds] == [i + 1 for i in range(6)]
    replies = [f.result(timeout=30) for f in echoes]
    assert [r["text"] for r in replies] == [str(i) for i in range(6)]
    assert all(0 < r["left"] <= 30 for r in replies), replies
    assert all(name.startswith("sqs-rpc-worker-") for name in service.threads["add"])
    assert all(name.startswith("sqs-rpc-asyncio-") for name in service.threads["echo"])


class GroupRecorder(MessageHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []

    async def handle(self, message: IncomingMessage) -> Any:
        group, index = message.body
        self.events.append(("start", group, index))
        for _ in range(5):
            await asyncio.sleep(0)  # other tasks run meanwhile: the groups interleave
        self.events.append(("end", group, index))
        return None


def test_async_handlers_keep_fifo_group_order(
    sqs: Any, make_queue: Callable[..., str], serve: Serve
) -> None:
    fifo = make_queue(
        f"test-{uuid.uuid4().hex[:12]}.fifo", FifoQueue="true", ContentBasedDeduplication="true"
    )
    recorder = GroupRecorder()
    serve(fifo, recorder, concurrency=4)
    with RpcClient(sqs_client=sqs) as client:
        for i in range(6):
            for group in ("a", "b", "c"):
                client.publish(fifo, [group, i], group_id=group)
    wait_for(lambda: len(recorder.events) == 36, timeout=30)
    for group in ("a", "b", "c"):
        # Each message of a group starts only once the one before it has ended.
        expected = [(kind, i) for i in range(6) for kind in ("start", "end")]
        assert [(kind, i) for kind, g, i in recorder.events if g == group] == expected


class Hung(MessageHandler):
    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()

    async def handle(self, message: IncomingMessage) -> Any:
        self.started.set()
        try:
            await asyncio.Event().wait()  # never set
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


@pytest.mark.parametrize("one_way", [True, False])
def test_stop_cancels_a_hung_async_handler_and_leaves_its_message(
    sqs: Any, client: RpcClient, queue_url: str, serve: Serve, one_way: bool
) -> None:
    handler = Hung()
    poller = serve(queue_url, handler, concurrency=2, visibility_timeout=30)
    if one_way:
        client.publish(queue_url, "x")
    else:
        call = client.call_async(queue_url, "x", timeout=60)
    assert handler.started.wait(20)
    began = time.monotonic()
    assert poller.stop(timeout=0.5) is False
    assert time.monotonic() - began < 10  # bounded: the task did not hold the stop
    assert handler.cancelled.wait(10)
    # Not deleted and not answered: it comes back for another server.
    assert messages_in(sqs, queue_url) == 1
    stats = poller.stats()
    assert stats.deleted == 0
    assert stats.replies_sent == 0
    assert stats.in_flight == 0
    if not one_way:
        assert not call.done()
        call.cancel()
