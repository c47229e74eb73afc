"""What happens to open clients when the interpreter exits and when the process forks.

* **Exit:** an ``atexit`` hook closes every client that was never closed. So its reply queue
  is deleted even when the program forgot ``close()``. Only a SIGKILL, a signal whose
  default action kills (SIGTERM, unless the application handles it), or a crash of the
  interpreter itself leaves a queue behind, for the sweeper.
* **Exit of a multiprocessing child** (every start method, ``Pool`` and
  ``ProcessPoolExecutor`` workers): such a child ends with ``os._exit()``, so ``atexit`` never
  runs there; multiprocessing runs its *finalizers* instead. The same closing is registered
  as one (:func:`_hook_exit`), in every process: at import, and again in each
  multiprocessing child, whose finalizers are cleared as it starts.
* **Server shutdown:** ``MessagePoller.run()`` and ``sqs-rpc serve`` call :func:`close_all`
  once stopped: clients made by handler code are closed even if a call of theirs still waits.
* **Garbage collection:** a client dropped without ``close()`` warns, and
  :func:`release_unclosed` stops its threads and deletes its queue, on a thread of its own.
* **fork():** the child inherits copies of the parent's clients but not their threads. A hook
  runs in the child before any other code. It gives each copy fresh locks and forgets the
  parent's reply queue, so the child can never receive (steal) the parent's replies.

Clients are held weakly: the registry never keeps a client alive.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing.util
import os
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

from sqs_rpc._loop import thread_name

__all__ = ["ProcessBound", "close_all", "release_unclosed", "track", "untrack"]

logger = logging.getLogger(__name__)

# The exit priority of the closing finalizer in multiprocessing children. Negative: it runs
# after multiprocessing's own finalizers (a Queue's feeder thread flushes at -5), with the
# rest, so that a user's finalizer of higher priority that still makes a call finds the
# client open.
EXIT_PRIORITY = -10


class ProcessBound(Protocol):
    """An object that owns per-process resources (threads, a reply queue)."""

    def close(self) -> None: ...

    def _after_fork_in_child(self) -> None: ...


class _Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open: weakref.WeakSet[ProcessBound] = weakref.WeakSet()
        self.exit_finalizer: multiprocessing.util.Finalize[None] | None = None


_registry = _Registry()


def track(owner: ProcessBound) -> None:
    """Close ``owner`` at interpreter exit and reset it in a forked child."""
    with _registry.lock:
        _registry.open.add(owner)


def untrack(owner: ProcessBound) -> None:
    with _registry.lock:
        _registry.open.discard(owner)


def close_all() -> int:
    """Close every client of this process that is still open; return how many there were.

    A client that fails to close is logged, never raised: the sweeper covers what is left.
    """
    with _registry.lock:
        owners = list(_registry.open)
    for owner in owners:
        try:
            owner.close()
        except Exception:
            # At exit or at a server's shutdown there is no one to raise to.
            logger.warning("could not close %r", owner, exc_info=True)
    return len(owners)


def release_unclosed(
    stop: Callable[[float], bool], detach: Callable[[], None], owner: str, timeout: float
) -> None:
    """Stop a garbage-collected client's transport (``stop``), then ``detach`` its counter.

    On a thread of its own, never on the collecting thread: garbage collection runs on
    whichever thread allocates. That thread may hold a lock that stopping needs, or be one of
    the threads stopping joins.
    """

    def release() -> None:
        if not stop(timeout):
            logger.warning("an unclosed RpcClient's threads did not stop within %gs", timeout)
        detach()

    # RuntimeError: the interpreter is shutting down, and atexit closed what it could.
    with contextlib.suppress(RuntimeError):
        threading.Thread(target=release, name=thread_name("closer", owner), daemon=True).start()


def _close_all_at_exit() -> None:
    close_all()


def _hook_exit(_: object = None) -> None:
    """Make sure :func:`_close_all_at_exit` runs when a multiprocessing child ends.

    A finalizer runs only in the process that registered it, and a multiprocessing child
    clears the ones it inherited before its target runs: so register one per process, unless
    this process has one still waiting.
    """
    finalizer = _registry.exit_finalizer
    if finalizer is None or not finalizer.still_active():
        _registry.exit_finalizer = multiprocessing.util.Finalize(
            None, _close_all_at_exit, exitpriority=EXIT_PRIORITY
        )


def _after_fork_in_child() -> None:
    # The parent may have held the lock in another thread at fork time: the child has only
    # this thread, so a held lock would never be released.
    _registry.lock = threading.Lock()
    owners = list(_registry.open)
    for owner in owners:
        owner._after_fork_in_child()
    logger.debug("process %d: reset %d inherited clients after fork", os.getpid(), len(owners))


atexit.register(_close_all_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
_hook_exit()
# Runs in every multiprocessing child after it cleared the finalizers it inherited (or, in a
# spawned child that imported sqs-rpc while unpickling its target, the one of that import).
multiprocessing.util.register_after_fork(_registry, _hook_exit)
