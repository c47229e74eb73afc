from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from sqs_rpc import ClientClosedError, RpcTimeout
from sqs_rpc._client.pending import PendingCalls


@pytest.fixture
def pending() -> Iterator[PendingCalls]:
    calls = PendingCalls("sqs-rpc-test")
    calls.start()
    yield calls
    assert calls.stop(5)


def test_a_call_fails_with_rpc_timeout_at_its_deadline(pending: PendingCalls) -> None:
    future: Future[object] = Future()
    pending.add("c1", future, 0.05)
    with pytest.raises(RpcTimeout, match="c1"):
        future.result(timeout=5)
    assert len(pending) == 0


def test_an_earlier_deadline_wakes_the_timer(pending: PendingCalls) -> None:
    slow: Future[object] = Future()
    fast: Future[object] = Future()
    pending.add("slow", slow, 3600)
    pending.add("fast", fast, 0.05)
    with pytest.raises(RpcTimeout):
        fast.result(timeout=5)
    assert not slow.done()


def test_a_tiny_timeout_still_fails_the_future(pending: PendingCalls) -> None:
    future: Future[object] = Future()
    pending.add("c", future, 1e-9)
    with pytest.raises(RpcTimeout):
        future.result(timeout=5)


def test_pop_returns_the_future_once(pending: PendingCalls) -> None:
    future: Future[object] = Future()
    pending.add("c", future, 60)
    assert pending.pop("c") is future
    assert pending.pop("c") is None


def test_cancelling_a_future_releases_its_entry(pending: PendingCalls) -> None:
    future: Future[object] = Future()
    pending.add("c", future, 60)
    assert future.cancel()
    assert len(pending) == 0


def test_fail_all(pending: PendingCalls) -> None:
    futures = [Future() for _ in range(3)]
    for i, future in enumerate(futures):
        pending.add(str(i), future, 60)
    assert pending.fail_all(ClientClosedError) == 3
    for future in futures:
        with pytest.raises(ClientClosedError):
            future.result(timeout=0)


def test_after_closing_fail_all_a_new_call_fails_at_once(pending: PendingCalls) -> None:
    waiting: Future[object] = Future()
    pending.add("before", waiting, 60)
    closed = pending.fail_all(lambda cid: ClientClosedError(f"closed: {cid}"), close=True)
    assert closed == 1
    late: Future[object] = Future()
    # A send racing with close(): it must not wait for a timer that no longer runs.
    pending.add("after", late, 60)
    assert late.done()
    with pytest.raises(ClientClosedError, match="closed: after"):
        late.result(timeout=0)
    assert len(pending) == 0


def test_a_reused_id_keeps_its_own_deadline(pending: PendingCalls) -> None:
    first: Future[object] = Future()
    pending.add("c", first, 0.05)
    assert pending.pop("c") is first
    first.set_result("replied")
    again: Future[object] = Future()
    pending.add("c", again, 3600)  # the id is free again; the old deadline is not its own
    probe: Future[object] = Future()
    pending.add("probe", probe, 0.1)
    with pytest.raises(RpcTimeout):
        probe.result(timeout=5)  # the timer has passed the first call's deadline by now
    assert not again.done()
    assert len(pending) == 1


def test_settled_calls_leave_nothing_behind(pending: PendingCalls) -> None:
    futures: list[Future[object]] = [Future() for _ in range(1000)]
    for i, future in enumerate(futures):
        pending.add(str(i), future, 3600)
    for i, future in enumerate(futures):
        assert pending.pop(str(i)) is future
        future.set_result(i)
    assert len(pending) == 0
    # The deadline heap follows the live calls, not every call made in the last hour.
    assert len(pending._deadlines) < 100
