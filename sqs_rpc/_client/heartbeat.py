"""The process-wide heartbeat: one thread refreshes the heartbeat tag of every live reply queue.

SQS allows about 30 ``TagQueue`` calls per second per AWS account, shared by every client in it.
A heartbeat loop per client would multiply that load by the number of clients in a process.
So a process has one scheduler (:data:`SCHEDULER`) and one daemon thread, ``sqs-rpc-heartbeat``.
The thread exists only while at least one reply queue is registered.

The rule: **at most one TagQueue call per tick per process**. A tick is the smallest
``heartbeat_interval`` of the registered clients, jittered by ±10% so that processes do not
beat in step. Each tick refreshes the registered queue whose heartbeat is the oldest, if due.
With N clients in one process, each queue is thus refreshed every N ticks. When N ticks
exceed half a client's idle retention, a WARNING says to share one client between threads.
Throttling errors back off exponentially (with jitter, at most one tick) and retry the same
queue. They never fail anything. A queue found deleted is reported to its owner through
``on_lost``.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqs_rpc._errors import QueueDoesNotExist, SqsError, is_throttling
from sqs_rpc._loop import BackgroundLoop, thread_name

from .reply_queue import ReplyQueue

__all__ = ["SCHEDULER", "HeartbeatScheduler", "Registration"]

logger = logging.getLogger(__name__)

THREAD_NAME = thread_name("heartbeat")  # process-wide: no owner id
JITTER = 0.1
# The first retry after a throttling error waits this long (or a tick, if shorter); each
# further consecutive throttling error doubles it, up to one tick.
THROTTLE_BACKOFF = 1.0


@dataclass(eq=False)
class Registration:
    """One reply queue whose heartbeat the scheduler keeps fresh, until :meth:`stop`."""

    queue: ReplyQueue
    interval: float
    retention: float
    on_lost: Callable[[], None]
    scheduler: HeartbeatScheduler = field(repr=False)
    last_beat: float = field(default_factory=time.monotonic)

    def stop(self, timeout: float | None = None) -> bool:
        """Leave the heartbeat (idempotent).

        Returns False when the thread, which ends with the last registration, still runs
        after ``timeout`` seconds.
        """
        return self.scheduler.unregister(self, timeout)


class HeartbeatScheduler:
    """Refreshes the heartbeat tags of registered reply queues from one background thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registrations: list[Registration] = []
        self._loop: BackgroundLoop | None = None
        self._last_call = -float("inf")  # time.monotonic() of the last TagQueue call
        self._throttled = 0  # consecutive throttling errors
        self.throttles = 0  # throttling errors seen

    def register(
        self,
        queue: ReplyQueue,
        *,
        interval: float,
        retention: float,
        on_lost: Callable[[], None],
    ) -> Registration:
        """Keep ``queue``'s heartbeat fresh until ``Registration.stop()``. Starts the thread."""
        registration = Registration(queue, interval, retention, on_lost, self)
        with self._lock:
            self._registrations.append(registration)
            self._warn_if_crowded()
            if self._loop is None:
                self._loop = BackgroundLoop(THREAD_NAME, self._step)
                self._loop.start()
            else:
                # The tick may have become shorter; let the loop recompute its wait.
                self._loop.wake()
        return registration

    def unregister(self, registration: Registration, timeout: float | None = None) -> bool:
        """Stop refreshing a queue (idempotent). The thread ends with the last registration.

        Returns False when that thread still runs after ``timeout`` seconds.
        """
        with self._lock:
            if registration in self._registrations:
                self._registrations.remove(registration)
            loop = None
            if not self._registrations:
                loop, self._loop = self._loop, None
        if loop is None:
            return True
        # Outside the lock: the step takes the lock. Joins unless called from the loop.
        return loop.stop(timeout)

    def forget(self, queue: ReplyQueue, timeout: float | None = None) -> bool:
        """Unregister ``queue`` (idempotent), for an owner whose ``register()`` was interrupted
        before it got its :class:`Registration` back. As :meth:`unregister` otherwise."""
        with self._lock:
            mine = [r for r in self._registrations if r.queue is queue]
        return all([self.unregister(registration, timeout) for registration in mine])

    def registered(self) -> int:
        with self._lock:
            return len(self._registrations)

    def after_fork_in_child(self) -> None:
        """Forget the parent's queues and thread: in a child, none of them is ours."""
        self._lock = threading.Lock()
        self._registrations = []
        self._loop = None
        self._throttled = 0

    def _warn_if_crowded(self) -> None:
        count = len(self._registrations)
        tick = min(r.interval for r in self._registrations)
        for registration in self._registrations:
            if count * tick > registration.retention / 2:
                logger.warning(
                    "%d reply queues in process %d share one heartbeat (one TagQueue per "
                    "%.3gs), so each is refreshed every %.3gs, more than half of idle_retention "
                    "(%.3gs): a sweeper could delete a live queue. Share one RpcClient between "
                    "threads, or raise idle_retention",
                    count,
                    os.getpid(),
                    tick,
                    count * tick,
                    registration.retention,
                )
                return

    def _step(self) -> float | None:
        now = time.monotonic()
        with self._lock:
            if not self._registrations:
                return None
            tick = min(r.interval for r in self._registrations)
            if self._throttled:
                backoff = min(tick, THROTTLE_BACKOFF * 2.0 ** (self._throttled - 1))
                next_call = self._last_call + backoff * random.uniform(0.5, 1.0)
            else:
                next_call = self._last_call + tick * random.uniform(1 - JITTER, 1 + JITTER)
            oldest = min(self._registrations, key=lambda r: r.last_beat)
            due = max(next_call, oldest.last_beat + oldest.interval)
            if due > now:
                return due - now
            self._last_call = now
        return self._beat(oldest)

    def _beat(self, registration: Registration) -> float:
        try:
            registration.queue.heartbeat()
        except QueueDoesNotExist:
            with self._lock:
                known = registration in self._registrations
                if known:
                    self._registrations.remove(registration)
            if known:
                logger.warning("reply queue %s was deleted underneath", registration.queue.name)
                registration.on_lost()
            return 0
        except SqsError as exc:
            if is_throttling(exc):
                self.throttles += 1
                with self._lock:
                    self._throttled += 1
                logger.info("heartbeat throttled (%s); backing off", exc.code)
                return 0
            # Not fatal: the next tick tries again, and the retention covers a few misses.
            logger.warning("heartbeat of %s failed: %s", registration.queue.name, exc)
            return 0
        with self._lock:
            self._throttled = 0
            registration.last_beat = time.monotonic()
        logger.debug("heartbeat for %s", registration.queue.name)
        return 0


SCHEDULER = HeartbeatScheduler()
"""The one scheduler of this process."""

os.register_at_fork(after_in_child=SCHEDULER.after_fork_in_child)
