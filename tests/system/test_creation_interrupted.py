"""Creating the reply queue is all or nothing, whatever interrupts it.

A Ctrl-C raises ``KeyboardInterrupt`` where Python checks for signals: as a function starts,
and as a call returns. Here one lands at each such point of the first call in turn: a trace
function (``sys.settrace``) raises at the k-th call or return event while the call creates
the reply queue, for every k until the call goes through. The points are sqs-rpc's functions,
``Thread.start`` and its wait (a thread that fails to start), and botocore's API call (after
SQS created the queue, before its URL came back). After each interrupt no reply queue and no
sqs-rpc thread is left, and the next call works. A last test sends real SIGINTs, at random
moments of 60 first calls in a child process.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import botocore.client
import pytest

import sqs_rpc
from sqs_rpc import RpcClient
from sqs_rpc._loop import THREAD_PREFIX
from tests.support.helpers import wait_for

PACKAGE = str(Path(sqs_rpc.__file__).resolve().parent)
FOREIGN_POINTS = {
    threading.Thread.start.__code__,
    threading.Event.wait.__code__,
    botocore.client.BaseClient._make_api_call.__code__,
}


def _library_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)}


def _queues(sqs: Any, prefix: str) -> list[str]:
    urls: list[str] = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    return urls


class InterruptAt:
    """A trace function that raises ``error`` at the ``k``-th point of queue creation.

    Creation is what ``Transport.reply_address`` calls. A point is the start or the
    return of one of sqs-rpc's functions or of :data:`FOREIGN_POINTS`. (Not any line: Python
    checks for signals only at some instructions, and an exception at others, such as the
    no-op of a ``try:``, escapes even a ``with`` block.) CPython removes a trace function that
    raises: one interrupt per run.
    """

    def __init__(self, k: int, error: type[BaseException]) -> None:
        self.k = k
        self.error = error
        self.points = 0
        self.depth = 0  # > 0 inside reply_address

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        if code.co_name == "reply_address" and code.co_filename.endswith("transport.py"):
            self.depth += 1  # its own start and return are not creation's: not points
            return self._local
        if not self.depth:
            return None
        if code.co_filename.startswith(PACKAGE) or code in FOREIGN_POINTS:
            self._point(frame)
            return self._local
        return None

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "return":
            if frame.f_code.co_name == "reply_address":
                self.depth -= 1
            else:
                self._point(frame)
        return self._local

    def _point(self, frame: FrameType) -> None:
        self.points += 1
        if self.points == self.k:
            where = f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"
            raise self.error(f"injected at point {self.k}: {frame.f_code.co_name} ({where})")


@pytest.fixture
def prefix(sqs: Any) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}-"
    yield name
    for url in _queues(sqs, name):
        sqs.delete_queue(QueueUrl=url)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_interrupt_at_any_point_of_queue_creation_leaves_nothing(
    sqs: Any, queue_url: str, prefix: str, error: type[BaseException]
) -> None:
    before = _library_threads()
    k = 0
    while True:
        k += 1
        assert k < 2000, "the first call never went through"
        with RpcClient(sqs_client=sqs, reply_queue_prefix=prefix) as client:
            interrupt = InterruptAt(k, error)
            sys.settrace(interrupt)
            try:
                client.call_async(queue_url, "first", timeout=30)
            except error as exc:
                injected = str(exc)
                assert injected.startswith("injected at point"), injected
            else:
                assert interrupt.points < k  # every point was tried: done
                break
            finally:
                sys.settrace(None)
            assert client.reply_queue_url is None, injected
            assert _queues(sqs, prefix) == [], f"queue left after an interrupt {injected}"
            wait_for(lambda: _library_threads() <= before, timeout=10)
            # All or nothing: the next call makes a queue, as if nothing had happened.
            client.call_async(queue_url, "second", timeout=30)
            assert _queues(sqs, prefix) == [client.reply_queue_url]
        assert _queues(sqs, prefix) == []
    assert _queues(sqs, prefix) == []
    assert k > 50  # the trace did reach the creation's points


def test_an_interrupt_in_a_botocore_hook_after_create_queue_leaves_no_queue(
    sqs: Any, queue_url: str, prefix: str
) -> None:
    """After SQS created the queue and before its URL came back (botocore's after-call)."""
    before = _library_threads()

    def interrupt(**_: Any) -> None:
        raise KeyboardInterrupt

    sqs.meta.events.register("after-call.sqs.CreateQueue", interrupt)
    try:
        with RpcClient(sqs_client=sqs, reply_queue_prefix=prefix) as client:
            with pytest.raises(KeyboardInterrupt):
                client.call_async(queue_url, "first", timeout=30)
            assert client.reply_queue_url is None
    finally:
        sqs.meta.events.unregister("after-call.sqs.CreateQueue", interrupt)
    assert _queues(sqs, prefix) == []
    wait_for(lambda: _library_threads() <= before, timeout=10)
