"""Message handlers many test files share: one definition each, named by what they do.

- :class:`Echo` replies ``{"echo": body}`` (a reply that shows the handler ran), raises
  ``ValueError("asked to fail")`` for the body ``"fail"``, and remembers what it ran.
- :class:`EchoBody` is the same, but replies with the body unchanged.
- :class:`Gate` holds every call until the test releases it.

A handler particular to one test file (a FIFO recorder, a fuzz tracer) stays in that file.
"""

from __future__ import annotations

import threading
from typing import Any

from sqs_rpc import IncomingMessage, MessageHandler

__all__ = ["Echo", "EchoBody", "Gate"]

GATE_TIMEOUT = 30.0  # a Gate never outlives a forgotten release() by much


class Echo(MessageHandler):
    """Replies ``{"echo": body}``; the body ``"fail"`` raises ValueError.

    ``seen`` holds every message it ran (in the order they started) and ``calls`` their number,
    so a test can check what reached the handler, and that something did not.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[IncomingMessage] = []

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.seen)

    def handle(self, message: IncomingMessage) -> Any:
        with self._lock:
            self.seen.append(message)
        if message.body == "fail":
            raise ValueError("asked to fail")
        return self.reply(message.body)

    def reply(self, body: Any) -> Any:
        return {"echo": body}


class EchoBody(Echo):
    """Replies with the request's body unchanged (otherwise an :class:`Echo`)."""

    def reply(self, body: Any) -> Any:
        return body


class Gate(MessageHandler):
    """Blocks every call until :attr:`release` is set, so a test controls when replies go.

    :attr:`started` is set once a call is running. Replies with the body unchanged.
    """

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def handle(self, message: IncomingMessage) -> Any:
        self.started.set()
        self.release.wait(GATE_TIMEOUT)
        return message.body
