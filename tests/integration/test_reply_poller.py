"""The reply poller's receives: sequential calls make one long poll at a time, and nothing more."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqs_rpc import MessagePoller, RequestCounter, RpcClient
from tests.support.handlers import Echo
from tests.support.helpers import Endpoint

Serve = Callable[..., MessagePoller]


class _Receives:
    """Records the thread and WaitTimeSeconds of each ReceiveMessage a boto3 client makes."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self._lock = threading.Lock()
        self.seen: list[tuple[str, int | None]] = []

    def __enter__(self) -> _Receives:
        self._sqs.meta.events.register("before-parameter-build.sqs.ReceiveMessage", self._on)
        return self

    def __exit__(self, *_: object) -> None:
        self._sqs.meta.events.unregister("before-parameter-build.sqs.ReceiveMessage", self._on)

    def _on(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.seen.append((threading.current_thread().name, params.get("WaitTimeSeconds")))


def test_sequential_calls_make_one_long_poll_at_a_time(
    endpoint: Endpoint, sqs: Any, queue_url: str, serve: Serve
) -> None:
    serve(queue_url, Echo(), sqs_client=endpoint.client())  # not counted below
    counter = RequestCounter.attach(sqs)
    with _Receives(sqs) as receives, RpcClient(sqs_client=sqs) as rpc:
        for i in range(5):
            assert rpc.call(queue_url, i, timeout=10) == {"echo": i}
        owner = f"{id(rpc):x}"
        assert not any(t.name.endswith(f"replies-{owner}-1") for t in threading.enumerate())
    mine = [(name, wait) for name, wait in receives.seen if owner in name]
    assert mine
    assert all(wait == 20 for _, wait in mine)  # never a second receive
    assert counter.snapshot()["SendMessageBatch"] == 5  # one request per call, at once
    counter.detach()
