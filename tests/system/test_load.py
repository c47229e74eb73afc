"""Many calls from many threads through one client and one poller: each caller gets its own
reply, every time (1,040 calls; a load test, so in the system tier).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from sqs_rpc import MessagePoller, RpcClient
from tests.support.handlers import Echo

Serve = Callable[..., MessagePoller]


@pytest.mark.timeout(180)  # a loaded machine: this is the suite's busiest test
def test_many_threads_each_get_their_own_reply(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    serve(queue_url, Echo(), concurrency=8)

    def caller(thread: int) -> list[bool]:
        return [
            client.call(queue_url, {"t": thread, "i": i}, timeout=60)
            == {"echo": {"t": thread, "i": i}}
            for i in range(130)
        ]

    with ThreadPoolExecutor(8) as pool:
        results = [ok for batch in pool.map(caller, range(8)) for ok in batch]
    assert len(results) == 1040
    assert all(results)
    assert client.pending_calls == 0
