"""The server's own asyncio event loop, for async handlers: one thread, started lazily.

An async handler's coroutine runs here as a task, and holds no worker thread while it runs
(:mod:`sqs_rpc._server.work`): ``concurrency`` bounds the messages in flight, and async
handlers share one loop (their clients, pools, ...). A stop that gives up on running
handlers cancels the tasks (:meth:`EventLoopThread.cancel_all`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqs_rpc._loop import BackgroundLoop

__all__ = ["EventLoopThread"]

T = TypeVar("T")


class EventLoopThread:
    """Runs awaitables as tasks on an event loop owned by a background thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: BackgroundLoop | None = None
        self._closed = False
        self._running: set[Future[Any]] = set()

    def submit(self, awaitable: Awaitable[T]) -> Future[T]:
        """Start ``awaitable`` as a task, in a copy of the caller's context; its future."""
        loop = self._ensure_started()

        async def wrapper() -> T:
            return await awaitable

        # The task is created by a callback that runs in a copy of this thread's context.
        future = asyncio.run_coroutine_threadsafe(wrapper(), loop)
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._forget)
        return future

    def cancel_all(self) -> int:
        """Cancel every task still running; how many there were."""
        with self._lock:
            running = list(self._running)
        for future in running:
            future.cancel()  # its done callbacks run now; the task is cancelled on its loop
        return len(running)

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._running.discard(future)

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
        if loop is None or thread is None or loop.is_closed():
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
