"""The process-wide heartbeat: one thread refreshes the heartbeat tag of every live reply queue.

A process has one scheduler (:data:`SCHEDULER`) and one daemon thread, ``sqs-rpc-heartbeat``,
which exists only while at least one reply queue is registered. The rules:

* **Every queue is refreshed within its own** ``heartbeat_interval``, however many clients the
  process has: a sweeper judges each queue by its own tag. Each queue has a due time; the
  thread refreshes the queue due first (earliest deadline first).
* **Spread, with jitter.** A queue's first refresh is due at a random point in the second
  half of its interval (it was created with a fresh tag), so clients created together do not
  beat together. Each refresh sets the next due time ``interval * uniform(0.9, 1.0)`` later: never
  late, and processes drift out of step.
* **A cap per process**: TagQueue calls at least ``1 / MAX_TAG_RATE`` seconds apart (10 a
  second). SQS allows about 30 TagQueue calls a second per account, shared by every process
  in it; a burst (many clients created together, the catch-up after throttling) is smoothed,
  and one process never takes more than a third. When the registered queues need more than
  the cap (the sum of 1/interval), a WARNING says to share clients or beat less often.
* **Throttling backs off** the whole process: no TagQueue for 1 s, doubling on each
  consecutive throttling error up to the smallest interval, jittered. The throttled queue
  stays due, so it goes first afterwards. Throttling never fails anything.
* Another error is logged, and that queue is tried again half an interval later: the
  retention (at least three intervals) covers a few misses. A queue found deleted is
  reported to its owner through ``on_lost``.
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

__all__ = ["MAX_TAG_RATE", "SCHEDULER", "HeartbeatScheduler", "Registration"]

logger = logging.getLogger(__name__)

THREAD_NAME = thread_name("heartbeat")  # process-wide: no owner id
JITTER = 0.1
# At most this many TagQueue calls per second from one process (see the module docstring).
MAX_TAG_RATE = 10.0
# The first wait after a throttling error (or the smallest interval, if shorter); each further
# consecutive throttling error doubles it, up to that interval.
THROTTLE_BACKOFF = 1.0


@dataclass(eq=False)
class Registration:
    """One reply queue whose heartbeat the scheduler keeps fresh, until :meth:`stop`."""

    queue: ReplyQueue
    interval: float
    on_lost: Callable[[], None]
    scheduler: HeartbeatScheduler = field(repr=False)
    due: float = field(init=False)  # time.monotonic() at which the next refresh is due

    def __post_init__(self) -> None:
        # The queue was created with a fresh tag: its first refresh comes at a random point
        # in the second half of its interval, so clients created together beat apart.
        self.due = time.monotonic() + self.interval * random.uniform(0.5, 1.0)

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
        # time.monotonic() before which no TagQueue call may go: the cap, or a backoff.
        self._not_before = -float("inf")
        self._throttled = 0  # consecutive throttling errors
        self.throttles = 0  # throttling errors seen

    def register(
        self,
        queue: ReplyQueue,
        *,
        interval: float,
        on_lost: Callable[[], None],
    ) -> Registration:
        """Keep ``queue``'s heartbeat fresh until ``Registration.stop()``. Starts the thread."""
        registration = Registration(queue, interval, on_lost, self)
        with self._lock:
            self._registrations.append(registration)
            self._warn_if_crowded()
            if self._loop is None:
                self._loop = BackgroundLoop(THREAD_NAME, self._step)
                self._loop.start()
            else:
                # The new queue may be due first; let the loop recompute its wait.
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
        self._not_before = -float("inf")
        self._throttled = 0

    def _warn_if_crowded(self) -> None:
        needed = sum(1 / r.interval for r in self._registrations)
        if needed > MAX_TAG_RATE:
            logger.warning(
                "%d reply queues in process %d need %.3g TagQueue calls per second to keep "
                "their heartbeats, over the cap of %g per process: each is refreshed late, "
                "and a sweeper could delete a live queue. Share one RpcClient between "
                "threads, or raise heartbeat_interval (and idle_retention)",
                len(self._registrations),
                os.getpid(),
                needed,
                MAX_TAG_RATE,
            )

    def _step(self) -> float | None:
        now = time.monotonic()
        with self._lock:
            if not self._registrations:
                return None
            first = min(self._registrations, key=lambda r: r.due)
            ready = max(first.due, self._not_before)
            if ready > now:
                return ready - now
            self._not_before = now + 1 / MAX_TAG_RATE
        return self._beat(first)

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
                    smallest = min((r.interval for r in self._registrations), default=1.0)
                    backoff = min(smallest, THROTTLE_BACKOFF * 2.0 ** (self._throttled - 1))
                    # The queue stays due: it goes first when the backoff ends.
                    self._not_before = time.monotonic() + backoff * random.uniform(0.5, 1.0)
                logger.info("heartbeat throttled (%s); backing off", exc.code)
                return 0
            # Not fatal: the retention covers a few misses. Retry this queue a little later,
            # not in a loop.
            with self._lock:
                registration.due = time.monotonic() + registration.interval / 2
            logger.warning("heartbeat of %s failed: %s", registration.queue.name, exc)
            return 0
        with self._lock:
            self._throttled = 0
            registration.due = time.monotonic() + registration.interval * random.uniform(
                1 - JITTER, 1.0
            )
        logger.debug("heartbeat for %s", registration.queue.name)
        return 0


SCHEDULER = HeartbeatScheduler()
"""The one scheduler of this process."""

os.register_at_fork(after_in_child=SCHEDULER.after_fork_in_child)
