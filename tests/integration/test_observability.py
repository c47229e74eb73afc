"""stats() and hooks on clients and pollers, over real round trips to the SQS server."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import (
    AsyncRpcClient,
    CallFinished,
    CallStarted,
    ConfigurationError,
    Hooks,
    IncomingMessage,
    MessageHandled,
    MessageHandler,
    MessagePoller,
    QueueDoesNotExist,
    RemoteError,
    RequestCounter,
    RpcClient,
    RpcTimeout,
)
from sqs_rpc._stats import LatencyWindow, percentile
from tests.support.helpers import Endpoint, wait_for

Serve = Callable[..., MessagePoller]


class Calculator(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        if message.body.get("fail"):
            raise ValueError("asked to fail")
        return message.body["x"] * 2


class Recorder:
    """Collects hook events from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        with self.lock:
            return [e for e in self.events if isinstance(e, kind)]


def _explode(event: Any) -> None:
    raise RuntimeError(f"broken metrics backend on {type(event).__name__}")


# -- the latency window ------------------------------------------------------------------------


def test_percentiles_are_nearest_rank() -> None:
    window = LatencyWindow()
    for ms in range(100, 0, -1):  # order of arrival does not matter
        window.add(ms / 1000)
    latency = window.snapshot()
    assert (latency.p50, latency.p90, latency.p99, latency.max) == (0.05, 0.09, 0.099, 0.1)
    assert latency.count == latency.window == 100
    assert latency.sum == pytest.approx(5.05)
    assert percentile([7.0], 0.99) == 7.0


def test_latency_window_is_bounded_and_recent() -> None:
    window = LatencyWindow(size=10)
    for _ in range(1000):
        window.add(5.0)
    for _ in range(10):
        window.add(1.0)
    latency = window.snapshot()
    assert latency.count == 1010  # all time
    assert latency.window == 10  # memory bounded by the window
    assert latency.max == 1.0  # percentiles over the recent samples only


def test_empty_latency_has_no_percentiles() -> None:
    latency = LatencyWindow().snapshot()
    assert (latency.count, latency.window, latency.p50, latency.max) == (0, 0, None, None)


# -- configuration -----------------------------------------------------------------------------


def test_hooks_must_be_callables() -> None:
    with pytest.raises(ConfigurationError, match="on_call_started"):
        Hooks(on_call_started=3)  # type: ignore[arg-type]


def test_hooks_option_must_be_a_hooks_object(sqs: Any, queue_url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"sqs_rpc\.Hooks"):
        RpcClient(sqs_client=sqs, hooks=print)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"sqs_rpc\.Hooks"):
        MessagePoller(queue_url, Calculator(), sqs_client=sqs, hooks={})  # type: ignore[arg-type]


def test_request_counter_detach_stops_counting(sqs: Any, queue_url: str) -> None:
    counter = RequestCounter.attach(sqs)
    sqs.get_queue_attributes(QueueUrl=queue_url)
    counter.detach()
    counter.detach()  # idempotent
    sqs.get_queue_attributes(QueueUrl=queue_url)
    assert counter.snapshot() == {"GetQueueAttributes": 1}


# -- the client --------------------------------------------------------------------------------


def test_client_stats_count_every_outcome(
    endpoint: Endpoint, make_queue: Callable[..., str], serve: Serve
) -> None:
    served, silent = make_queue(), make_queue()
    serve(served, Calculator())
    # Its own boto3 client: the requests it counts are the RpcClient's alone.
    with RpcClient(sqs_client=endpoint.client(), default_timeout=20) as client:
        assert client.stats().calls == 0
        assert client.call(served, {"x": 21}) == 42
        with pytest.raises(RemoteError):
            client.call(served, {"fail": True})
        with pytest.raises(RpcTimeout):
            client.call(silent, {}, timeout=0.5)
        waiting = client.call_async(silent, {}, timeout=30)
        assert client.stats().pending == 1
        waiting.cancel()
        client.publish(served, {"x": 0})
        stats = client.stats()
    assert (stats.calls, stats.replies, stats.remote_errors, stats.timeouts) == (4, 1, 1, 1)
    assert (stats.cancelled, stats.errors, stats.published, stats.pending) == (1, 0, 1, 0)
    assert stats.latency.count == 2  # answered calls only: the reply and the remote error
    assert stats.latency.p50 is not None
    assert stats.latency.max is not None
    assert 0 < stats.latency.p50 <= stats.latency.max
    assert stats.requests["CreateQueue"] == 1
    # Four calls and one publish, sent alone or in batches with other sends.
    sends = stats.requests.get("SendMessage", 0) + stats.requests.get("SendMessageBatch", 0)
    assert 1 <= sends <= 5
    assert "GetQueueAttributes" not in stats.requests  # the server's, on another client
    assert stats.requests["ReceiveMessage"] >= 1


def test_a_failed_call_is_in_stats_and_hooks_once_call_raises(sqs: Any, queue_url: str) -> None:
    # The send fails on the batcher's thread, which runs the future's callbacks after the
    # caller woke. A slow hook there made call() raise before the stats counted the error.
    finished: list[str] = []
    callers = {threading.get_ident()}

    def slow_hook(event: CallFinished) -> None:
        if threading.get_ident() not in callers:
            threading.Event().wait(0.3)  # a slow hook on the sending thread
        finished.append(event.outcome)

    missing = queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    with RpcClient(sqs_client=sqs, hooks=Hooks(on_call_finished=slow_hook)) as client:
        for count in (1, 2, 3):
            with pytest.raises(QueueDoesNotExist):
                client.call(missing, {})
            assert finished == ["error"] * count
            assert client.stats().errors == count


def test_client_stats_after_close_include_the_queue_deletion(sqs: Any, queue_url: str) -> None:
    with RpcClient(sqs_client=sqs) as client:
        with pytest.raises(QueueDoesNotExist):
            client.call(queue_url.rsplit("/", 1)[0] + "/no-such-queue", {})
        assert client.stats().errors == 1
    # The reply queue was made and deleted, and counting stopped at close.
    requests = client.stats().requests
    assert requests["CreateQueue"] == requests["DeleteQueue"] == 1
    sqs.list_queues()
    assert "ListQueues" not in client.stats().requests


def test_call_hooks_report_each_call_with_its_outcome(
    sqs: Any, make_queue: Callable[..., str], serve: Serve
) -> None:
    served, silent = make_queue(), make_queue()
    serve(served, Calculator())
    recorder = Recorder()
    hooks = Hooks(on_call_started=recorder, on_call_finished=recorder)
    with RpcClient(sqs_client=sqs, default_timeout=20, hooks=hooks) as client:
        client.call(served, {"x": 1})
        with pytest.raises(RemoteError):
            client.call(served, {"fail": True})
        with pytest.raises(RpcTimeout):
            client.call(silent, {}, timeout=0.5)
        with pytest.raises(QueueDoesNotExist):
            client.call(served.rsplit("/", 1)[0] + "/no-such-queue", {})
    started = recorder.of(CallStarted)
    finished = recorder.of(CallFinished)
    assert [e.outcome for e in finished] == ["ok", "remote_error", "timeout", "error"]
    assert [e.correlation_id for e in started] == [e.correlation_id for e in finished]
    assert [e.queue_url for e in started][:3] == [served, served, silent]
    assert len({e.correlation_id for e in started}) == 4
    assert all(e.duration >= 0 for e in finished)
    assert finished[0].error is None
    assert isinstance(finished[1].error, RemoteError)
    assert isinstance(finished[2].error, RpcTimeout)
    assert isinstance(finished[3].error, QueueDoesNotExist)
    assert finished[2].duration >= 0.5


def test_a_raising_hook_is_logged_and_never_breaks_a_call(
    sqs: Any, queue_url: str, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="sqs_rpc.hooks")
    serve(queue_url, Calculator())
    hooks = Hooks(on_call_started=_explode, on_call_finished=_explode)
    with RpcClient(sqs_client=sqs, default_timeout=20, hooks=hooks) as client:
        assert [client.call(queue_url, {"x": x}) for x in range(3)] == [0, 2, 4]
        assert client.stats().replies == 3
    failures = [r for r in caplog.records if r.name == "sqs_rpc.hooks"]
    assert len(failures) == 6  # started and finished, three calls
    assert "broken metrics backend on CallFinished" in caplog.text


def test_async_client_shares_stats_and_hooks(
    sqs: Any, make_queue: Callable[..., str], serve: Serve
) -> None:
    served, silent = make_queue(), make_queue()
    serve(served, Calculator())
    recorder = Recorder()

    async def main() -> Any:
        hooks = Hooks(on_call_finished=recorder)
        async with AsyncRpcClient(sqs_client=sqs, default_timeout=20, hooks=hooks) as client:
            assert await asyncio.gather(*(client.call(served, {"x": x}) for x in range(5))) == [
                0,
                2,
                4,
                6,
                8,
            ]
            task = asyncio.ensure_future(client.call(silent, {}))
            await asyncio.to_thread(wait_for, lambda: client.pending_calls == 1, 20)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The call's own future is cancelled by a callback the loop runs right after.
            await asyncio.to_thread(wait_for, lambda: client.stats().cancelled == 1, 20)
            return client.stats()

    stats = asyncio.run(main())
    assert (stats.calls, stats.replies, stats.cancelled, stats.pending) == (6, 5, 1, 0)
    assert sorted(e.outcome for e in recorder.of(CallFinished)) == ["cancelled"] + ["ok"] * 5


# -- the server --------------------------------------------------------------------------------


def test_poller_stats_have_latency_and_requests(
    endpoint: Endpoint, queue_url: str, serve: Serve, client: RpcClient
) -> None:
    poller = serve(queue_url, Calculator(), sqs_client=endpoint.client())
    assert client.call(queue_url, {"x": 2}) == 4
    with pytest.raises(RemoteError):
        client.call(queue_url, {"fail": True})
    stats = wait_for(lambda: (s := poller.stats()).latency.count == 2 and s)
    assert (stats.handled, stats.failed) == (1, 1)
    assert stats.latency.p99 is not None
    assert stats.latency.p99 > 0
    assert stats.requests["GetQueueAttributes"] == 1
    assert stats.requests["ReceiveMessage"] >= 1
    assert stats.requests["SendMessageBatch"] >= 1  # the replies
    assert "CreateQueue" not in stats.requests  # the client's, on another boto3 client


def test_message_hook_reports_each_outcome(
    sqs: Any, queue_url: str, serve: Serve, client: RpcClient
) -> None:
    # A call that times out before any server runs: its request expires in the queue.
    with pytest.raises(RpcTimeout):
        client.call(queue_url, {"x": 0}, timeout=0.2)
    recorder = Recorder()
    # No skew tolerance: the request expired a moment ago, and must count as expired.
    serve(
        queue_url,
        Calculator(),
        hooks=Hooks(on_message_handled=recorder),
        clock_skew_tolerance=0,
    )
    assert client.call(queue_url, {"x": 5}) == 10
    with pytest.raises(RemoteError):
        client.call(queue_url, {"fail": True})
    client.publish(queue_url, {"x": 1})
    events = wait_for(lambda: len(recorder.of(MessageHandled)) == 4 and recorder.of(MessageHandled))
    by_outcome = {e.outcome: e for e in events}
    assert sorted(by_outcome) == ["error", "expired", "ok"]
    assert sum(e.outcome == "ok" for e in events) == 2  # the call and the one-way message
    assert all(e.queue_url == queue_url and e.finished and e.duration >= 0 for e in events)
    assert all(e.message_id for e in events)
    assert len({e.correlation_id for e in events}) == 4  # publish() sets one too
    assert by_outcome["error"].correlation_id is not None


def test_a_raising_message_hook_never_stops_the_poller(
    sqs: Any, queue_url: str, serve: Serve, client: RpcClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="sqs_rpc")
    poller = serve(queue_url, Calculator(), hooks=Hooks(on_message_handled=_explode))
    assert [client.call(queue_url, {"x": x}) for x in range(3)] == [0, 2, 4]
    wait_for(lambda: caplog.text.count("broken metrics backend on MessageHandled") == 3)
    assert poller.health().healthy
    assert "unexpected error" not in caplog.text  # the hook's error stayed in the hook
    wait_for(lambda: poller.stats().deleted == 3)
