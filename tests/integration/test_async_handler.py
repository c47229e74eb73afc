"""async def handle over HTTP: run on the poller's own event loop, stopped with the poller."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, RemoteError, RpcClient

Serve = Callable[..., MessagePoller]


class AsyncHandler(MessageHandler):
    def __init__(self) -> None:
        self.loops: set[asyncio.AbstractEventLoop] = set()
        self.threads: set[str] = set()
        self.meeting: asyncio.Event | None = None

    async def handle(self, message: IncomingMessage) -> Any:
        self.loops.add(asyncio.get_running_loop())
        self.threads.add(threading.current_thread().name)
        if message.body == "boom":
            raise ValueError("async boom")
        if message.body == "meet":
            # Two calls wait for each other: only possible if they interleave on one loop.
            if self.meeting is None:
                self.meeting = asyncio.Event()
                await asyncio.wait_for(self.meeting.wait(), 10)
            else:
                self.meeting.set()
        await asyncio.sleep(0)
        return {"echo": message.body}


def test_async_handler_runs_on_the_pollers_event_loop(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    handler = AsyncHandler()
    poller = serve(queue_url, handler, concurrency=2)
    assert client.call(queue_url, 1, timeout=20) == {"echo": 1}
    futures = [client.call_async(queue_url, "meet", timeout=20) for _ in range(2)]
    assert [f.result(timeout=20) for f in futures] == [{"echo": "meet"}] * 2
    with pytest.raises(RemoteError, match="async boom"):
        client.call(queue_url, "boom", timeout=20)
    (loop,) = handler.loops
    (thread,) = handler.threads
    assert thread.startswith("sqs-rpc-asyncio-")
    assert poller.stats().handled == 3
    poller.stop()
    assert loop.is_closed()
