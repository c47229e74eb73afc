"""Ordering per FIFO message group, end to end through a MessagePoller."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, RpcClient
from tests.support.helpers import wait_for


class Recorder(MessageHandler):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[Any] = []

    def handle(self, message: IncomingMessage) -> Any:
        with self._lock:
            self.seen.append(message.body)
        return None


def test_one_worker_runs_each_group_in_send_order(
    sqs: Any, make_queue: Callable[..., str], serve: Callable[..., MessagePoller]
) -> None:
    fifo = make_queue(
        f"test-{uuid.uuid4().hex[:12]}.fifo", FifoQueue="true", ContentBasedDeduplication="true"
    )
    recorder = Recorder()
    # concurrency=1: one worker for both groups (tests/integration/test_fifo_groups.py has several).
    serve(fifo, recorder, concurrency=1)
    with RpcClient(sqs_client=sqs) as client:
        for i in range(8):
            for group in ("a", "b"):
                client.publish(fifo, [group, i], group_id=group)
    wait_for(lambda: len(recorder.seen) == 16, timeout=30)
    for group in ("a", "b"):
        assert [i for g, i in recorder.seen if g == group] == list(range(8))
