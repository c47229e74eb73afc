"""Async handlers at scale and at length (slow: 200 calls; a handler of three visibility
timeouts)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import IncomingMessage, MessageHandler, RpcClient
from tests.integration.test_async_server import Serve, run_gated_calls


@pytest.mark.timeout(300)  # 200 calls: seconds on a quiet machine, a minute on a busy one
def test_200_async_handlers_in_flight_at_once_on_a_few_threads(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    run_gated_calls(client, queue_url, serve, 200)


class AsyncSlow(MessageHandler):
    """Runs for ``seconds`` (or until a second run starts, on either server); counts runs."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.runs = 0
        self.second_run = threading.Event()  # the two servers' loops share no asyncio object

    async def handle(self, message: IncomingMessage) -> Any:
        with self.lock:
            self.runs += 1
            if self.runs > 1:
                self.second_run.set()
                return "second"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        # The handler's length is the point of the test: it must outlive three timeouts.
        while loop.time() < deadline and not self.second_run.is_set():
            await asyncio.sleep(0.05)
        return "first"


@pytest.mark.timeout(90)
def test_async_handler_running_three_visibility_timeouts_runs_once(
    make_queue: Callable[..., str], serve: Serve, client: RpcClient
) -> None:
    queue_url = make_queue(VisibilityTimeout="2")
    handler = AsyncSlow(6.5)
    # As tests/integration/test_visibility.py: without extension while the task runs, the
    # message reappears after 2 s and the other server runs it a second time.
    serve(queue_url, handler, visibility_extension_interval=0.5, concurrency=1)
    serve(queue_url, handler, visibility_extension_interval=0.5, concurrency=1)
    assert client.call(queue_url, 1, timeout=60) == "first"
    assert handler.runs == 1
