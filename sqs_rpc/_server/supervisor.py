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
raised) is stopped the same way when the interpreter exits, by a multiprocessing finalizer
(:func:`_stop_at_exit`). Without it, multiprocessing's exit function would join the children,
which keep serving: the program would never end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.util
import os
import pickle
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType, TracebackType
from typing import Any

from sqs_rpc._errors import ClientClosedError, ConfigurationError, PoolFailed
from sqs_rpc._loop import owner_id, thread_name
from sqs_rpc._options import seconds, whole
from sqs_rpc._stats import Latency, PollerStats

from .worker_process import BOOT_FAILED, PollerFactory, WorkerSpec, stats_from_fields, worker_main

__all__ = ["PollerPool", "sum_stats"]

logger = logging.getLogger(__name__)

DEFAULT_GRACEFUL_TIMEOUT = 45.0  # the poller's default shutdown_timeout (30 s) + margin
DEFAULT_MAX_RESTARTS = 5
DEFAULT_RESTART_WINDOW = 60.0
DEFAULT_STATS_INTERVAL = 1.0
# A serving child that sent no stats for this long (and never less than 3 stats intervals) is
# taken for hung and killed. The reports come from the child's main thread, which runs no
# handler: a long handler does not delay them; a frozen process, or a wedged interpreter, does.
DEFAULT_LIVENESS_TIMEOUT = 10.0
LIVENESS_INTERVALS = 3
RESTART_BACKOFF = 0.5  # the first restart's delay; doubles with each exit within the window
MAX_RESTART_BACKOFF = 30.0
KILL_WAIT = 5.0  # how long a SIGKILLed child gets to be reaped before it is given up on
READ_BATCH = 1000  # messages read from one child per turn of the loop
# The priority of the finalizer that stops the pools left running at exit. At least 0:
# multiprocessing's exit function (an atexit hook, and the last step of a multiprocessing
# child) runs the finalizers of priority >= 0, *then* joins every non-daemonic child (ours
# are), then runs the others. A negative one would come after a join that never returns.
EXIT_PRIORITY = 10


def sum_stats(items: Iterable[PollerStats]) -> PollerStats:
    """Several pollers' stats as one: counters and request counts summed.

    Latency percentiles cannot be merged from percentiles: each is the highest of the
    pollers' own, an upper bound of the pool's (every poller has a fraction q of its samples
    at or below its own q-quantile, so the pool has too).
    """
    totals: dict[str, Any] = {}
    latencies: list[Latency] = []
    for stats in items:
        for field in dataclasses.fields(stats):
            value = getattr(stats, field.name)
            if isinstance(value, Latency):
                latencies.append(value)
            elif isinstance(value, Mapping):
                merged = totals.setdefault(field.name, {})
                for key, count in value.items():
                    merged[key] = merged.get(key, 0) + count
            elif isinstance(value, int):
                totals[field.name] = totals.get(field.name, 0) + value

    def highest(name: str) -> float | None:
        values = [v for v in (getattr(latency, name) for latency in latencies) if v is not None]
        return max(values) if values else None

    totals["latency"] = Latency(
        count=sum(latency.count for latency in latencies),
        sum=sum(latency.sum for latency in latencies),
        window=sum(latency.window for latency in latencies),
        p50=highest("p50"),
        p90=highest("p90"),
        p99=highest("p99"),
        max=highest("max"),
    )
    return PollerStats(**totals)


def _describe(exit_code: int | None) -> str:
    if exit_code is None:
        return "is still running"
    if exit_code < 0:
        try:
            return f"was killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"was killed by signal {-exit_code}"
    return f"exited with code {exit_code}"


def _logger_levels() -> dict[str, int]:
    """The levels set in this process, for children to drop what the parent would."""
    levels = {"": logging.getLogger().level}
    for name, item in list(logging.root.manager.loggerDict.items()):
        if isinstance(item, logging.Logger) and item.level != logging.NOTSET:
            levels[name] = item.level
    return levels


@dataclasses.dataclass(eq=False)
class _Slot:
    """One child's place in the pool; a restarted child takes the same slot."""

    index: int
    process: BaseProcess | None = None
    channel: Connection | None = None
    pid: int | None = None
    ready: bool = False
    failure: tuple[tuple[str, ...], str] | None = None  # from the child's ("failed", ...)
    stats: PollerStats | None = None
    exits: deque[float] = dataclasses.field(default_factory=deque)
    restart_at: float | None = None
    reported_at: float = 0.0  # monotonic time of its ready or its last stats report
    hung: bool = False  # killed by the liveness check


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
        self._factory = _check_factory(factory)
        cores = os.cpu_count() or 1
        self._processes = whole(
            processes,
            "processes",
            low=1,
            high=1024,
            rule=f"a whole number from 1 to 1024: one per core for CPU-bound handlers ({cores} "
            "here), 1 to run a single poller",
        )
        self._graceful_timeout = seconds(
            graceful_timeout, "graceful_timeout", low=0, high=86400, rule="seconds from 0 to 86400"
        )
        self._max_restarts = whole(
            max_restarts, "max_restarts", low=0, high=10**6, rule="a whole number >= 0"
        )
        self._restart_window = seconds(
            restart_window, "restart_window", low=1, high=86400, rule="seconds from 1 to 86400"
        )
        self._stats_interval = seconds(
            stats_interval, "stats_interval", low=0.01, high=3600, rule="seconds from 0.01 to 3600"
        )
        self._liveness_timeout: float | None = None
        if liveness_timeout is not None:
            self._liveness_timeout = max(
                seconds(
                    liveness_timeout,
                    "liveness_timeout",
                    low=1,
                    high=86400,
                    rule="seconds from 1 to 86400, or None to never kill a silent child",
                ),
                LIVENESS_INTERVALS * self._stats_interval,
            )
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(index) for index in range(self._processes)]
        # Guards the state below and the stats. Reentrant: run()'s signal handler takes it,
        # and may interrupt the main thread while it holds it (in stats(), say).
        self._lock = threading.RLock()
        self._state = "unopened"
        self._retired = PollerStats()  # the sum of the last stats of children that exited
        self._restarts = 0
        self._ever_ready = False
        self._failure: PoolFailed | None = None
        self._stopping = threading.Event()  # set by stop(), a signal, or giving up
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
        logger.info("starting %d worker processes", self._processes)
        self._pid = os.getpid()
        _track(self)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """SIGTERM every child, wait, SIGKILL those still running after ``timeout``.

        ``timeout`` defaults to ``graceful_timeout``. Returns True when every child exited by
        itself in time. Idempotent; the whole takes at most ``timeout`` + 10 s.
        """
        budget = self._graceful_timeout if timeout is None else timeout
        with self._lock:
            started = self._state == "started"
            self._state = "stopped"
        _untrack(self)
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

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            signals.append(signum)
            name = signal.Signals(signum).name
            if len(signals) == 1:
                logger.info(
                    "%s received: stopping %d workers; waiting up to %g s for them to drain, "
                    "then SIGKILL; a second Ctrl-C or SIGTERM kills them at once",
                    name,
                    self._processes,
                    self._graceful_timeout,
                )
                self._request_stop(self._graceful_timeout)
            else:
                logger.warning("%s received again: killing the workers", name)
                self._request_kill()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            self._stopping.wait()
            self.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self._failure is not None:
            raise self._failure

    # -- observing ---------------------------------------------------------------------------

    def stats(self) -> PollerStats:
        """The children's stats summed, those that exited included (see :func:`sum_stats`).

        Up to ``stats_interval`` old; ``in_flight`` counts the running children only.
        """
        with self._lock:
            current = [slot.stats for slot in self._slots if slot.stats is not None]
            return sum_stats([self._retired, *current])

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
            self._processes,
            self._graceful_timeout,
        )
        self._request_stop(self._graceful_timeout)
        return True

    # -- the supervisor thread ---------------------------------------------------------------

    def _request_stop(self, budget: float) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            self._kill_deadline = time.monotonic() + budget
            self._stopping.set()
        self._wake()

    def _request_kill(self) -> None:
        with self._lock:
            self._kill_now = True
        self._request_stop(0)
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            if not self._wake_writer.closed:
                self._wake_writer.send(None)

    def _close_wake_pipe(self) -> None:
        with self._lock:
            self._wake_writer.close()
            self._wake_reader.close()

    def _supervise(self) -> None:
        try:
            for slot in self._slots:
                self._spawn(slot)
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
                self._reap(slot, KILL_WAIT)
            self._close_wake_pipe()
            self._stopping.set()  # wakes run() when the thread ended on its own
            logger.info("stopped; totals: %s", _summary(self.stats()))

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
                        self._terminate(slot)
                with self._lock:
                    kill = self._kill_now or now >= self._kill_deadline
                if kill and killed_at is None:
                    killed_at = now
                    self._kill(live)
                if killed_at is not None and now - killed_at > KILL_WAIT:
                    return  # unkillable (uninterruptible sleep): _reap logs them
                timeout = max(0.0, min(timeout, self._kill_deadline - now))
                if killed_at is not None:
                    timeout = 0.05  # SIGKILLed children die in milliseconds
            else:
                timeout = min(timeout, self._check_liveness(now))
                for slot in self._slots:
                    if slot.process is None and slot.restart_at is not None:
                        if slot.restart_at <= now:
                            self._spawn(slot)
                        else:
                            timeout = min(timeout, slot.restart_at - now)
            self._wait_and_handle([slot for slot in self._slots if slot.process], timeout)

    def _wait_and_handle(self, live: list[_Slot], timeout: float) -> None:
        waitables: list[Any] = [self._wake_reader]
        sentinels: list[tuple[_Slot, int]] = []
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
        limit = self._liveness_timeout
        if limit is None:
            return 1.0
        wait = limit
        for slot in self._slots:
            if slot.process is None or not slot.ready or slot.hung:
                continue  # starting children are not checked: an import may take long
            if slot.channel is not None and slot.channel.poll():
                continue  # a report may be waiting, unread behind a burst of log records
            silent = now - slot.reported_at
            if silent < limit:
                wait = min(wait, limit - silent)
                continue
            slot.hung = True
            logger.warning(
                "worker %d (pid %s) sent no report for %.1f s (liveness_timeout %g s): it is "
                "hung; SIGKILL, and its messages come back after the queue's visibility timeout",
                slot.index,
                slot.pid,
                silent,
                limit,
            )
            with contextlib.suppress(OSError):
                slot.process.kill()
        return wait

    def _spawn(self, slot: _Slot) -> None:
        spec = WorkerSpec(slot.index, self._factory, _logger_levels(), self._stats_interval)
        parent_end, child_end = multiprocessing.Pipe(duplex=True)
        process = self._context.Process(
            target=worker_main,
            args=(spec, child_end),
            name=f"sqs-rpc-worker-{slot.index}",
            daemon=False,  # a daemonic process cannot have children; the pipe ends ours
        )
        process.start()
        child_end.close()  # only the child holds it now: its exit is our end of file
        slot.process, slot.channel, slot.pid = process, parent_end, process.pid
        slot.ready, slot.failure, slot.restart_at, slot.hung = False, None, None, False
        logger.debug("worker %d spawned (pid %s)", slot.index, process.pid)

    def _read(self, slot: _Slot) -> None:
        """Handle everything the child sent so far; close the channel at its end."""
        channel = slot.channel
        assert channel is not None
        try:
            # Bounded: a child that logs without pause must not keep the loop from reaping,
            # restarting and stopping; what is left is read on the next turn.
            for _ in range(READ_BATCH):
                if not channel.poll():
                    break
                self._handle(slot, channel.recv())
        except (EOFError, OSError):
            channel.close()
            slot.channel = None

    def _handle(self, slot: _Slot, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "log":
            record = logging.makeLogRecord(message[1])
            logging.getLogger(record.name).handle(record)
        elif kind == "stats":
            stats = stats_from_fields(message[1])
            slot.reported_at = time.monotonic()
            with self._lock:
                slot.stats = stats
        elif kind == "ready":
            slot.reported_at = time.monotonic()
            with self._lock:
                slot.ready = True
                self._ever_ready = True
            logger.info("worker %d ready (pid %d)", slot.index, message[1])
        elif kind == "failed":
            slot.failure = (tuple(message[1]), message[2])

    def _exited(self, slot: _Slot) -> None:
        process = slot.process
        assert process is not None
        if slot.channel is not None:
            self._read(slot)  # the last records and stats the child sent
        failure, was_ready = slot.failure, slot.ready
        code = self._reap(slot, KILL_WAIT)
        if self._stopping.is_set():
            if code not in (0, -signal.SIGTERM):
                logger.warning(
                    "worker %d (pid %s) %s while stopping", slot.index, slot.pid, _describe(code)
                )
            return
        now = time.monotonic()
        while slot.exits and now - slot.exits[0] > self._restart_window:
            slot.exits.popleft()
        slot.exits.append(now)
        if failure is not None or (not was_ready and code == BOOT_FAILED):
            reason = failure[1] if failure is not None else "see its log above"
            what = f"worker {slot.index} (pid {slot.pid}) failed to start: {reason}"
        elif slot.hung:
            what = f"worker {slot.index} (pid {slot.pid}) was hung and killed"
        else:
            what = f"worker {slot.index} (pid {slot.pid}) {_describe(code)}"
        if not was_ready and not self._ever_ready:
            self._give_up(
                slot,
                code,
                f"{what}; no worker ever started, so the pool gives up "
                "(fix the factory or its configuration, then start again)",
            )
        elif len(slot.exits) > self._max_restarts:
            self._give_up(
                slot,
                code,
                f"{what}; it exited {len(slot.exits)} times within "
                f"{self._restart_window:g} s (max_restarts={self._max_restarts}), so the "
                "pool gives up: fix the cause logged above, or raise max_restarts",
            )
        else:
            delay = min(MAX_RESTART_BACKOFF, RESTART_BACKOFF * 2 ** (len(slot.exits) - 1))
            slot.restart_at = now + delay
            with self._lock:
                self._restarts += 1
            logger.warning("%s; restarting it in %g s", what, delay)

    def _give_up(self, slot: _Slot, code: int | None, message: str) -> None:
        logger.error("%s", message)
        names = slot.failure[0] if slot.failure is not None else ()
        with self._lock:
            if self._failure is None:
                self._failure = PoolFailed(
                    message, worker=slot.index, exit_code=code, error_types=names
                )
        self._request_stop(self._graceful_timeout)

    def _terminate(self, slot: _Slot) -> None:
        assert slot.process is not None
        # SIGTERM: the child stops its poller and exits. OSError: it is gone already, and its
        # sentinel tells the loop next.
        with contextlib.suppress(OSError):
            slot.process.terminate()

    def _kill(self, live: list[_Slot]) -> None:
        for slot in live:
            assert slot.process is not None
            if slot.process.is_alive():
                self._graceful = False
                logger.warning(
                    "worker %d (pid %s) still running: SIGKILL; the messages it held come back "
                    "after the queue's visibility timeout",
                    slot.index,
                    slot.pid,
                )
                slot.process.kill()

    def _reap(self, slot: _Slot, timeout: float) -> int | None:
        """Join the child (bounded), retire its stats, close its channel; its exit code."""
        process = slot.process
        if process is None:
            return None
        process.join(timeout)
        code = process.exitcode
        if code is None:
            logger.error(
                "worker %d (pid %s) could not be reaped; left running", slot.index, slot.pid
            )
        else:
            process.close()
        if slot.channel is not None:
            slot.channel.close()
        with self._lock:
            if slot.stats is not None:
                last = dataclasses.replace(slot.stats, in_flight=0)
                self._retired = sum_stats([self._retired, last])
            slot.process, slot.channel, slot.stats, slot.ready = None, None, None, False
        return code


class _Running:
    """The pools started in this process and not stopped, held weakly, and their finalizer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pools: weakref.WeakSet[PollerPool] = weakref.WeakSet()
        self.finalizer: multiprocessing.util.Finalize[None] | None = None


_running = _Running()


def _track(pool: PollerPool) -> None:
    """Stop ``pool`` at exit unless stopped before; register the finalizer in this process.

    A multiprocessing child clears the finalizers it inherited as it starts: so the
    finalizer is registered again in a process that has none still active.
    """
    with _running.lock:
        _running.pools.add(pool)
        finalizer = _running.finalizer
        if finalizer is None or not finalizer.still_active():
            _running.finalizer = multiprocessing.util.Finalize(
                None, _stop_at_exit, exitpriority=EXIT_PRIORITY
            )


def _untrack(pool: PollerPool) -> None:
    with _running.lock:
        _running.pools.discard(pool)


def _stop_at_exit() -> None:
    """Stop every pool left running, all at once: the slowest one bounds the exit.

    Runs in multiprocessing's exit function, so before it joins the children. It starts no
    thread (Python 3.12+ refuses new threads at exit): each pool's supervisor thread runs
    already, and is told to stop and joined.
    """
    with _running.lock:
        pools = list(_running.pools)
    abandoned = [pool for pool in pools if pool._abandon_at_exit()]
    for pool in abandoned:
        pool.stop()


def _forget_after_fork() -> None:
    # A forked child has copies of the pools but not their threads or children: nothing of
    # theirs to stop there (and their lock may have been held by another thread at the fork).
    _running.lock = threading.Lock()
    _running.pools = weakref.WeakSet()


os.register_at_fork(after_in_child=_forget_after_fork)


def _summary(stats: PollerStats) -> str:
    return (
        f"received {stats.received}, handled {stats.handled}, failed {stats.failed}, "
        f"replies_sent {stats.replies_sent}, deleted {stats.deleted}"
    )


def _check_factory(factory: object) -> PollerFactory | str:
    if isinstance(factory, str):
        module, _, attribute = factory.partition(":")
        if not module or not attribute:
            raise ConfigurationError(
                f"factory {factory!r} must be 'module:function', for example "
                "'myapp.server:make_poller'"
            )
        return factory
    if not callable(factory):
        raise ConfigurationError(
            f"factory {factory!r} is not callable; pass a function that returns a MessagePoller"
        )
    try:
        pickle.dumps(factory)
    except Exception as exc:
        raise ConfigurationError(
            f"factory {factory!r} cannot be pickled ({exc}); children are spawned, so pass a "
            "module-level function or class (or a functools.partial of one), or "
            "'module:function'"
        ) from None
    return factory
