"""A Python child process whose output a test waits on line by line, with deadlines.

Used by the tests that signal or kill a process (tests/system/test_signals.py,
tests/system/test_bounded_close.py): a pipe is read on a thread of its own, so that the child never
blocks on a full pipe and the test never blocks on a silent child.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType

import pytest

ABORT_WAIT = 5.0  # for a hung child's stacks, after SIGABRT


def child_env() -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONUNBUFFERED": "1",
        # A child that hangs is sent SIGABRT: faulthandler prints every thread's stack.
        "PYTHONFAULTHANDLER": "1",
    }


class Child:
    """``python ARGS...``, its stdout and stderr merged and read line by line.

    Example::

        with Child(["-c", SCRIPT, url]) as child:
            child.wait_for_line("ready")
            child.signal(signal.SIGTERM)
            assert child.wait(timeout=10) == 0
    """

    def __init__(self, args: Sequence[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *args],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._new: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, name="test-child-reader", daemon=True)
        self._reader.start()

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._new.put(line.rstrip("\n"))
        self._new.put(None)

    def wait_for_line(self, fragment: str, timeout: float = 30.0) -> str:
        """The first line (new or already seen) that contains ``fragment``; fail at the deadline."""
        for line in self.lines:
            if fragment in line:
                return line
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self._new.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                pytest.fail(f"no line with {fragment!r} within {timeout}s; output:\n{self.output}")
            if got is None:
                pytest.fail(f"the child exited without a line with {fragment!r}:\n{self.output}")
            line = got
            self.lines.append(line)
            if fragment in line:
                return line

    def signal(self, signum: signal.Signals) -> float:
        """Send ``signum``; return the ``time.monotonic()`` at which it was sent."""
        self.process.send_signal(signum)
        return time.monotonic()

    def wait(self, timeout: float) -> int:
        """The exit code; fail (the child is killed on exit) if it still runs at the deadline."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._abort_with_stacks()
            pytest.fail(f"the child still runs after {timeout}s; output:\n{self.output}")
        self._reader.join(10)
        while (line := self._drain()) is not None:
            self.lines.append(line)
        return code

    def _abort_with_stacks(self) -> None:
        """SIGABRT the hung child: its faulthandler prints every thread's stack to the output."""
        self.process.send_signal(signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(ABORT_WAIT)
        self._reader.join(ABORT_WAIT)

    def _drain(self) -> str | None:
        try:
            return self._new.get_nowait()
        except queue.Empty:
            return None

    @property
    def output(self) -> str:
        while (line := self._drain()) is not None:
            self.lines.append(line)
        return "\n".join(self.lines)
