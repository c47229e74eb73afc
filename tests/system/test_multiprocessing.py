"""multiprocessing children leave no reply queue: fork, forkserver, spawn, and Pool workers.

A multiprocessing child ends with ``os._exit()``, so the ``atexit`` hook that closes open
clients never runs there. Each test's child makes a call and ends normally without
``close()``; once it has ended, its reply queue must be gone.
"""

from __future__ import annotations

import multiprocessing
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sqs_rpc import MessagePoller, RpcClient
from tests.support import multiprocessing_children as children
from tests.support.handlers import Echo
from tests.support.helpers import Endpoint


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> str:
    """A reply queue prefix of this test only; and credentials any child can find."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return f"sqs-rpc-reply-p{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def echo_queue(queue_url: str, serve: Callable[..., MessagePoller]) -> str:
    serve(queue_url, Echo(), concurrency=4)
    return queue_url


@pytest.fixture(autouse=True)
def fork_with_threads() -> Iterator[None]:
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads may deadlock; sqs-rpc's
        # fork hook is what makes that safe for its own locks and threads.
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def options(endpoint: Endpoint, prefix: str) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint.endpoint_url,
        "region_name": endpoint.region_name,
        "reply_queue_prefix": prefix,
    }


def queues(sqs: Any, prefix: str) -> set[str]:
    return set(sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []))


def run_child(method: str, target: Callable[..., None], *args: Any) -> tuple[Any, str]:
    """Run ``target(*args, conn)`` in a child; return what it sent, once it has ended."""
    context = multiprocessing.get_context(method)
    parent_end, child_end = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(*args, child_end))
    process.start()
    child_end.close()
    try:
        assert parent_end.poll(60), f"the {method} child did not report within 60 s"
        reply, url = parent_end.recv()
        process.join(60)
        assert process.exitcode == 0
    finally:
        if process.is_alive():
            process.kill()
            process.join(10)
        parent_end.close()
    return reply, url


@pytest.mark.timeout(90)
def test_a_forked_child_using_its_parents_client_leaves_no_queue(
    endpoint: Endpoint, sqs: Any, prefix: str, echo_queue: str
) -> None:
    with RpcClient(**options(endpoint, prefix)) as client:
        assert client.call(echo_queue, "parent", timeout=30) == {"echo": "parent"}
        parent_queue = client.reply_queue_url

        reply, child_queue = run_child(
            "fork", children.call_with_inherited_client, client, echo_queue
        )

        assert reply == {"echo": "from a forked child"}
        assert child_queue != parent_queue
        assert queues(sqs, prefix) == {parent_queue}
        assert client.call(echo_queue, "parent again", timeout=30) == {"echo": "parent again"}


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_child_that_leaves_its_client_open_leaves_no_queue(
    endpoint: Endpoint, sqs: Any, prefix: str, echo_queue: str, method: str
) -> None:
    reply, child_queue = run_child(
        method, children.call_with_own_client, options(endpoint, prefix), echo_queue
    )
    assert reply == {"echo": "from a child"}
    assert child_queue.startswith("http")
    assert queues(sqs, prefix) == set()


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_workers_leave_no_queue(
    endpoint: Endpoint, sqs: Any, prefix: str, echo_queue: str, method: str
) -> None:
    context = multiprocessing.get_context(method)
    pool = context.Pool(
        2, initializer=children.make_worker_client, initargs=(options(endpoint, prefix),)
    )
    try:
        results = pool.starmap(children.call_from_worker, [(echo_queue, n) for n in range(6)])
        # close() and join(): the workers end normally. (terminate(), which leaving
        # `with Pool()` calls, SIGTERMs them: their queues are left to the sweeper.)
        pool.close()
        pool.join()
    finally:
        pool.terminate()
    assert [reply for reply, _ in results] == [{"echo": n} for n in range(6)]
    assert 1 <= len({url for _, url in results}) <= 2
    assert queues(sqs, prefix) == set()
