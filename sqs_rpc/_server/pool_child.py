"""One child process of a PollerPool, as its parent sees it.

A :class:`PoolChild` is one slot of the pool: a restarted child takes the same slot. It
spawns the child process, reads what the child sends over its channel (log records, its
``ready``/``failed`` report, its stats: see :mod:`sqs_rpc._server.worker_process`), signals
it, and reaps it. When to restart a child, and when to give up, is the pool's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from sqs_rpc._stats import PollerStats

from .pool_settings import PoolSettings
from .pool_stats import stats_from_fields, sum_stats
from .worker_process import BOOT_FAILED, WorkerSpec, worker_main

__all__ = ["PoolChild", "describe"]

logger = logging.getLogger(__name__)

READ_BATCH = 1000  # messages read from one child per turn of the supervisor's loop
# Children are spawned, never forked: the supervisor module's docstring says why.
_SPAWN = multiprocessing.get_context("spawn")


def describe(exit_code: int | None) -> str:
    """How a child ended, for a log line: ``"exited with code 1"``, ``"was killed by ..."``."""
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
class PoolChild:
    """One child's place in the pool; a restarted child takes the same slot.

    Only the supervisor thread changes it. ``lock`` is the pool's: it guards what other
    threads read (``ready``, ``pid``, ``stats``, ``retired``).
    """

    index: int
    lock: threading.RLock = dataclasses.field(repr=False)
    process: BaseProcess | None = None
    channel: Connection | None = None
    pid: int | None = None
    ready: bool = False
    failure: tuple[tuple[str, ...], str] | None = None  # from the child's ("failed", ...)
    stats: PollerStats | None = None
    retired: PollerStats = dataclasses.field(default_factory=PollerStats)  # exited processes'
    exits: deque[float] = dataclasses.field(default_factory=deque)
    restart_at: float | None = None
    reported_at: float = 0.0  # monotonic time of its ready or its last stats report
    hung: bool = False  # killed by the liveness check

    def spawn(self, settings: PoolSettings) -> None:
        """Start a child process in this slot."""
        spec = WorkerSpec(self.index, settings.factory, _logger_levels(), settings.stats_interval)
        parent_end, child_end = multiprocessing.Pipe(duplex=True)
        process = _SPAWN.Process(
            target=worker_main,
            args=(spec, child_end),
            name=f"sqs-rpc-worker-{self.index}",
            daemon=False,  # a daemonic process cannot have children; the pipe ends ours
        )
        process.start()
        child_end.close()  # only the child holds it now: its exit is our end of file
        self.process, self.channel, self.pid = process, parent_end, process.pid
        self.ready, self.failure, self.restart_at, self.hung = False, None, None, False
        logger.debug("worker %d spawned (pid %s)", self.index, process.pid)

    def read(self) -> None:
        """Handle everything the child sent so far; close the channel at its end."""
        channel = self.channel
        assert channel is not None
        try:
            # Bounded: a child that logs without pause must not keep the loop from reaping,
            # restarting and stopping; what is left is read on the next turn.
            for _ in range(READ_BATCH):
                if not channel.poll():
                    break
                self._handle(channel.recv())
        except (EOFError, OSError):
            channel.close()
            self.channel = None

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "log":
            record = logging.makeLogRecord(message[1])
            logging.getLogger(record.name).handle(record)
        elif kind == "stats":
            stats = stats_from_fields(message[1])
            self.reported_at = time.monotonic()
            with self.lock:
                self.stats = stats
        elif kind == "ready":
            self.reported_at = time.monotonic()
            with self.lock:
                self.ready = True
            logger.info("worker %d ready (pid %d)", self.index, message[1])
        elif kind == "failed":
            self.failure = (tuple(message[1]), message[2])

    def silence(self, now: float) -> float | None:
        """Seconds since its last report; None when the liveness check skips it."""
        if self.process is None or not self.ready or self.hung:
            return None  # starting children are not checked: an import may take long
        if self.channel is not None and self.channel.poll():
            return None  # a report may be waiting, unread behind a burst of log records
        return now - self.reported_at

    def kill_hung(self, silent: float, limit: float) -> None:
        """SIGKILL a child silent past the liveness ``limit``; its exit then shows as hung."""
        assert self.process is not None
        self.hung = True
        logger.warning(
            "worker %d (pid %s) sent no report for %.1f s (liveness_timeout %g s): it is "
            "hung; SIGKILL, and its messages come back after the queue's visibility timeout",
            self.index,
            self.pid,
            silent,
            limit,
        )
        with contextlib.suppress(OSError):
            self.process.kill()

    def terminate(self) -> None:
        """SIGTERM: the child stops its poller and exits."""
        assert self.process is not None
        # OSError: it is gone already, and its sentinel tells the loop next.
        with contextlib.suppress(OSError):
            self.process.terminate()

    def kill(self) -> bool:
        """SIGKILL the child if it still runs; whether it did."""
        assert self.process is not None
        if not self.process.is_alive():
            return False
        logger.warning(
            "worker %d (pid %s) still running: SIGKILL; the messages it held come back "
            "after the queue's visibility timeout",
            self.index,
            self.pid,
        )
        self.process.kill()
        return True

    def exit_reason(self, code: int | None, was_ready: bool) -> str:
        """How the child ended, for the pool's log: failed to start, hung, or its exit code."""
        name = f"worker {self.index} (pid {self.pid})"
        if self.failure is not None or (not was_ready and code == BOOT_FAILED):
            reason = self.failure[1] if self.failure is not None else "see its log above"
            return f"{name} failed to start: {reason}"
        if self.hung:
            return f"{name} was hung and killed"
        return f"{name} {describe(code)}"

    def reap(self, timeout: float) -> int | None:
        """Join the child (bounded), retire its stats, close its channel; its exit code."""
        process = self.process
        if process is None:
            return None
        process.join(timeout)
        code = process.exitcode
        if code is None:
            logger.error(
                "worker %d (pid %s) could not be reaped; left running", self.index, self.pid
            )
        else:
            process.close()
        if self.channel is not None:
            self.channel.close()
        with self.lock:
            if self.stats is not None:
                last = dataclasses.replace(self.stats, in_flight=0)
                self.retired = sum_stats([self.retired, last])
            self.process, self.channel, self.stats, self.ready = None, None, None, False
        return code
