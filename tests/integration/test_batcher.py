"""The batcher coalesces concurrent sends and deletes, over HTTP against the test server."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import ClientClosedError, RequestCounter, SqsError
from sqs_rpc._batcher import MAX_BATCH_BYTES, Batcher
from sqs_rpc._outgoing import OutgoingMessage


def _message(body: str) -> OutgoingMessage:
    return OutgoingMessage(body)


def _drain(
    sqs: Any, queue_url: str, expected: int, *, delete: bool = False
) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    for _ in range(50):
        if len(received) >= expected:
            break
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        # A FIFO group stays locked while a message of it is in flight, and SQS may hand out
        # one message of a group per receive (fauxqs does; AWS may): drain FIFO by deleting.
        for message in messages if delete else ():
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        received += messages
    return received


def test_a_lone_send_goes_at_once_in_one_request(sqs: Any, queue_url: str) -> None:
    counter = RequestCounter.attach(sqs)
    batcher = Batcher(sqs, name="sqs-rpc-test")
    try:
        message_id = batcher.send(queue_url, _message("one")).result(timeout=10)
    finally:
        batcher.stop()
    assert message_id
    assert counter.snapshot() == {"SendMessageBatch": 1}


def test_concurrent_sends_share_batches(sqs: Any, queue_url: str) -> None:
    counter = RequestCounter.attach(sqs)
    batcher = Batcher(sqs, name="sqs-rpc-test", workers=1)
    start = threading.Barrier(40)
    ids: list[str] = []
    lock = threading.Lock()

    def send(i: int) -> None:
        start.wait()
        message_id = batcher.send(queue_url, _message(str(i))).result(timeout=30)
        with lock:
            ids.append(message_id)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    batcher.stop()
    assert len(set(ids)) == 40
    assert 4 <= counter.snapshot()["SendMessageBatch"] < 40
    bodies = sorted(int(m["Body"]) for m in _drain(sqs, queue_url, 40))
    assert bodies == list(range(40))


def waiting_for_company(sqs: Any) -> Batcher:
    """A batcher whose entries wait for company until close(), which sends them together.

    Its owner is always busy and no round trip is measured yet, so a send lingers up to the
    hour-long ``send_linger`` and a delete up to its hour-long ``delete_delay``: nothing goes
    out before close() unless a whole batch (10 entries, or 1 MiB) is waiting.
    """
    return Batcher(
        sqs,
        name="sqs-rpc-test",
        workers=1,
        send_linger=3600,
        delete_delay=3600,
        busy=lambda: True,
    )


def test_batches_respect_the_byte_limit(sqs: Any, make_queue: Callable[..., str]) -> None:
    queue_url = make_queue(MaximumMessageSize=str(MAX_BATCH_BYTES))
    counter = RequestCounter.attach(sqs)
    batcher = waiting_for_company(sqs)
    body = "x" * 400_000
    try:
        # The three wait for each other: together (1.2 MB) they are more than one batch may
        # hold, so they go at once, and the batcher must split them.
        futures = [batcher.send(queue_url, _message(body)) for _ in range(3)]
    finally:
        batcher.stop()
    for future in futures:
        assert future.result(timeout=0)
    # 3 x 400 kB cannot share one 1 MiB batch: two requests at least.
    assert counter.snapshot()["SendMessageBatch"] >= 2


def test_an_invalid_entry_does_not_fail_its_batch(sqs: Any, make_queue: Callable[..., str]) -> None:
    fifo = make_queue(
        f"test-{uuid.uuid4().hex[:12]}.fifo", FifoQueue="true", ContentBasedDeduplication="true"
    )
    batcher = waiting_for_company(sqs)
    try:
        # All three in one batch, which SQS rejects as a whole.
        good = batcher.send(fifo, OutgoingMessage("ok", group_id="g"))
        bad = batcher.send(fifo, OutgoingMessage("no group id"))
        also_good = batcher.send(fifo, OutgoingMessage("ok too", group_id="g"))
    finally:
        batcher.stop()
    assert good.result(timeout=0)
    assert also_good.result(timeout=0)
    with pytest.raises(SqsError, match="MessageGroupId"):
        bad.result(timeout=0)
    bodies = [m["Body"] for m in _drain(sqs, fifo, 2, delete=True)]
    assert bodies == ["ok", "ok too"]  # order within the group kept


@pytest.mark.known_deviation(
    "fauxqs", reason="accepts any receipt handle; AWS answers ReceiptHandleIsInvalid"
)
def test_a_failed_entry_fails_alone(sqs: Any, queue_url: str) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody="x")
    (message,) = _drain(sqs, queue_url, 1)
    batcher = waiting_for_company(sqs)
    try:
        good = batcher.delete(queue_url, message["ReceiptHandle"])
        bad = batcher.delete(queue_url, "not-a-receipt-handle")
    finally:
        batcher.stop()  # sends both in one batch
    assert good.result(timeout=0) is None
    with pytest.raises(SqsError, match="ReceiptHandleIsInvalid"):
        bad.result(timeout=0)


def test_deletes_are_batched(sqs: Any, queue_url: str) -> None:
    for i in range(10):
        sqs.send_message(QueueUrl=queue_url, MessageBody=str(i))
    received = _drain(sqs, queue_url, 10)
    counter = RequestCounter.attach(sqs)
    batcher = waiting_for_company(sqs)
    try:
        # The tenth makes a whole batch, which goes at once: no need to wait for close().
        futures = [batcher.delete(queue_url, m["ReceiptHandle"]) for m in received]
        for future in futures:
            assert future.result(timeout=10) is None
    finally:
        batcher.stop()
    assert counter.snapshot() == {"DeleteMessageBatch": 1}


def test_stop_flushes_then_refuses(sqs: Any, queue_url: str) -> None:
    batcher = Batcher(sqs, name="sqs-rpc-test")
    future = batcher.send(queue_url, _message("last"))
    batcher.stop()
    assert future.result(timeout=0)  # already sent by stop()
    with pytest.raises(ClientClosedError):
        batcher.send(queue_url, _message("late"))
    batcher.stop()  # idempotent


def test_deletes_wait_for_company_up_to_their_delay(sqs: Any, queue_url: str) -> None:
    for i in range(3):
        sqs.send_message(QueueUrl=queue_url, MessageBody=str(i))
    received = _drain(sqs, queue_url, 3)
    counter = RequestCounter.attach(sqs)
    # A delay far longer than handing in three deletes takes, even on a loaded machine.
    batcher = Batcher(sqs, name="sqs-rpc-test", delete_delay=3.0)
    try:
        futures = [batcher.delete(queue_url, m["ReceiptHandle"]) for m in received]
        for future in futures:
            assert future.result(timeout=20) is None  # due after the delay, not at stop()
    finally:
        batcher.stop()
    assert counter.snapshot() == {"DeleteMessageBatch": 1}


def test_stop_sends_delayed_deletes_at_once(sqs: Any, queue_url: str) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody="x")
    (message,) = _drain(sqs, queue_url, 1)
    batcher = Batcher(sqs, name="sqs-rpc-test", delete_delay=3600)
    future = batcher.delete(queue_url, message["ReceiptHandle"])
    batcher.stop()
    assert future.result(timeout=0) is None


def test_sends_linger_only_while_the_owner_is_busy(sqs: Any, queue_url: str) -> None:
    counter = RequestCounter.attach(sqs)
    busy = threading.Event()
    busy.set()
    batcher = Batcher(sqs, name="sqs-rpc-test", send_linger=3600, busy=busy.is_set)
    try:
        # Busy, and no round trip measured yet: sends wait for company, up to the linger.
        futures = [batcher.send(queue_url, _message(str(i))) for i in range(3)]
        assert not any(f.done() for f in futures)
        busy.clear()
        # Not busy: a lone send goes at once (waiting out the linger would time this out),
        # and takes the three waiting ones with it.
        assert batcher.send(queue_url, _message("alone")).result(timeout=20)
        assert all(f.result(timeout=20) for f in futures)
    finally:
        batcher.stop()
    assert counter.snapshot() == {"SendMessageBatch": 1}


def test_a_busy_send_lingers_no_longer_than_the_last_round_trip(sqs: Any, queue_url: str) -> None:
    busy = threading.Event()
    batcher = Batcher(sqs, name="sqs-rpc-test", send_linger=3600, busy=busy.is_set)
    try:
        assert batcher.send(queue_url, _message("first")).result(timeout=20)  # a round trip
        busy.set()
        # Busy, but the last SendMessageBatch took far less than the hour-long linger: the
        # send waits about that long for company, then goes (an hour's wait would time out).
        assert batcher.send(queue_url, _message("second")).result(timeout=20)
    finally:
        batcher.stop()


def test_an_inline_send_goes_on_the_callers_thread_only_when_nothing_else_is_going(
    sqs: Any, queue_url: str
) -> None:
    counter = RequestCounter.attach(sqs)
    idle = Batcher(sqs, name="sqs-rpc-test", send_linger=3600, busy=lambda: False)
    try:
        sent = idle.send(queue_url, _message("idle"), inline=True)
        assert sent.done()  # sent before send() returned: no flusher thread involved
        assert sent.result(timeout=0)
    finally:
        idle.stop()
    busy = Batcher(sqs, name="sqs-rpc-test", send_linger=3600, busy=lambda: True)
    try:
        # The owner is busy: the send waits for company like any other (no round trip
        # measured yet, so up to the linger), instead of going alone on this thread.
        waiting = busy.send(queue_url, _message("busy"), inline=True)
        assert not waiting.done()
    finally:
        busy.stop()  # sends what waits
    assert waiting.result(timeout=0)
    assert counter.snapshot() == {"SendMessageBatch": 2}
    assert len(_drain(sqs, queue_url, 2)) == 2


class _InFlight:
    """Holds each SendMessageBatch of a boto3 client in botocore's ``before-send`` until
    released, and records how many were on the wire at once (a real request, held)."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.changed = threading.Condition(self._lock)
        self.release = threading.Event()

    def __enter__(self) -> _InFlight:
        self._sqs.meta.events.register("before-send.sqs.SendMessageBatch", self._before)
        self._sqs.meta.events.register("after-call.sqs.SendMessageBatch", self._after)
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self._sqs.meta.events.unregister("before-send.sqs.SendMessageBatch", self._before)
        self._sqs.meta.events.unregister("after-call.sqs.SendMessageBatch", self._after)

    def _before(self, **_: Any) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.changed.notify_all()
        self.release.wait(30)

    def _after(self, **_: Any) -> None:
        with self._lock:
            self.now -= 1
            self.changed.notify_all()

    def wait_for(self, in_flight: int, timeout: float) -> bool:
        with self._lock:
            return self.changed.wait_for(lambda: self.now >= in_flight, timeout)


def test_a_full_batch_behind_one_in_flight_goes_in_parallel(sqs: Any, queue_url: str) -> None:
    counter = RequestCounter.attach(sqs)
    batcher = Batcher(sqs, name="sqs-rpc-test", send_linger=3600, busy=lambda: True)
    try:
        with _InFlight(sqs) as wire:
            first = [batcher.send(queue_url, _message(f"a{i}")) for i in range(10)]
            assert wire.wait_for(1, 10)  # a whole batch goes at once, linger or not
            # Behind it, a partial batch waits for it to return...
            waiting = batcher.send(queue_url, _message("b0"))
            # ...until it fills: then a second request goes while the first is on the wire.
            second = [batcher.send(queue_url, _message(f"b{i}")) for i in range(1, 10)]
            assert wire.wait_for(2, 10)
            assert not waiting.done()
            wire.release.set()
            for future in [*first, waiting, *second]:
                assert future.result(timeout=10)
    finally:
        batcher.stop()
    assert counter.snapshot() == {"SendMessageBatch": 2}
    assert wire.most == 2


def test_no_more_than_two_batches_of_a_queue_are_in_flight(sqs: Any, queue_url: str) -> None:
    batcher = Batcher(sqs, name="sqs-rpc-test", workers=3, send_linger=3600, busy=lambda: True)
    try:
        with _InFlight(sqs) as wire:
            futures = [batcher.send(queue_url, _message(str(i))) for i in range(30)]
            assert wire.wait_for(2, 10)
            # A third whole batch waits, though a third flusher is idle: it must not start.
            assert not wire.wait_for(3, 1.0)
            wire.release.set()
            assert all(future.result(timeout=10) for future in futures)
    finally:
        batcher.stop()
    assert wire.most == 2
    assert len(_drain(sqs, queue_url, 30)) == 30


def test_a_lone_send_after_a_busy_spell_still_goes_at_once(
    sqs: Any, queue_url: str, make_queue: Callable[..., str]
) -> None:
    # A flusher asleep until a later deadline must still be woken for a send due now.
    busy = [True]
    counter = RequestCounter.attach(sqs)
    batcher = Batcher(sqs, name="sqs-rpc-test", send_linger=3600, busy=lambda: busy[0])
    try:
        lingering = batcher.send(queue_url, _message("lingers"))  # waits up to the hour
        busy[0] = False
        assert batcher.send(make_queue(), _message("at once")).result(timeout=10)
        # No longer busy: the lingering one is due too, and went (or goes) with no wait.
        assert lingering.result(timeout=10)
    finally:
        batcher.stop()
    assert counter.snapshot()["SendMessageBatch"] == 2


def test_stop_returns_once_an_inline_send_in_flight_returns(sqs: Any, queue_url: str) -> None:
    batcher = Batcher(sqs, name="sqs-rpc-test", send_linger=3600, busy=lambda: False)
    sent: list[Any] = []
    with _InFlight(sqs) as wire:
        sender = threading.Thread(
            target=lambda: sent.append(batcher.send(queue_url, _message("x"), inline=True))
        )
        sender.start()
        assert wire.wait_for(1, 10)  # on the wire, on the sender's own thread
        stopped: list[bool] = []
        stopper = threading.Thread(target=lambda: stopped.append(batcher.stop(60)))
        stopper.start()
        wire.release.set()
        sender.join(10)
        # Nothing is left once the inline send returns: stop() must see it then, not at 60 s.
        stopper.join(20)
    assert stopped == [True]
    assert sent[0].result(timeout=0)
