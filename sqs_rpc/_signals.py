"""Stop signals in a main thread that blocks until told to stop.

``MessagePoller.run()``, ``sqs-rpc serve``, ``PollerPool.run()`` and a pool's worker process
all install handlers for SIGTERM (and SIGINT), then block the main thread until a handler, or
another thread, says stop.

Blocking is the subtle part. A signal sent to a process may be taken by any of its threads that
does not block it: the kernel prefers the main thread, but not always (Linux, for one, passes
over a main thread that already has a signal pending). CPython's C-level handler only marks the
Python handler as pending, and the Python handler runs in the main thread the next time that
thread executes bytecode. A main thread blocked in ``threading.Event.wait()`` executes none
until it wakes: the stop signal sat unhandled, and ``sqs-rpc serve`` kept running, under load
in CI (a test reproduces it with ``signal.pthread_kill`` to another thread).

:class:`StopSignals` waits on a socket that is also the process's wake-up fd
(:func:`signal.set_wakeup_fd`), with :mod:`selectors` (epoll, kqueue: any fd number, where
``select()`` stops at 1024): whichever thread takes a signal, the C handler writes a byte there,
the wait returns, and the main thread runs the Python handler. A thread that sets the awaited
event itself calls :meth:`StopSignals.wake`.
"""

from __future__ import annotations

import contextlib
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType

__all__ = ["STOP_SIGNALS", "StopSignals"]

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Handlers for ``signals`` while the main thread waits, and a wait that sees them.

    Example::

        stop = threading.Event()
        with StopSignals(lambda signum: stop.set()) as signals:
            signals.wait(stop)  # returns once a SIGTERM or SIGINT was handled

    On exit the previous handlers and wake-up fd are back. Enter it in the main thread only
    (Python installs signal handlers there only).
    """

    def __init__(
        self, on_signal: Callable[[int], None], signals: Sequence[int] = STOP_SIGNALS
    ) -> None:
        self._on_signal = on_signal
        self._signals = tuple(signals)
        self._previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}
        self._previous_fd: int | None = None  # the wake-up fd before ours, once ours is set
        self._reader: socket.socket | None = None
        self._writer: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None

    def __enter__(self) -> StopSignals:
        try:
            self._reader, self._writer = socket.socketpair()
            for end in (self._reader, self._writer):
                end.setblocking(False)
            self._selector = selectors.DefaultSelector()
            self._selector.register(self._reader, selectors.EVENT_READ)
            self._previous_fd = signal.set_wakeup_fd(
                self._writer.fileno(), warn_on_full_buffer=False
            )
            for signum in self._signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self._on_signal(signum)

    def _restore(self) -> None:
        # Handlers first: a signal from now on acts as it did before, with nothing left to
        # write to the socket about to close. The sockets close whatever fails before.
        try:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous.clear()
            if self._previous_fd is not None:
                previous_fd, self._previous_fd = self._previous_fd, None
                signal.set_wakeup_fd(previous_fd)
        finally:
            reader, writer, selector = self._reader, self._writer, self._selector
            self._reader = self._writer = self._selector = None
            for closable in (selector, reader, writer):
                if closable is not None:
                    closable.close()

    def wait(self, event: threading.Event, timeout: float | None = None) -> bool:
        """Block until ``event`` is set (True) or ``timeout`` passes (False).

        Handlers of signals taken meanwhile run here, whichever thread the kernel gave them
        to. A thread other than the main one that sets ``event`` must call :meth:`wake`.
        """
        selector = self._selector
        if selector is None:
            raise RuntimeError("StopSignals.wait() runs inside its with block only")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not event.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            selector.select(remaining)
            self._drain()
        return True

    def wake(self) -> None:
        """End a :meth:`wait` in progress, so that it checks its event. From any thread."""
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(OSError):  # full (a wake is pending anyway), or closed
                writer.send(b"\0")

    def _drain(self) -> None:
        reader = self._reader
        with contextlib.suppress(OSError):  # BlockingIOError: drained
            while reader is not None and reader.recv(4096):
                pass
