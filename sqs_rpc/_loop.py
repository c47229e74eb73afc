"""One abstraction for every background activity: a named daemon thread running a step.

The reply poller, the heartbeat, the timeout timer and the server's receiver are all a
:class:`BackgroundLoop`. A step returns how long to wait before the next step: ``0`` for at
once, ``None`` for until woken. Waits are ``Event.wait``, so :meth:`BackgroundLoop.wake` and
:meth:`BackgroundLoop.stop` cut them short. An exception in a step is logged and backed off
exponentially. It never kills the thread.

Every activity has the same lifecycle: ``start()``, then ``stop(timeout) -> bool``, True when
it has ended. :func:`stop_all` stops several in order within one shutdown budget.
:func:`in_thread` runs one SQS request that a stop must not wait on past its bound.
:func:`thread_name` names every library thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Protocol, TypeVar

__all__ = [
    "RECEIVE_LINGER",
    "THREAD_PREFIX",
    "BackgroundLoop",
    "Stoppable",
    "in_thread",
    "owner_id",
    "receive_pause",
    "stop_all",
    "thread_name",
]

logger = logging.getLogger(__name__)

# How long a receive loop pauses after a partly filled receive (see receive_pause).
RECEIVE_LINGER = 0.04
THREAD_PREFIX = "sqs-rpc-"


def thread_name(role: str, owner: str | None = None) -> str:
    """The name of a library thread: ``sqs-rpc-<role>-<owner id>``.

    ``role`` says what the thread does (``replies``, ``timeouts``, ``batcher``). ``owner``
    tells apart the objects that run that role in one process: a client passes
    ``owner_id(self)`` for all its threads. A process-wide thread has no owner
    (``sqs-rpc-heartbeat``). A role with several threads numbers them after the name
    (``sqs-rpc-batcher-<owner id>-0``). Every name starts with :data:`THREAD_PREFIX`.

    Example::

        thread_name("replies", owner_id(client))  # 'sqs-rpc-replies-7f0c2d3e4b10'
    """
    return f"{THREAD_PREFIX}{role}" if owner is None else f"{THREAD_PREFIX}{role}-{owner}"


def owner_id(owner: object) -> str:
    """The id that :func:`thread_name` puts after the role: ``id(owner)`` in hex."""
    return f"{id(owner):x}"


class Stoppable(Protocol):
    """A background activity: ``stop(timeout)`` ends it and returns True if it did in time."""

    def stop(self, timeout: float | None = None) -> bool: ...


def stop_all(activities: Iterable[Stoppable | None], timeout: float | None) -> bool:
    """Stop ``activities`` in order within one budget of ``timeout`` seconds; True if all did.

    The list is the shutdown order. Each ``stop`` gets what is left of the budget (``None``:
    no limit). Once the budget is spent, the rest still get ``stop(0)``: asked, not waited for.
    ``None`` entries (activities never started) are skipped.

    Example::

        if not stop_all([poller, timer, batcher], timeout=30):
            logger.warning("some threads did not stop within 30 s")
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    stopped = True
    for activity in activities:
        if activity is None:
            continue
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        stopped = activity.stop(left) and stopped
    return stopped


T = TypeVar("T")


def in_thread(function: Callable[[], T], name: str) -> Future[T]:
    """Run ``function`` on a new daemon thread named ``name``; its outcome goes to the future.

    For a request that a stop must not wait on past its bound (botocore's retries and
    timeouts can hold one for minutes when SQS does not answer): wait on the future with a
    timeout, and on timeout leave the thread behind. It ends when botocore gives up. At
    interpreter shutdown, where Python 3.12 and later start no thread (atexit hooks run
    then), ``function`` runs inline, bounded by botocore's timeouts only.

    Example::

        try:
            in_thread(queue.delete, thread_name("closing", owner)).result(timeout=5)
        except concurrent.futures.TimeoutError:
            ...  # no answer in 5 s: say what was left
    """
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(function())
        except BaseException as exc:  # handed to the waiter, who decides
            future.set_exception(exc)

    try:
        threading.Thread(target=run, name=name, daemon=True).start()
    except RuntimeError:
        # Python 3.12+ refuses new threads once the interpreter is finalizing, which is when
        # atexit hooks run: run it here instead, bounded by botocore's own timeouts.
        logger.debug("%s: no new thread at interpreter shutdown; running it inline", name)
        run()
    return future


def receive_pause(
    received: int, asked: int, *, busy: bool = False, round_trip: float = RECEIVE_LINGER
) -> float:
    """Seconds to wait before the next ``ReceiveMessage``, given what the last one returned.

    SQS answers a long poll as soon as one message is there. A loop that receives again at
    once thus takes messages in the small clumps in which they arrive, one request per clump.
    Under load, a short pause lets the next clumps gather for one receive. Load means more
    than one message came, or ``busy``: more are known to be on their way.
    The pause is one ``round_trip`` (how long the last receive took), at most
    :data:`RECEIVE_LINGER`. The next clump is another request's round trip away, so a fast
    SQS gets a short pause and a slow one a longer pause.
    No pause follows a lone message with nothing else expected (sequential calls), an empty
    receive, or a full one (the queue is backed up): none would gain from it.
    """
    if 0 < received < asked and (received > 1 or busy):
        return min(RECEIVE_LINGER, max(round_trip, 0.0))
    return 0.0


Step = Callable[[], "float | None"]


class BackgroundLoop:
    """Run ``step()`` on a named daemon thread until :meth:`stop`.

    ``step`` returns the seconds to wait before running again: ``0`` runs it again at once,
    ``None`` waits until :meth:`wake` or :meth:`stop`.
    """

    def __init__(
        self,
        name: str,
        step: Step,
        *,
        initial_delay: float = 0.0,
        min_backoff: float = 0.1,
        max_backoff: float = 10.0,
    ) -> None:
        self.name = name
        self._step = step
        self._initial_delay = initial_delay
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._wakeup = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.errors = 0

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called. A long step should check it and return."""
        return self._stopping

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (idempotent). A stopped loop is not restarted."""
        with self._lock:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Run the next step now instead of at the end of the current wait."""
        self._wakeup.set()

    def signal_stop(self) -> None:
        """Ask the loop to stop without waiting for it."""
        self._stopping = True
        self._wakeup.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the loop and wait up to ``timeout`` seconds; return True when it has ended.

        Idempotent. Called from the loop's own thread, it only signals.
        """
        self.signal_stop()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        try:
            thread.join(timeout)
        except RuntimeError:
            # start() was interrupted (a KeyboardInterrupt) before the thread said it runs.
            # If it runs at all, it sees the stop flag before its first step and ends.
            return True
        return not thread.is_alive()

    def _run(self) -> None:
        backoff = self._min_backoff
        if self._initial_delay > 0:
            self._wakeup.wait(self._initial_delay)
        while not self._stopping:
            # Clear before the step, not after the wait: a wake() that lands during the step
            # must cut the following wait short, not be forgotten.
            self._wakeup.clear()
            try:
                delay = self._step()
                backoff = self._min_backoff
            except Exception:
                if self._stopping:
                    # Expected: the step was cut short by the stop (a queue being deleted, an
                    # SQS that stopped answering). Nothing to retry.
                    logger.debug("%s: step failed while stopping", self.name, exc_info=True)
                    break
                self.errors += 1
                logger.warning(
                    "%s: step failed; retrying in %.1fs", self.name, backoff, exc_info=True
                )
                delay = backoff
                backoff = min(backoff * 2, self._max_backoff)
            if self._stopping:
                break
            if delay is None:
                self._wakeup.wait()
            elif delay > 0:
                self._wakeup.wait(delay)
        logger.debug("%s: stopped", self.name)
