"""The server's worker threads: as many as sync handlers need, plus a few for the rest.

A message's work runs on a worker in steps (:mod:`sqs_rpc._server.work`): decoding, claiming,
replying and deleting are short steps; a sync handler is one long step, marked with
:meth:`Workers.blocking`; an async handler is no step at all (it runs on the event loop). So
the pool grows to ``blocked + spare`` threads at most (``blocked``: sync handlers running
now), never past ``size``: 200 async handlers in flight need ``spare`` threads, not 200.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["WORKER_JOIN_TIMEOUT", "Workers"]

logger = logging.getLogger(__name__)

# Workers are joined only once drained: they are returning from their last step.
WORKER_JOIN_TIMEOUT = 5.0


class Workers:
    """Up to ``size`` daemon worker threads, started as work comes, named ``<name>_<n>``.

    Not a ``ThreadPoolExecutor``: its threads are joined at interpreter exit, so one handler
    that never returns would keep the process alive forever after a stop gave up on it.
    A thread is started only for work no idle thread will take, and only while fewer than
    ``blocked + spare`` threads exist: short steps queue for a moment rather than start a
    thread each (a burst of 200 async handlers finishing at once is 200 short steps).
    """

    def __init__(self, size: int, name: str, *, spare: int) -> None:
        self._size = size
        self._spare = min(spare, size)
        self._name = name
        self._lock = threading.Condition()  # guards everything below
        self._work: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for work (or just started)
        self._blocked = 0  # threads inside a sync handler
        self._closed = False

    @property
    def threads(self) -> int:
        """Worker threads started so far (they live until :meth:`shutdown`)."""
        with self._lock:
            return len(self._threads)

    def submit(self, function: Callable[..., None], *args: Any) -> None:
        """Run ``function(*args)`` on a worker, soon."""
        with self._lock:
            self._work.append((function, args))
            self._lock.notify()
            self._grow()

    @contextmanager
    def blocking(self) -> Iterator[None]:
        """Mark the current worker as held by a sync handler: the pool may grow meanwhile."""
        with self._lock:
            self._blocked += 1
            self._grow()
        try:
            yield
        finally:
            with self._lock:
                self._blocked -= 1

    def shutdown(self, *, wait: bool) -> None:
        """End the workers once the queued work is done; with ``wait``, join them (bounded)."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
            threads = list(self._threads)
        if wait:
            deadline = time.monotonic() + WORKER_JOIN_TIMEOUT
            for thread in threads:
                thread.join(max(deadline - time.monotonic(), 0.0))

    def _grow(self) -> None:
        """Start threads for the work no idle thread will take, within the bound (locked)."""
        bound = min(self._size, self._blocked + self._spare)
        while len(self._work) > self._idle and len(self._threads) < bound and not self._closed:
            thread = threading.Thread(
                target=self._run, name=f"{self._name}_{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            self._idle += 1
            thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._work and not self._closed:
                    self._lock.wait()
                if not self._work:
                    return  # closed, and nothing left to do
                function, args = self._work.popleft()
                self._idle -= 1
            try:
                function(*args)
            except BaseException:  # a worker never dies of its work; nor is it silent
                logger.exception("a worker's work failed unexpectedly")
            with self._lock:
                self._idle += 1
