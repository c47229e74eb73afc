"""PollerPool: N MessagePoller processes on one request queue, supervised.

One Python process runs Python code on one core at a time (the GIL), so a CPU-bound handler
needs processes. The pool is the parent of ``processes`` children, each running its own
:class:`~sqs_rpc.MessagePoller` (the child side is :mod:`sqs_rpc._server.worker_process`).
SQS shares the queue's messages out between them; nothing else is shared.

Children are started with the ``spawn`` start method, never ``fork``: the parent has threads
(this supervisor's, and whatever the application started), and a forked child inherits their
locks in whatever state they were, plus copies of boto3 clients and connection pools that
must not be used from two processes. A spawned child is a fresh interpreter: it imports the
factory and builds its own boto3 client and poller. It costs an import per child (about a
second), once per start or restart.

One supervisor thread owns the children. Per child, one socket pair carries the child's log
records, its ``ready``/``failed`` report and its stats to the parent; its end of file tells
the child the parent died. Shutdown order: (1) SIGTERM to every child, which stops its poller
(handlers finish within the poller's ``shutdown_timeout``, unstarted messages are released),
reports its final stats and exits; (2) at ``graceful_timeout``, SIGKILL to those still
running: the messages they held are not deleted and come back after the queue's visibility
timeout, for another server; (3) reap them, close the channels, end the thread.

A pool started and never stopped (no ``run()``, ``with`` or ``stop()``: the program ended, or
raised) is stopped the same way when the interpreter exits (:mod:`sqs_rpc._server.pool_exit`).
Without it, multiprocessing's exit function would join the children, which keep serving: the
program would never end.

This module decides when to restart a child, when to give up, and when a silent child is
hung. One child as the parent sees it (spawn, read, signal, reap) is a
:class:`~sqs_rpc._server.pool_child.PoolChild`.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from types import TracebackType
from typing import Any

from sqs_rpc._errors import ClientClosedError, ConfigurationError, PoolFailed
from sqs_rpc._loop import owner_id, thread_name
from sqs_rpc._signals import StopSignals
from sqs_rpc._stats import PollerStats

from . import pool_exit
from .pool_child import PoolChild, describe
from .pool_settings import (
    DEFAULT_GRACEFUL_TIMEOUT,
    DEFAULT_LIVENESS_TIMEOUT,
    DEFAULT_MAX_RESTARTS,
    DEFAULT_RESTART_WINDOW,
    DEFAULT_STATS_INTERVAL,
    PoolSettings,
)
from .pool_stats import sum_stats, summary
from .worker_process import PollerFactory

__all__ = ["PollerPool"]

logger = logging.getLogger(__name__)

RESTART_BACKOFF = 0.5  # the first restart's delay; doubles with each exit within the window
MAX_RESTART_BACKOFF = 30.0
KILL_WAIT = 5.0  # how long a SIGKILLed child gets to be reaped before it is given up on


class PollerPool:
    """Runs ``processes`` MessagePoller processes on one queue, and keeps them running.

    Example::

        # myapp/server.py
        def make_poller() -> MessagePoller:  # runs in each child process
            return MessagePoller(QUEUE_URL, Orders(), concurrency=4)

        if __name__ == "__main__":
            PollerPool(make_poller, processes=4).run()   # until SIGTERM or Ctrl-C

    Children are spawned (fresh interpreters): ``factory`` must be picklable (a module-level
    function or class, a ``functools.partial`` of one) or a ``"module:function"`` string, and
    a script that starts a pool needs the ``if __name__ == "__main__":`` guard. A child that
    exits is restarted after a backoff (0.5 s, doubling up to 30 s); one that exits more than
    ``max_restarts`` times within ``restart_window`` seconds, or any child that fails to start
    before one ever started, makes the pool give up: :meth:`run` raises :class:`PoolFailed`.
    Child log records are handled by this process's logging, prefixed
    ``[worker <index> pid <pid>]``; :meth:`stats` sums the children's stats.

    Args:
        factory: builds the child's MessagePoller, in the child.
        processes: child processes, >= 1 (one per core for a CPU-bound handler).
        graceful_timeout: seconds children get to exit after a stop; still running then,
            they are killed (SIGKILL). Longer than the pollers' ``shutdown_timeout``.
        max_restarts: exits of one child within ``restart_window`` that are restarted; one
            more makes the pool give up.
        restart_window: seconds over which ``max_restarts`` counts.
        stats_interval: seconds between the children's stats reports.
        liveness_timeout: a serving child that sent no stats report for this long (at least
            3 ``stats_interval``) is taken for hung: killed (SIGKILL) and restarted. None
            turns the check off. A long handler does not count: reports do not wait for it.
    """

    def __init__(
        self,
        factory: PollerFactory | str,
        *,
        processes: int,
        graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        restart_window: float = DEFAULT_RESTART_WINDOW,
        stats_interval: float = DEFAULT_STATS_INTERVAL,
        liveness_timeout: float | None = DEFAULT_LIVENESS_TIMEOUT,
    ) -> None:
        self._settings = PoolSettings.create(
            factory,
            processes=processes,
            graceful_timeout=graceful_timeout,
            max_restarts=max_restarts,
            restart_window=restart_window,
            stats_interval=stats_interval,
            liveness_timeout=liveness_timeout,
        )
        # Guards the state below and the children's stats. Reentrant: run()'s signal handler
        # takes it, and may interrupt the main thread while it holds it (in stats(), say).
        self._lock = threading.RLock()
        self._slots = [PoolChild(index, self._lock) for index in range(self._settings.processes)]
        self._state = "unopened"
        self._restarts = 0
        self._ever_ready = False  # whether any child was ever ready; supervisor thread only
        self._failure: PoolFailed | None = None
        self._stopping = threading.Event()  # set by stop(), a signal, or giving up
        self._ended = threading.Event()  # set when the supervisor thread ends
        self._run_waiter: StopSignals | None = None  # run()'s wait, while it waits
        self._kill_now = False
        self._kill_deadline = 0.0
        self._graceful = True
        self._pid = os.getpid()  # of the process that started it
        self._wake_reader, self._wake_writer = multiprocessing.Pipe(duplex=False)
        self._thread = threading.Thread(
            target=self._supervise, name=thread_name("supervisor", owner_id(self)), daemon=True
        )

    def __enter__(self) -> PollerPool:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the children and the supervisor thread; returns at once. Idempotent."""
        with self._lock:
            if self._state == "stopped":
                raise ClientClosedError("this PollerPool was stopped; create a new one")
            if self._state == "started":
                return
            self._state = "started"
        logger.info("starting %d worker processes", self._settings.processes)
        self._pid = os.getpid()
        pool_exit.track(self)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """SIGTERM every child, wait, SIGKILL those still running after ``timeout``.

        ``timeout`` defaults to ``graceful_timeout``. Returns True when every child exited by
        itself in time. Idempotent; the whole takes at most ``timeout`` + 10 s.
        """
        budget = self._settings.graceful_timeout if timeout is None else timeout
        with self._lock:
            started = self._state == "started"
            self._state = "stopped"
        pool_exit.untrack(self)
        if started:
            self._request_stop(budget)
            self._thread.join(budget + 2 * KILL_WAIT)
            if self._thread.is_alive():
                logger.error("the supervisor thread did not end; children may be left")
                return False
        else:
            self._close_wake_pipe()
        return self._graceful

    def run(self) -> None:
        """Start, block until SIGTERM or SIGINT (or a failure), then :meth:`stop`.

        The first signal stops gracefully; a second one kills the children at once. Must be
        called from the main thread. Raises :class:`PoolFailed` if the pool gave up.
        """
        if threading.current_thread() is not threading.main_thread():
            raise ConfigurationError("run() must be called from the main thread; use start()")
        signals: list[int] = []

        def on_signal(signum: int) -> None:
            signals.append(signum)
            name = signal.Signals(signum).name
            if len(signals) == 1:
                logger.info(
                    "%s received: stopping %d workers; waiting up to %g s for them to drain, "
                    "then SIGKILL; a second Ctrl-C or SIGTERM kills them at once",
                    name,
                    self._settings.processes,
                    self._settings.graceful_timeout,
                )
                self._request_stop(self._settings.graceful_timeout)
            else:
                logger.warning("%s received again: killing the workers", name)
                self._request_kill()

        with StopSignals(on_signal) as waiter:
            self._run_waiter = waiter
            try:
                self.start()
                waiter.wait(self._stopping)
                # The handlers stay installed until the children are gone: a second signal
                # kills them at once, whichever thread the kernel hands it to.
                waiter.wait(self._ended, self._settings.graceful_timeout + 2 * KILL_WAIT)
                self.stop()
            finally:
                self._run_waiter = None
        if self._failure is not None:
            raise self._failure

    # -- observing ---------------------------------------------------------------------------

    def stats(self) -> PollerStats:
        """The children's stats summed, those that exited included (see :func:`sum_stats`).

        Up to ``stats_interval`` old; ``in_flight`` counts the running children only.
        """
        with self._lock:
            retired = [slot.retired for slot in self._slots]
            current = [slot.stats for slot in self._slots if slot.stats is not None]
            return sum_stats([*retired, *current])

    def pids(self) -> list[int]:
        """The process ids of the children that are running and ready, by index."""
        with self._lock:
            return [slot.pid for slot in self._slots if slot.ready and slot.pid is not None]

    @property
    def restarts(self) -> int:
        """How many children were restarted since :meth:`start`."""
        with self._lock:
            return self._restarts

    def _abandon_at_exit(self) -> bool:
        """At exit: start stopping if still running here; whether :meth:`stop` is then due."""
        with self._lock:
            if self._state != "started" or self._pid != os.getpid():
                return False  # stopped already, or a copy inherited across os.fork()
        logger.warning(
            "the interpreter is exiting and a PollerPool was never stopped (call stop(), or "
            "use run() or with): stopping its %d workers, SIGKILL after %g s",
            self._settings.processes,
            self._settings.graceful_timeout,
        )
        self._request_stop(self._settings.graceful_timeout)
        return True

    # -- the supervisor thread ---------------------------------------------------------------

    def _request_stop(self, budget: float) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            self._kill_deadline = time.monotonic() + budget
            self._stopping.set()
        self._wake()
        self._wake_run()

    def _request_kill(self) -> None:
        with self._lock:
            self._kill_now = True
        self._request_stop(0)
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            if not self._wake_writer.closed:
                self._wake_writer.send(None)

    def _wake_run(self) -> None:
        """End run()'s wait, if one is in progress: _stopping or _ended is set."""
        waiter = self._run_waiter
        if waiter is not None:
            waiter.wake()

    def _close_wake_pipe(self) -> None:
        with self._lock:
            self._wake_writer.close()
            self._wake_reader.close()

    def _supervise(self) -> None:
        try:
            for slot in self._slots:
                slot.spawn(self._settings)
            self._loop()
        except BaseException as exc:
            logger.exception("the supervisor failed; killing the workers")
            with self._lock:
                self._failure = self._failure or PoolFailed(
                    f"the supervisor failed: {type(exc).__name__}: {exc}",
                    worker=-1,
                    exit_code=None,
                    error_types=(),
                )
            for slot in self._slots:
                if slot.process is not None and slot.process.is_alive():
                    slot.process.kill()
            raise
        finally:
            for slot in self._slots:
                slot.reap(KILL_WAIT)
            self._close_wake_pipe()
            self._stopping.set()  # ends run()'s wait when the thread ended on its own
            self._ended.set()
            self._wake_run()
            logger.info("stopped; totals: %s", summary(self.stats()))

    def _loop(self) -> None:
        signalled = False
        killed_at: float | None = None
        while True:
            live = [slot for slot in self._slots if slot.process is not None]
            now = time.monotonic()
            timeout = 1.0
            if self._stopping.is_set():
                if not live:
                    return
                if not signalled:
                    signalled = True
                    for slot in live:
                        slot.terminate()
                with self._lock:
                    kill = self._kill_now or now >= self._kill_deadline
                if kill and killed_at is None:
                    killed_at = now
                    for slot in live:
                        if slot.kill():
                            self._graceful = False
                if killed_at is not None and now - killed_at > KILL_WAIT:
                    return  # unkillable (uninterruptible sleep): reap() logs them
                timeout = max(0.0, min(timeout, self._kill_deadline - now))
                if killed_at is not None:
                    timeout = 0.05  # SIGKILLed children die in milliseconds
            else:
                timeout = min(timeout, self._check_liveness(now))
                for slot in self._slots:
                    if slot.process is None and slot.restart_at is not None:
                        if slot.restart_at <= now:
                            slot.spawn(self._settings)
                        else:
                            timeout = min(timeout, slot.restart_at - now)
            self._wait_and_handle([slot for slot in self._slots if slot.process], timeout)

    def _wait_and_handle(self, live: list[PoolChild], timeout: float) -> None:
        waitables: list[Any] = [self._wake_reader]
        sentinels: list[tuple[PoolChild, int]] = []
        for slot in live:
            assert slot.process is not None
            sentinels.append((slot, slot.process.sentinel))
            waitables.append(slot.process.sentinel)
            if slot.channel is not None:
                waitables.append(slot.channel)
        ready = multiprocessing.connection.wait(waitables, timeout)
        if self._wake_reader in ready:
            while self._wake_reader.poll():
                self._wake_reader.recv()
        for slot in live:
            if slot.channel is not None and slot.channel in ready:
                self._read(slot)
        for slot, sentinel in sentinels:
            if sentinel in ready:
                self._exited(slot)

    def _check_liveness(self, now: float) -> float:
        """Kill the serving children silent for too long; the seconds until the next check.

        A killed child's sentinel then reports its exit, and it is restarted as any other.
        """
        limit = self._settings.liveness_timeout
        if limit is None:
            return 1.0
        wait = limit
        for slot in self._slots:
            silent = slot.silence(now)
            if silent is None:
                continue
            if silent < limit:
                wait = min(wait, limit - silent)
            else:
                slot.kill_hung(silent, limit)
        return wait

    def _read(self, slot: PoolChild) -> None:
        slot.read()
        if slot.ready:
            self._ever_ready = True

    def _exited(self, slot: PoolChild) -> None:
        process = slot.process
        assert process is not None
        if slot.channel is not None:
            self._read(slot)  # the last records and stats the child sent
        was_ready = slot.ready
        code = slot.reap(KILL_WAIT)
        if self._stopping.is_set():
            if code not in (0, -signal.SIGTERM):
                logger.warning(
                    "worker %d (pid %s) %s while stopping", slot.index, slot.pid, describe(code)
                )
            return
        settings = self._settings
        now = time.monotonic()
        while slot.exits and now - slot.exits[0] > settings.restart_window:
            slot.exits.popleft()
        slot.exits.append(now)
        what = slot.exit_reason(code, was_ready)
        if not was_ready and not self._ever_ready:
            self._give_up(
                slot,
                code,
                f"{what}; no worker ever started, so the pool gives up "
                "(fix the factory or its configuration, then start again)",
            )
        elif len(slot.exits) > settings.max_restarts:
            self._give_up(
                slot,
                code,
                f"{what}; it exited {len(slot.exits)} times within "
                f"{settings.restart_window:g} s (max_restarts={settings.max_restarts}), so the "
                "pool gives up: fix the cause logged above, or raise max_restarts",
            )
        else:
            delay = min(MAX_RESTART_BACKOFF, RESTART_BACKOFF * 2 ** (len(slot.exits) - 1))
            slot.restart_at = now + delay
            with self._lock:
                self._restarts += 1
            logger.warning("%s; restarting it in %g s", what, delay)

    def _give_up(self, slot: PoolChild, code: int | None, message: str) -> None:
        logger.error("%s", message)
        names = slot.failure[0] if slot.failure is not None else ()
        with self._lock:
            if self._failure is None:
                self._failure = PoolFailed(
                    message, worker=slot.index, exit_code=code, error_types=names
                )
        self._request_stop(self._settings.graceful_timeout)
