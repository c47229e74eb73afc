"""The calls awaiting a reply: futures keyed by correlation id, each failing at its deadline.

A dict maps correlation ids to calls; a heap orders their deadlines. One timer thread sleeps
until the earliest deadline and fails the expired calls with :class:`~sqs_rpc.RpcTimeout`.
A call leaves the dict as soon as its future is done, however that happens.

A caller may choose, and reuse, a correlation id: a late reply to an earlier call with the
same id must not settle the call waiting now. So each call has a random nonce, sent with the
request and echoed by the server, and a reply with another nonce leaves the call waiting.

A reply without a nonce comes from a server before ``SqsRpcNonce`` (or from someone who can
send to the reply queue). It settles a call whose id was generated: 128 random bits, as
unguessable as a nonce, and how every call was matched before. A call whose id the caller
chose ("order-7") can be guessed, so it takes only replies with its nonce.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, NamedTuple

from sqs_rpc._attributes import NONCE
from sqs_rpc._errors import ConfigurationError, RpcTimeout
from sqs_rpc._futures import settle
from sqs_rpc._loop import BackgroundLoop

__all__ = ["PendingCalls"]

logger = logging.getLogger(__name__)

# The heap keeps the deadlines of settled calls until they pass. When it grows past twice the
# live calls plus this, it is rebuilt from the dict: memory follows the calls in flight.
_HEAP_SLACK = 64


class _Call(NamedTuple):
    future: Future[Any]
    deadline: float  # time.monotonic()
    timeout: float
    nonce: str | None  # SqsRpcNonce sent with the request
    nonce_required: bool  # a chosen correlation id: a reply without the nonce does not count


class PendingCalls:
    """Thread-safe map of correlation id -> future with per-call deadlines.

    ``name`` is the timer thread's name. ``start()`` and ``stop(timeout)`` run the timer.
    """

    def __init__(self, name: str) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Call] = {}
        self._deadlines: list[tuple[float, str]] = []  # heap; may hold settled calls
        self._timer = BackgroundLoop(name, self._expire_due)
        # Set by fail_all(close=True): a call added afterwards fails at once instead of
        # waiting for a timer that no longer runs (a send racing with close or a lost queue).
        self._refuse: Callable[[str], BaseException] | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)

    def start(self) -> None:
        self._timer.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the timer; True once its thread has ended."""
        return self._timer.stop(timeout)

    def add(
        self,
        correlation_id: str,
        future: Future[Any],
        timeout: float,
        *,
        nonce: str | None = None,
        nonce_required: bool = False,
    ) -> None:
        """Track ``future`` until a reply settles it or ``timeout`` seconds pass.

        ``nonce`` is the call's ``SqsRpcNonce``: only a reply with it (or, unless
        ``nonce_required``, with none) settles the call. After ``fail_all(..., close=True)``,
        the future fails at once with that error.
        """
        call = _Call(future, time.monotonic() + timeout, timeout, nonce, nonce_required)
        with self._lock:
            refuse = self._refuse
            if refuse is None:
                if correlation_id in self._calls:
                    raise ConfigurationError(
                        f"correlation id {correlation_id!r} is already waiting for a reply; "
                        "give every call its own id (or leave correlation_id=None)"
                    )
                self._calls[correlation_id] = call
                earliest = not self._deadlines or call.deadline < self._deadlines[0][0]
                heapq.heappush(self._deadlines, (call.deadline, correlation_id))
        if refuse is not None:
            settle(future, error=refuse(correlation_id))
            return
        # Outside the lock: a future already done runs the callback at once.
        future.add_done_callback(lambda _f: self._forget(correlation_id, call))
        if earliest:
            self._timer.wake()

    def pop(self, correlation_id: str, nonce: str | None = None) -> Future[Any] | None:
        """Remove and return the future a reply settles; None if it answers no waiting call.

        None when ``correlation_id`` is unknown or expired, or when the reply's ``nonce`` is
        not the call's (it answers an earlier call with the same id): the call waits on. A
        reply without a nonce is matched by id alone, unless the call's id was chosen.
        """
        with self._lock:
            call = self._calls.get(correlation_id)
            if call is None or (nonce is not None and call.nonce not in (None, nonce)):
                return None
            if nonce is not None or not call.nonce_required:
                del self._calls[correlation_id]
                return call.future
        # No nonce, and the call's id was chosen. Logged (outside the lock) once per such
        # reply: in a rolling upgrade, this is why a call with a chosen id times out.
        logger.warning(
            "dropping a reply to call %s without %s: a call with a correlation_id of the "
            "caller's own takes only replies that echo its nonce; upgrade the server "
            "(sqs-rpc before the nonce does not echo it), or let sqs-rpc generate the id",
            correlation_id,
            NONCE,
        )
        return None

    def fail_all(self, make_error: Callable[[str], BaseException], *, close: bool = False) -> int:
        """Fail every pending future with ``make_error(correlation_id)``; return how many.

        With ``close=True``, every call added later fails at once with the same error.
        """
        with self._lock:
            if close:
                self._refuse = make_error
            calls, self._calls = self._calls, {}
            self._deadlines = []
        return sum(settle(call.future, error=make_error(cid)) for cid, call in calls.items())

    def _forget(self, correlation_id: str, call: _Call) -> None:
        """Drop a finished call (unless its id was reused since) and keep the heap small."""
        with self._lock:
            if self._calls.get(correlation_id) is call:
                del self._calls[correlation_id]
            if len(self._deadlines) > 2 * len(self._calls) + _HEAP_SLACK:
                self._deadlines = [(c.deadline, cid) for cid, c in self._calls.items()]
                heapq.heapify(self._deadlines)

    def _expire_due(self) -> float | None:
        """The timer's step: fail the calls whose deadline has passed; wait for the next one."""
        now = time.monotonic()
        expired: list[tuple[str, _Call]] = []
        with self._lock:
            while self._deadlines and self._deadlines[0][0] <= now:
                _, correlation_id = heapq.heappop(self._deadlines)
                call = self._calls.get(correlation_id)
                # A reused id has a later deadline of its own, with its own heap entry.
                if call is not None and call.deadline <= now:
                    del self._calls[correlation_id]
                    expired.append((correlation_id, call))
            next_deadline = self._deadlines[0][0] if self._deadlines else None
        # Outside the lock: failing a future runs its done-callbacks, which take the lock.
        for correlation_id, call in expired:
            error = RpcTimeout(
                f"no reply within {call.timeout:g}s (correlation id {correlation_id}); the "
                "server may be slow, down, or not consuming this queue: raise timeout= or "
                "check the server",
                correlation_id=correlation_id,
            )
            if settle(call.future, error=error):
                logger.debug("call %s timed out", correlation_id)
        return None if next_deadline is None else max(next_deadline - now, 0.001)
