"""Client and server ride through injected faults: tests/support/faultproxy.py sits between them
and the SQS server (whichever the ``endpoint`` fixture points at).

Both sides build their boto3 clients the way sqs-rpc does for users (standard retry mode, five
attempts), so these tests exercise the retry policy users get, not the test fixture's.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import boto3
import pytest
from botocore.config import Config

from sqs_rpc import (
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    RpcClient,
    RpcTimeout,
    SqsError,
    SqsRpcError,
)
from tests.support.faultproxy import Fault, FaultKind, FaultProxy
from tests.support.helpers import Endpoint, messages_in, wait_for

# Short, so that a request whose reply or delete failed comes back quickly.
VISIBILITY = "2"


class Recorder(MessageHandler):
    """Counts executions per correlation id; replies with the body it got."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.executions: Counter[str] = Counter()

    def handle(self, message: IncomingMessage) -> Any:
        with self._lock:
            self.executions[message.correlation_id or ""] += 1
        return {"n": message.body}


@pytest.fixture
def proxy(endpoint: Endpoint) -> Iterator[FaultProxy]:
    with FaultProxy(endpoint.endpoint_url, seed=20261122) as running:
        yield running
    # The proxy's own threads end with it, connection threads included.
    left = [t.name for t in threading.enumerate() if "process_request" in t.name]
    assert not left, left


class Rig:
    """The proxy, and sqs-rpc clients and servers that talk to SQS through it."""

    def __init__(self, proxy: FaultProxy, region_name: str) -> None:
        self.proxy = proxy
        self.session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region_name
        )
        self.pollers: list[MessagePoller] = []

    def serve(self, queue_url: str, handler: MessageHandler, **options: Any) -> MessagePoller:
        poller = MessagePoller(
            queue_url,
            handler,
            session=self.session,
            endpoint_url=self.proxy.endpoint_url,
            wait_time_seconds=1,
            # The request queue's URL names the SQS server, the clients' reply queues the
            # proxy (SQS builds URLs from the Host it was asked on): different endpoints,
            # which the default reply policy would rightly refuse.
            reply_to_allowed=lambda url: "/sqs-rpc-reply-" in url,
            **options,
        )
        poller.start()
        self.pollers.append(poller)
        return poller

    def client(self) -> RpcClient:
        return RpcClient(
            session=self.session, endpoint_url=self.proxy.endpoint_url, default_timeout=30
        )


@pytest.fixture
def rig(proxy: FaultProxy, endpoint: Endpoint) -> Iterator[Rig]:
    """Every poller started through the rig is stopped at teardown."""
    running = Rig(proxy, endpoint.region_name)
    yield running
    for poller in running.pollers:
        poller.stop()


def _no_unexpected_errors(caplog: pytest.LogCaptureFixture) -> None:
    # The server's catch-all logs "unexpected error"; a step that raised logs "step failed"
    # and carries on. Either is allowed only as a logged, recovered event, never silence.
    assert "unexpected error" not in caplog.text


FAULTS: dict[str, Fault] = {
    "500": Fault("500", rate=0.25),
    "503": Fault("503", rate=0.25),
    "throttle": Fault("throttle", rate=0.25),
    "throttle-modeled": Fault("throttle-modeled", rate=0.25),
    "reset-before": Fault("reset-before", rate=0.25),
    "reset-after": Fault("reset-after", rate=0.25),
    "latency": Fault("latency", rate=0.25, delay=0.5),
}


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", list(FAULTS))
def test_calls_ride_through_intermittent_faults(
    kind: FaultKind,
    rig: Rig,
    make_queue: Callable[..., str],
    sqs: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = rig.proxy
    caplog.set_level(logging.WARNING)
    queue_url = make_queue(VisibilityTimeout=VISIBILITY)
    handler = Recorder()
    proxy.set_faults(FAULTS[kind])  # on every operation, both sides, from the start
    rig.serve(queue_url, handler, concurrency=4)
    outcomes: list[Any] = []
    with rig.client() as client:
        futures: list[tuple[int, Future[Any]]] = []
        for i in range(8):
            try:
                futures.append((i, client.call_async(queue_url, i, timeout=30)))
            except SqsError as exc:  # SQS refused the send after botocore's retries
                outcomes.append(exc)
        for i, future in futures:
            try:
                outcomes.append(future.result(timeout=40) == {"n": i})
            except RpcTimeout as exc:  # a sent request was never answered: lost
                pytest.fail(f"call {i} lost under {kind}: {exc}")
        proxy.set_faults()
        # Both sides are still alive: a call after the faults end goes through.
        assert client.call(queue_url, "after", timeout=30) == {"n": "after"}
    assert proxy.injected(), f"no {kind} fault was injected"
    assert outcomes.count(True) >= 6, outcomes  # most calls succeed; none answered wrongly
    assert all(o is True or isinstance(o, SqsError) for o in outcomes), outcomes
    # Nothing is left behind: every request that reached the queue was answered and deleted.
    wait_for(lambda: messages_in(sqs, queue_url) == 0, timeout=30)
    _no_unexpected_errors(caplog)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_persistent_fault_is_retried_at_a_bounded_rate(
    rig: Rig, queue_url: str, sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = rig.proxy
    caplog.set_level(logging.WARNING)
    handler = Recorder()
    # From the start, on both sides: a long poll begun before the fault would still be
    # answered (the reply poller's lasts up to 20 s), and could deliver the call below.
    proxy.set_faults(Fault("503", operations={"ReceiveMessage"}))
    started = time.monotonic()
    # No skew tolerance: the request sent during the fault must count as expired after it.
    poller = rig.serve(queue_url, handler, clock_skew_tolerance=0)
    with rig.client() as client:
        with pytest.raises(RpcTimeout):
            client.call(queue_url, "during", timeout=3)
        # The window is a measurement, not a synchronisation: how often did both receive
        # loops (server and reply poller) hit the failing operation meanwhile?
        threading.Event().wait(3)
        elapsed = time.monotonic() - started
        receives = proxy.requests().get("ReceiveMessage", 0)
        print(f"persistent 503 on ReceiveMessage: {receives} requests in {elapsed:.1f}s")
        assert receives >= 2  # both loops did keep trying
        # Each failed step is botocore's 5 attempts, and the loop backs off between steps
        # (0.1 s doubling to 10 s): about 10 requests a second for both loops in the first
        # seconds, falling after. A hot loop would make hundreds.
        assert receives / elapsed < 25, (receives, elapsed)
        assert "step failed" in caplog.text  # the failures are logged, not silent
        proxy.set_faults()
        # Both loops recover on their own: no restart.
        assert client.call(queue_url, "after", timeout=30) == {"n": "after"}
    # The request sent during the fault was not lost: once the fault ended the server
    # received it, saw its caller's deadline had passed, and deleted it without running it.
    wait_for(lambda: poller.stats().expired == 1, timeout=30)
    assert list(handler.executions.values()) == [1]  # only "after" ran
    wait_for(lambda: messages_in(sqs, queue_url) == 0, timeout=30)
    _no_unexpected_errors(caplog)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_lost_deletes_mean_redelivery_but_one_reply_per_call(
    rig: Rig, make_queue: Callable[..., str], sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = rig.proxy
    caplog.set_level(logging.WARNING)
    queue_url = make_queue(VisibilityTimeout=VISIBILITY)
    handler = Recorder()
    # Every delete fails (server's request deletes and client's reply deletes): SQS delivers
    # requests and replies again. The server answers a redelivered request from its reply
    # cache instead of running the handler again; the caller keeps its one reply.
    proxy.set_faults(Fault("reset-before", operations={"DeleteMessage", "DeleteMessageBatch"}))
    poller = rig.serve(queue_url, handler)
    with rig.client() as client:
        for i in range(3):
            assert client.call(queue_url, i, timeout=30) == {"n": i}
        wait_for(lambda: poller.stats().duplicates >= 1, timeout=30)  # a redelivery came
        assert client.pending_calls == 0
        proxy.set_faults()
        wait_for(lambda: messages_in(sqs, queue_url) == 0, timeout=30)
    assert sorted(handler.executions.values()) == [1, 1, 1]  # each ran once
    _no_unexpected_errors(caplog)


@pytest.mark.timeout(60)
def test_a_slow_send_still_fails_within_the_call_timeout(rig: Rig, queue_url: str) -> None:
    proxy = rig.proxy
    proxy.set_faults(Fault("latency", operations={"SendMessageBatch"}, delay=6))
    with rig.client() as client:
        started = time.monotonic()
        with pytest.raises(RpcTimeout):
            client.call(queue_url, "slow", timeout=2)
        elapsed = time.monotonic() - started
        proxy.set_faults()
    assert elapsed < 2 + 3, elapsed


def test_the_proxy_answers_throttling_as_botocore_expects(rig: Rig, queue_url: str) -> None:
    # No retries here: the error as botocore parses it, once. The standard retry mode retries
    # both codes as throttling (botocore.retries.standard.ThrottledRetryableChecker).
    proxy = rig.proxy
    raw = rig.session.client(
        "sqs", endpoint_url=proxy.endpoint_url, config=Config(retries={"max_attempts": 1})
    )
    shapes: list[tuple[FaultKind, str]] = [
        ("throttle", "ThrottlingException"),
        ("throttle-modeled", "RequestThrottled"),
    ]
    for kind, code in shapes:
        proxy.set_faults(Fault(kind, operations={"GetQueueAttributes"}))
        with pytest.raises(raw.exceptions.ClientError) as info:
            raw.get_queue_attributes(QueueUrl=queue_url)
        assert info.value.response["Error"]["Code"] == code
    proxy.set_faults()
    assert raw.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]


def test_faults_are_reproducible_per_operation(endpoint: Endpoint, queue_url: str) -> None:
    def pattern(seed: int, *, interleaved: bool = False) -> list[bool]:
        """Which of 40 SendMessage requests through the proxy got the injected 503."""
        with FaultProxy(endpoint.endpoint_url, seed=seed) as proxy:
            proxy.set_faults(Fault("503", rate=0.5))
            once = Config(retries={"total_max_attempts": 1})  # no retry: each fault shows
            raw = endpoint.session().client("sqs", endpoint_url=proxy.endpoint_url, config=once)
            codes = []
            for i in range(40):
                if interleaved:  # another operation's requests, faulted or not, in between
                    with contextlib.suppress(raw.exceptions.ClientError):
                        raw.get_queue_attributes(QueueUrl=queue_url)
                try:
                    raw.send_message(QueueUrl=queue_url, MessageBody=str(i))
                    codes.append("")
                except raw.exceptions.ClientError as exc:
                    codes.append(exc.response["Error"]["Code"])
            assert set(codes) <= {"", "ServiceUnavailable"}
            faulted = [code != "" for code in codes]
            assert proxy.injected()[("SendMessage", "503")] == sum(faulted)
            return faulted

    first = pattern(1)
    assert 0 < sum(first) < 40
    assert pattern(1) == first
    assert pattern(1, interleaved=True) == first  # each operation draws on its own
    assert pattern(2) != first


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="rate"):
        Fault("503", rate=1.5)
    with pytest.raises(ValueError, match="delay"):
        Fault("latency")
    with pytest.raises(ValueError, match="kind"):
        Fault("teapot")  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_outage_without_state_loss_loses_no_call(
    rig: Rig, make_queue: Callable[..., str], sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # SQS unreachable for a window (every connection reset, every operation), under load;
    # unlike a restart (tests/system/test_process_faults.py), its queues and messages survive.
    proxy = rig.proxy
    caplog.set_level(logging.WARNING)
    queue_url = make_queue(VisibilityTimeout=VISIBILITY)
    handler = Recorder()
    rig.serve(queue_url, handler, concurrency=4)
    stop = threading.Event()
    outcomes: list[str] = []
    lock = threading.Lock()

    def caller(client: RpcClient, index: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            body = f"{index}-{n}"
            try:
                ok = client.call(queue_url, body, timeout=30) == {"n": body}
                outcome = "ok" if ok else "wrong"
            except SqsRpcError as exc:
                outcome = type(exc).__name__
            with lock:
                outcomes.append(outcome)
            if outcome != "ok":
                stop.wait(0.2)  # retried a little later, as callers do

    with rig.client() as client:
        threads = [threading.Thread(target=caller, args=(client, i)) for i in range(3)]
        for thread in threads:
            thread.start()
        wait_for(lambda: outcomes.count("ok") >= 5, timeout=30)
        reply_queue = client.reply_queue_url
        proxy.reset_counts()
        proxy.set_faults(Fault("reset-before"))
        threading.Event().wait(5)  # the outage: a measurement window, not a synchronisation
        proxy.set_faults()
        during = proxy.requests()
        before = outcomes.count("ok")
        wait_for(lambda: outcomes.count("ok") >= before + 5, timeout=60)  # calls succeed again
        stop.set()
        for thread in threads:
            thread.join(45)
            assert not thread.is_alive()
        assert client.reply_queue_url == reply_queue  # the same queue: nothing was lost
    print(f"5 s outage: {during} requests; outcomes {Counter(outcomes)}")
    # A call whose request reached SQS got its reply; a call whose send failed raised
    # SqsError at once. No RpcTimeout (a lost call), no ReplyQueueLost, no wrong reply.
    assert set(outcomes) <= {"ok", "SqsError"}, Counter(outcomes)
    assert during.get("ReceiveMessage", 0) < 80, during  # both receive loops backed off
    wait_for(lambda: messages_in(sqs, queue_url) == 0, timeout=30)
    _no_unexpected_errors(caplog)
