"""A reply reaches only the call it answers, even when callers choose and reuse correlation ids.

Two things make a call its own: the server's reply cache keys a request on all of what it asks
(body, content type, attributes, deadline, group and the call's nonce), not its id alone; and
every call carries a random ``SqsRpcNonce`` that the server echoes, so a pending call drops a
reply that answers an earlier call with its id.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from typing import Any

import pytest

from sqs_rpc import (
    DecodeError,
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    RequestMessage,
    RpcClient,
    RpcTimeout,
    S3Offload,
    TraceContext,
)
from sqs_rpc._attributes import (
    MAX_MESSAGE_ATTRIBUTES,
    MAX_MESSAGE_BYTES,
    MAX_USER_ATTRIBUTES,
    NONCE,
    TRACESTATE,
)
from sqs_rpc._client.pending import PendingCalls
from sqs_rpc._outgoing import OutgoingMessage
from sqs_rpc._payload_store import PayloadStore
from sqs_rpc._wire import decode_request, encode_request
from tests.support.helpers import messages_in, wait_for

Serve = Callable[..., MessagePoller]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Tenant(MessageHandler):
    """Answers with the tenant the request names; counts its runs."""

    def __init__(self) -> None:
        self.calls: list[IncomingMessage] = []

    def handle(self, message: IncomingMessage) -> Any:
        self.calls.append(message)
        return {"tenant": message.attributes.get("tenant"), "body": message.body}


def string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def receive_one(sqs: Any, queue_url: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=queue_url, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
            return messages[0]
    pytest.fail(f"no message within {timeout}s")


# -- the server's reply cache ----------------------------------------------------------------


def test_the_same_chosen_id_with_other_attributes_gets_its_own_reply(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    handler = Tenant()
    serve(queue_url, handler)
    for tenant in ("acme", "globex"):
        message = RequestMessage(
            queue_url, "orders", attributes={"tenant": tenant}, correlation_id="order-7"
        )
        assert client.send(message, timeout=10).result(timeout=15)["tenant"] == tenant
    assert len(handler.calls) == 2


def test_a_request_with_other_attributes_is_not_a_duplicate_without_a_nonce(
    sqs: Any, queue_url: str, reply_queue: str, serve: Serve
) -> None:
    # As a client before SqsRpcNonce sends them: same ReplyTo, id and body, another tenant.
    handler = Tenant()
    serve(queue_url, handler)
    tenants = []
    for tenant in ("acme", "globex"):
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody='"orders"',
            MessageAttributes={
                "ReplyTo": string(reply_queue),
                "CorrelationId": string("order-7"),
                "tenant": string(tenant),
            },
        )
        tenants.append(json.loads(receive_one(sqs, reply_queue)["Body"])["tenant"])
    assert tenants == ["acme", "globex"]
    assert len(handler.calls) == 2


def test_a_redelivery_with_its_nonce_is_answered_from_the_cache(
    sqs: Any, queue_url: str, reply_queue: str, serve: Serve
) -> None:
    handler = Tenant()
    poller = serve(queue_url, handler)
    request = {
        "QueueUrl": queue_url,
        "MessageBody": '"orders"',
        "MessageAttributes": {
            "ReplyTo": string(reply_queue),
            "CorrelationId": string("order-7"),
            NONCE: string("n-1"),
            "tenant": string("acme"),
        },
    }
    replies = []
    for _ in range(2):  # the same request twice: a redelivery, or a send retried by botocore
        sqs.send_message(**request)
        replies.append(receive_one(sqs, reply_queue))
    assert len(handler.calls) == 1
    assert poller.stats().duplicates == 1
    assert [reply["MessageAttributes"][NONCE]["StringValue"] for reply in replies] == ["n-1"] * 2


# -- the client: replies for earlier calls with the same id ----------------------------------


class Gated(MessageHandler):
    """Holds each request until the test opens its gate (by body), so replies come late."""

    def __init__(self) -> None:
        self.started: dict[str, threading.Event] = {}
        self.gates: dict[str, threading.Event] = {}
        for name in ("A", "B"):
            self.started[name] = threading.Event()
            self.gates[name] = threading.Event()

    def handle(self, message: IncomingMessage) -> Any:
        self.started[message.body].set()
        self.gates[message.body].wait(30)
        return message.body


@pytest.fixture
def gated() -> Iterator[Gated]:
    handler = Gated()
    yield handler
    for gate in handler.gates.values():
        gate.set()  # never leave a worker blocked


def test_a_late_reply_never_settles_a_newer_call_with_the_same_id(
    sqs: Any, client: RpcClient, queue_url: str, serve: Serve, gated: Gated
) -> None:
    serve(queue_url, gated, concurrency=2)
    # Call A times out while its handler still runs.
    call_a = client.send(RequestMessage(queue_url, "A", correlation_id="order-7"), timeout=2)
    assert gated.started["A"].wait(10)
    with pytest.raises(RpcTimeout):
        call_a.result(timeout=10)
    # Call B reuses the id; A's reply arrives while B waits.
    call_b = client.send(RequestMessage(queue_url, "B", correlation_id="order-7"), timeout=30)
    assert gated.started["B"].wait(10)
    gated.gates["A"].set()
    reply_queue = client.reply_queue_url
    assert reply_queue is not None
    # The request deleted means A's reply was sent; the reply queue empty, that it was read.
    wait_for(lambda: messages_in(sqs, queue_url) == 1)
    wait_for(lambda: messages_in(sqs, reply_queue) == 0)
    assert not call_b.done()
    gated.gates["B"].set()
    assert call_b.result(timeout=15) == "B"


def test_a_reply_carrying_another_calls_nonce_is_dropped(
    sqs: Any, client: RpcClient, queue_url: str
) -> None:
    call = client.send(RequestMessage(queue_url, 1, correlation_id="order-7"), timeout=30)
    reply_queue = client.reply_queue_url
    assert reply_queue is not None
    (request,) = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    nonce = request["MessageAttributes"][NONCE]["StringValue"]
    assert len(nonce) == 32

    def reply(body: str, **extra: dict[str, str]) -> None:
        sqs.send_message(
            QueueUrl=reply_queue,
            MessageBody=body,
            MessageAttributes={
                "CorrelationId": string("order-7"),
                "Status": string("ok"),
                **extra,
            },
        )

    reply('"stale"', **{NONCE: string(uuid.uuid4().hex)})
    wait_for(lambda: messages_in(sqs, reply_queue) == 0)  # read, and dropped
    assert not call.done()
    reply('"mine"', **{NONCE: string(nonce)})
    assert call.result(timeout=15) == "mine"


def test_a_reply_without_a_nonce_settles_a_call_with_a_generated_id(
    sqs: Any, client: RpcClient, queue_url: str
) -> None:
    # A server before SqsRpcNonce: a generated id (128 random bits) is matched alone, as before.
    call = client.send(RequestMessage(queue_url, 1), timeout=30)
    assert client.reply_queue_url is not None
    (request,) = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    sqs.send_message(
        QueueUrl=client.reply_queue_url,
        MessageBody='"old server"',
        MessageAttributes={
            "CorrelationId": request["MessageAttributes"]["CorrelationId"],
            "Status": string("ok"),
        },
    )
    assert call.result(timeout=15) == "old server"


def test_a_reply_without_a_nonce_never_settles_a_call_with_a_chosen_id(
    sqs: Any, client: RpcClient, queue_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # "order-7" can be guessed: whoever can send to the request queue (naming this reply
    # queue) or the reply queue could answer the call with a reply that carries no nonce.
    call = client.send(RequestMessage(queue_url, 1, correlation_id="order-7"), timeout=30)
    reply_queue = client.reply_queue_url
    assert reply_queue is not None
    (request,) = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    for attributes in (
        {},
        {NONCE: request["MessageAttributes"][NONCE]},
    ):
        sqs.send_message(
            QueueUrl=reply_queue,
            MessageBody=json.dumps("mine" if attributes else "forged"),
            MessageAttributes={
                "CorrelationId": string("order-7"),
                "Status": string("ok"),
                **attributes,
            },
        )
        if not attributes:
            wait_for(lambda: messages_in(sqs, reply_queue) == 0)
            assert not call.done()
            assert "upgrade the server" in caplog.text
    assert call.result(timeout=15) == "mine"


# -- the server echoes the nonce on every reply ----------------------------------------------


class Fails(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        raise ValueError("no")


@pytest.mark.parametrize(
    "case",
    [
        pytest.param((Tenant(), None, "ok"), id="ok"),
        pytest.param((Fails(), None, "error"), id="handler-raised"),
        pytest.param((Tenant(), "9" * 400, "error"), id="undecodable"),
    ],
)
def test_every_reply_echoes_the_requests_nonce(
    sqs: Any,
    queue_url: str,
    reply_queue: str,
    serve: Serve,
    case: tuple[MessageHandler, str | None, str],
) -> None:
    handler, deadline, status = case
    serve(queue_url, handler)
    attributes = {
        "ReplyTo": string(reply_queue),
        "CorrelationId": string("c-1"),
        NONCE: string("n-42"),
    }
    if deadline is not None:
        attributes["Deadline"] = string(deadline)
    sqs.send_message(QueueUrl=queue_url, MessageBody="1", MessageAttributes=attributes)
    reply = receive_one(sqs, reply_queue)
    assert reply["MessageAttributes"]["Status"]["StringValue"] == status
    assert reply["MessageAttributes"][NONCE]["StringValue"] == "n-42"


def test_a_nonce_over_64_characters_is_undecodable() -> None:
    message = {
        "Body": "1",
        "MessageAttributes": {"CorrelationId": string("c"), NONCE: string("n" * 65)},
    }
    with pytest.raises(DecodeError, match=NONCE):
        decode_request(message)


# -- the pending map ---------------------------------------------------------------------------


@pytest.fixture
def pending() -> Iterator[PendingCalls]:
    calls = PendingCalls("sqs-rpc-test")
    calls.start()
    yield calls
    assert calls.stop(5)


def test_pop_with_another_calls_nonce_leaves_the_call_waiting(pending: PendingCalls) -> None:
    future: Future[object] = Future()
    pending.add("c", future, 60, nonce="mine")
    assert pending.pop("c", nonce="earlier call's") is None
    assert len(pending) == 1
    assert pending.pop("c", nonce="mine") is future


def test_pop_without_a_nonce_takes_a_call_with_a_generated_id(pending: PendingCalls) -> None:
    future: Future[object] = Future()
    pending.add("c", future, 60, nonce="mine")
    assert pending.pop("c") is future


def test_pop_without_a_nonce_leaves_a_call_with_a_chosen_id(pending: PendingCalls) -> None:
    future: Future[object] = Future()
    pending.add("order-7", future, 60, nonce="mine", nonce_required=True)
    assert pending.pop("order-7") is None
    assert pending.pop("order-7", nonce="mine") is future


# -- the attribute budget ----------------------------------------------------------------------


def _encoded(users: int, **options: Any) -> Mapping[str, Any]:
    sent = encode_request(
        body="1",
        content_type="application/json",
        correlation_id="c",
        reply_to="http://r",
        deadline_ms=int(time.time() * 1000),
        attributes={f"a{i}": "v" for i in range(users)},
        trace=TraceContext(TRACEPARENT, "congo=t61rcWkgMzE"),
        **options,
    )
    return sent.attributes


def test_a_call_with_every_attribute_fits_sqss_ten_by_leaving_out_tracestate() -> None:
    full = _encoded(MAX_USER_ATTRIBUTES, nonce="n")
    assert len(full) == MAX_MESSAGE_ATTRIBUTES
    assert NONCE in full
    assert "traceparent" in full
    assert TRACESTATE not in full  # W3C lets a carrier drop tracestate; never the nonce
    roomy = _encoded(MAX_USER_ATTRIBUTES - 1, nonce="n")
    assert TRACESTATE in roomy
    assert len(roomy) == MAX_MESSAGE_ATTRIBUTES


def test_an_offloaded_call_fits_sqss_ten_by_leaving_out_tracestate() -> None:
    store = PayloadStore(S3Offload(bucket="payloads", threshold="always"))
    message = OutgoingMessage("1", _encoded(MAX_USER_ATTRIBUTES - 1, nonce="n"))
    offloaded = store.outgoing(message, MAX_MESSAGE_BYTES, what="request", upload=False)
    attributes = offloaded.attributes
    assert len(attributes) == MAX_MESSAGE_ATTRIBUTES
    assert {NONCE, "ExtendedPayloadSize", "traceparent"} <= set(attributes)
    assert TRACESTATE not in attributes
