"""The server's own asyncio event loop, for ``async def handle``: one thread, started lazily.

Workers stay threads (they also send replies and deletes); a worker that gets a coroutine from
``handle`` submits it to this loop and blocks on the result, so ``concurrency`` still bounds
the coroutines in flight, and async handlers share one loop (their clients, pools, ...).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import TypeVar

from sqs_rpc._loop import BackgroundLoop

__all__ = ["EventLoopThread"]

T = TypeVar("T")


class EventLoopThread:
    """Runs awaitables on an event loop owned by a background thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: BackgroundLoop | None = None
        self._closed = False

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the loop and return its result (or raise its exception)."""
        loop = self._ensure_started()

        async def wrapper() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wrapper(), loop).result()

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError("the poller's event loop is stopped")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._loop = loop

                def step() -> None:
                    # Returns when stop() calls loop.stop(); the BackgroundLoop then ends.
                    loop.run_forever()

                self._thread = BackgroundLoop(self._name, step)
                self._thread.start()
            return self._loop

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the loop after running handlers finished; idempotent."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return True
        thread.signal_stop()
        loop.call_soon_threadsafe(loop.stop)
        stopped = thread.stop(timeout)
        if stopped and not loop.is_closed():
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
        return stopped

    def __repr__(self) -> str:
        return f"EventLoopThread({self._name!r}, running={self._loop is not None})"
