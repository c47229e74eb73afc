"""StopSignals: a signal wakes the waiting main thread, whichever thread took it.

A thread sends the signal to itself (``signal.pthread_kill``), as the kernel may deliver a
process's SIGTERM to any thread. A plain ``Event.wait()`` in the main thread then never wakes
(the bug behind a ``sqs-rpc serve`` that ignored SIGTERM); only the guard timer would end it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

import pytest

from sqs_rpc._signals import StopSignals

GUARD = 20.0  # ends a broken wait, so that the test fails instead of hanging


def main_thread_blocks_in_wait() -> bool:
    """The main thread is in a function named ``wait`` (or one it called) and asleep."""
    main = threading.main_thread()
    frame = sys._current_frames().get(main.ident or 0)
    names = []
    while frame is not None and len(names) < 3:  # the wait, or a selector's select in it
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    if "wait" not in names:
        return False
    with open(f"/proc/self/task/{main.native_id}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "S"


def signal_from_another_thread(signum: int) -> Callable[[], None]:
    """Start a thread that, once the main thread waits, sends ``signum`` to itself."""
    ready = threading.Event()

    def send() -> None:
        # Once the main thread sleeps in wait() (polled, not slept on): signalled before, the
        # handler would run at once in the main thread, and the test could not fail.
        while not main_thread_blocks_in_wait() and not ready.wait(0.001):
            pass
        signal.pthread_kill(threading.get_ident(), signum)

    sender = threading.Thread(target=send, name="test-signal-sender")
    sender.start()

    def finish() -> None:
        ready.set()
        sender.join(GUARD)

    return finish


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the main thread's state in /proc"
)
def test_a_signal_taken_by_another_thread_ends_the_wait() -> None:
    got: list[int] = []
    stop, guard_fired = threading.Event(), threading.Event()

    def on_signal(signum: int) -> None:
        got.append(signum)
        stop.set()

    guard = threading.Timer(GUARD, lambda: (guard_fired.set(), stop.set()))
    guard.start()
    try:
        with StopSignals(on_signal, [signal.SIGUSR1]) as signals:
            finish = signal_from_another_thread(signal.SIGUSR1)
            assert signals.wait(stop) is True
            finish()
    finally:
        guard.cancel()
    assert not guard_fired.is_set(), "the signal did not wake the main thread"
    assert got == [signal.SIGUSR1]


def test_a_thread_that_sets_the_event_wakes_the_wait() -> None:
    stop = threading.Event()
    with StopSignals(lambda _: None, [signal.SIGTERM]) as signals:

        def set_and_wake() -> None:
            stop.set()
            signals.wake()

        setter = threading.Thread(target=set_and_wake)
        setter.start()
        assert signals.wait(stop) is True
        setter.join()


def test_the_wait_ends_at_its_timeout_without_the_event() -> None:
    with StopSignals(lambda _: None, [signal.SIGTERM]) as signals:
        assert signals.wait(threading.Event(), timeout=0.01) is False


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file descriptors")
def test_a_process_with_over_1024_open_files_can_wait() -> None:
    # select() refuses a descriptor from FD_SETSIZE (1024) up: a busy service has that many.
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1200
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"RLIMIT_NOFILE allows {hard} files")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    held = [os.open(os.devnull, os.O_RDONLY)]  # not stdin: a test runner may have closed it
    try:
        while held[-1] < 1100:
            held.append(os.dup(held[0]))
        with StopSignals(lambda _: None, [signal.SIGTERM]) as signals:
            assert signals.wait(threading.Event(), timeout=0.01) is False
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_previous_handlers_and_wakeup_fd_are_back_after_the_block() -> None:
    def previous(_signum: int, _frame: object) -> None:
        pass

    before = signal.signal(signal.SIGTERM, previous)
    try:
        with StopSignals(lambda _: None, [signal.SIGTERM]) as signals:
            assert signal.getsignal(signal.SIGTERM) is not previous
        assert signal.getsignal(signal.SIGTERM) is previous
        assert signal.set_wakeup_fd(-1) == -1  # none was set before, none is left
    finally:
        signal.signal(signal.SIGTERM, before)
    with pytest.raises(RuntimeError, match="inside its with block"):
        signals.wait(threading.Event())  # after the block


def test_wait_outside_the_block_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="inside its with block"):
        StopSignals(lambda _: None).wait(threading.Event())
