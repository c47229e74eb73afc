"""What happens to running PollerPools when the interpreter exits and when the process forks.

The pool-side twin of :mod:`sqs_rpc._client.process`, which does the same for clients.

* **Exit:** a pool started and never stopped (no ``run()``, ``with`` or ``stop()``: the
  program ended, or raised) is stopped as :meth:`~sqs_rpc.PollerPool.stop` would, by a
  multiprocessing finalizer (:func:`_stop_at_exit`). Without it, multiprocessing's exit
  function would join the children, which keep serving: the program would never end.
* **fork():** a forked child has copies of the pools but not their threads or children.
  A hook forgets them there (:func:`_forget_after_fork`).

Pools are held weakly: the registry never keeps a pool alive.
"""

from __future__ import annotations

import multiprocessing.util
import os
import threading
import weakref
from typing import Protocol

__all__ = ["EXIT_PRIORITY", "StoppableAtExit", "track", "untrack"]

# The priority of the finalizer that stops the pools left running at exit. At least 0:
# multiprocessing's exit function (an atexit hook, and the last step of a multiprocessing
# child) runs the finalizers of priority >= 0, *then* joins every non-daemonic child (ours
# are), then runs the others. A negative one would come after a join that never returns.
EXIT_PRIORITY = 10


class StoppableAtExit(Protocol):
    """A pool, as the exit hook sees it."""

    def stop(self, timeout: float | None = None) -> bool: ...

    def _abandon_at_exit(self) -> bool: ...


class _Running:
    """The pools started in this process and not stopped, held weakly, and their finalizer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pools: weakref.WeakSet[StoppableAtExit] = weakref.WeakSet()
        self.finalizer: multiprocessing.util.Finalize[None] | None = None


_running = _Running()


def track(pool: StoppableAtExit) -> None:
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


def untrack(pool: StoppableAtExit) -> None:
    """Forget ``pool``: it was stopped."""
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
