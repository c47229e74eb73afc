"""The calls awaiting a reply: futures keyed by correlation id, each failing at its deadline.

Entries live in a cachetools ``TLRUCache`` whose time-to-use is the call's deadline, so an
abandoned call can never leak; one timer thread wakes at the earliest deadline and fails the
expired futures with :class:`~sqs_rpc.RpcTimeout`. Nothing polls: the timer sleeps on an event
until the next deadline, and a waiting caller blocks on its future.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, NamedTuple

from cachetools import TLRUCache

from sqs_rpc._errors import ConfigurationError, RpcTimeout
from sqs_rpc._futures import settle
from sqs_rpc._loop import BackgroundLoop

__all__ = ["PendingCalls"]

logger = logging.getLogger(__name__)


class _Entry(NamedTuple):
    future: Future[Any]
    deadline: float  # time.monotonic()
    timeout: float


class _Cache(TLRUCache[str, _Entry]):
    """A TLRUCache that hands expired entries to its owner instead of dropping them.

    cachetools expires entries on every insert as well as on ``expire()``; both paths end here,
    so a call's future is failed whichever path removes it.
    """

    def __init__(self) -> None:
        super().__init__(
            maxsize=math.inf, ttu=lambda _k, entry, _now: entry.deadline, timer=time.monotonic
        )
        self.expired: list[tuple[str, _Entry]] = []

    def expire(self, time: float | None = None) -> list[tuple[str, _Entry]]:
        expired = list(super().expire(time))
        self.expired.extend(expired)
        return expired


class PendingCalls:
    """Thread-safe map of correlation id -> future with per-call deadlines."""

    def __init__(self, name: str) -> None:
        self._lock = threading.Lock()
        self._cache = _Cache()
        self._deadlines: list[float] = []  # heap; may hold deadlines of settled calls
        self._timer = BackgroundLoop(f"{name}-timeouts", self._expire_due)
        # Set by close(): a call added afterwards fails at once instead of waiting for a
        # timer that no longer runs (a send racing with close() or with a lost queue).
        self._refuse: Callable[[str], BaseException] | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def start(self) -> None:
        self._timer.start()

    def stop(self, timeout: float | None = None) -> bool:
        return self._timer.stop(timeout)

    def add(self, correlation_id: str, future: Future[Any], timeout: float) -> None:
        """Track ``future`` until a reply settles it or ``timeout`` seconds pass.

        After ``fail_all(..., close=True)``, the future fails at once with that error.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            refuse = self._refuse
            if refuse is None:
                earliest, expired = self._insert(correlation_id, _Entry(future, deadline, timeout))
        if refuse is not None:
            settle(future, error=refuse(correlation_id))
            return
        # A cancelled or otherwise finished future needs no entry any more.
        future.add_done_callback(lambda _f: self.discard(correlation_id))
        self._fail_expired(expired)
        if earliest:
            self._timer.wake()

    def _insert(self, correlation_id: str, entry: _Entry) -> tuple[bool, list[tuple[str, _Entry]]]:
        """Add an entry (lock held); return whether it is the earliest deadline, and expiries."""
        if correlation_id in self._cache:
            raise ConfigurationError(
                f"correlation id {correlation_id!r} is already waiting for a reply; "
                "give every call its own id (or leave correlation_id=None)"
            )
        self._cache[correlation_id] = entry
        if correlation_id not in self._cache:
            # TLRUCache skips an entry already past its deadline (a tiny timeout).
            self._cache.expired.append((correlation_id, entry))
        earliest = not self._deadlines or entry.deadline < self._deadlines[0]
        heapq.heappush(self._deadlines, entry.deadline)
        return earliest, self._take_expired()

    def pop(self, correlation_id: str) -> Future[Any] | None:
        """Remove and return the future for ``correlation_id``; None if unknown or expired."""
        with self._lock:
            entry = self._cache.pop(correlation_id, None)
        return entry.future if entry is not None else None

    def discard(self, correlation_id: str) -> None:
        with self._lock:
            self._cache.pop(correlation_id, None)

    def fail_all(self, make_error: Callable[[str], BaseException], *, close: bool = False) -> int:
        """Fail every pending future with ``make_error(correlation_id)``; return how many.

        With ``close=True``, every call added later fails at once with the same error.
        """
        with self._lock:
            if close:
                self._refuse = make_error
            entries = list(self._cache.items())
            self._cache.clear()
        failed = 0
        for correlation_id, entry in entries:
            failed += settle(entry.future, error=make_error(correlation_id))
        return failed

    def _take_expired(self) -> list[tuple[str, _Entry]]:
        expired, self._cache.expired = self._cache.expired, []
        return expired

    def _fail_expired(self, expired: Iterable[tuple[str, _Entry]]) -> None:
        # Outside the lock: failing a future runs its done-callbacks, which take the lock.
        for correlation_id, entry in expired:
            if settle(
                entry.future,
                error=RpcTimeout(
                    f"no reply within {entry.timeout:g}s (correlation id {correlation_id}); "
                    "the server may be slow, down, or not consuming this queue: raise timeout= "
                    "or check the server",
                    correlation_id=correlation_id,
                ),
            ):
                logger.debug("call %s timed out", correlation_id)

    def _expire_due(self) -> float | None:
        now = time.monotonic()
        with self._lock:
            self._cache.expire(now)
            expired = self._take_expired()
            while self._deadlines and self._deadlines[0] <= now:
                heapq.heappop(self._deadlines)
            next_deadline = self._deadlines[0] if self._deadlines else None
        self._fail_expired(expired)
        return None if next_deadline is None else max(next_deadline - now, 0.001)
