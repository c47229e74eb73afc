"""W3C trace context: from the caller to the handler, on to the handler's own calls, and back."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import (
    AsyncRpcClient,
    ConfigurationError,
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    RpcClient,
    TraceContext,
    current_trace_context,
    trace_context,
)
from sqs_rpc._attributes import MAX_MESSAGE_ATTRIBUTES
from sqs_rpc._outgoing import OutgoingMessage
from sqs_rpc._wire import decode_request, encode_request

Serve = Callable[..., MessagePoller]

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"


class Recorder(MessageHandler):
    def __init__(self) -> None:
        self.seen: list[IncomingMessage] = []
        self.current: list[TraceContext | None] = []
        self.lock = threading.Lock()

    def handle(self, message: IncomingMessage) -> Any:
        with self.lock:
            self.seen.append(message)
            self.current.append(current_trace_context())
        return message.body


# -- TraceContext and trace_context() --------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # uppercase
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # v00 has 4 fields
    ],
)
def test_malformed_traceparent_is_rejected_by_the_sender(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="traceparent"):
        TraceContext(bad)
    assert TraceContext.from_headers({"traceparent": bad}) is None  # a receiver ignores it


def test_future_versions_may_append_fields() -> None:
    assert TraceContext("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what")


def test_headers_round_trip() -> None:
    context = TraceContext(TRACEPARENT, TRACESTATE)
    assert TraceContext.from_headers(context.headers()) == context
    assert TraceContext(TRACEPARENT).headers() == {"traceparent": TRACEPARENT}
    assert TraceContext.from_headers({}) is None


def test_trace_context_accepts_str_mapping_and_none_and_restores() -> None:
    assert current_trace_context() is None
    with trace_context(TRACEPARENT) as outer:
        assert outer == TraceContext(TRACEPARENT)
        assert current_trace_context() == outer
        carrier = {"traceparent": TRACEPARENT, "tracestate": TRACESTATE, "baggage": "k=v"}
        with trace_context(carrier):
            assert current_trace_context() == TraceContext(TRACEPARENT, TRACESTATE)
            with trace_context({}):  # an empty carrier: no active span, no trace context
                assert current_trace_context() is None
        with trace_context(None):
            assert current_trace_context() is None
        assert current_trace_context() == outer
    assert current_trace_context() is None
    with pytest.raises(ConfigurationError, match="not int"), trace_context(7):  # type: ignore[arg-type]
        pass


# -- wire ------------------------------------------------------------------------------------


def _request(trace: TraceContext | None, **attributes: Any) -> OutgoingMessage:
    return encode_request(
        body="1",
        content_type="application/json",
        correlation_id="c-1",
        reply_to="http://sqs/reply",
        deadline_ms=int(time.time() * 1000),
        attributes=attributes,
        trace=trace,
    )


def test_trace_context_travels_as_attributes_within_the_budget() -> None:
    sent = _request(TraceContext(TRACEPARENT, TRACESTATE), a="1", b="2", c="3")
    attrs = sent.attributes
    assert attrs["traceparent"] == {"DataType": "String", "StringValue": TRACEPARENT}
    assert attrs["tracestate"] == {"DataType": "String", "StringValue": TRACESTATE}
    assert len(attrs) == MAX_MESSAGE_ATTRIBUTES  # 5 protocol + 2 trace + 3 user
    received = {"Body": "1", "MessageAttributes": attrs}
    request = decode_request(received)
    assert request.trace == TraceContext(TRACEPARENT, TRACESTATE)
    assert set(request.attributes) == {"a", "b", "c"}


def test_no_trace_context_no_attributes_and_garbage_is_dropped() -> None:
    attrs = dict(_request(None).attributes)
    assert "traceparent" not in attrs
    assert decode_request({"Body": "1", "MessageAttributes": attrs}).trace is None
    attrs["traceparent"] = {"DataType": "String", "StringValue": "garbage"}
    assert decode_request({"Body": "1", "MessageAttributes": attrs}).trace is None


# -- end to end ------------------------------------------------------------------------------


def test_handler_sees_the_callers_trace_context(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    recorder = Recorder()
    serve(queue_url, recorder, concurrency=1)
    with trace_context(TraceContext(TRACEPARENT, TRACESTATE)):
        assert client.call(queue_url, "traced", timeout=20) == "traced"
    assert client.call(queue_url, "untraced", timeout=20) == "untraced"
    traced, untraced = recorder.seen
    assert (traced.traceparent, traced.tracestate) == (TRACEPARENT, TRACESTATE)
    assert traced.trace_headers == {"traceparent": TRACEPARENT, "tracestate": TRACESTATE}
    assert recorder.current[0] == TraceContext(TRACEPARENT, TRACESTATE)
    # The same worker thread handled both: the first message's context did not leak.
    assert untraced.traceparent is None
    assert untraced.trace_headers == {}
    assert recorder.current[1] is None


def test_the_reply_carries_the_trace_context_back(
    sqs: Any, queue_url: str, make_queue: Callable[..., str], serve: Serve
) -> None:
    serve(queue_url, Recorder())
    reply_queue = make_queue(f"sqs-rpc-reply-{uuid.uuid4().hex}")  # the default reply policy
    for correlation_id, trace in (("with", TraceContext(TRACEPARENT, TRACESTATE)), ("w/o", None)):
        request = encode_request(
            body='"x"',
            content_type="application/json",
            correlation_id=correlation_id,
            reply_to=reply_queue,
            deadline_ms=None,
            attributes={},
            trace=trace,
        )
        sqs.send_message(QueueUrl=queue_url, **request.to_send_kwargs())
    replies: dict[str, dict[str, Any]] = {}
    for _ in range(20):
        response = sqs.receive_message(
            QueueUrl=reply_queue,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        )
        for message in response.get("Messages", []):
            attrs = message["MessageAttributes"]
            replies[attrs["CorrelationId"]["StringValue"]] = attrs
        if len(replies) == 2:
            break
    assert replies["with"]["traceparent"]["StringValue"] == TRACEPARENT
    assert replies["with"]["tracestate"]["StringValue"] == TRACESTATE
    assert "traceparent" not in replies["w/o"]


class Relay(MessageHandler):
    """Calls the next service: the trace context follows without any code here."""

    def __init__(self, client: RpcClient, next_queue: str) -> None:
        self.client = client
        self.next_queue = next_queue

    def handle(self, message: IncomingMessage) -> Any:
        return self.client.call(self.next_queue, message.body, timeout=20)


def test_calls_made_by_a_handler_pass_the_trace_context_on(
    sqs: Any, client: RpcClient, make_queue: Callable[..., str], serve: Serve
) -> None:
    front, back = make_queue(), make_queue()
    recorder = Recorder()
    serve(back, recorder)
    with RpcClient(sqs_client=sqs) as relay_client:
        serve(front, Relay(relay_client, back))
        with trace_context(TRACEPARENT):
            assert client.call(front, "hop", timeout=30) == "hop"
        (seen,) = recorder.seen
        assert seen.traceparent == TRACEPARENT


def test_async_calls_carry_the_tasks_trace_context(sqs: Any, queue_url: str, serve: Serve) -> None:
    recorder = Recorder()
    serve(queue_url, recorder)
    other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    async def traced(parent: str) -> Any:
        with trace_context(parent):
            return await client.call(queue_url, parent, timeout=20)

    async def main() -> None:
        await asyncio.gather(traced(TRACEPARENT), traced(other))

    client = AsyncRpcClient(sqs_client=sqs)
    try:
        asyncio.run(main())
    finally:
        asyncio.run(client.aclose())
    assert {(m.body, m.traceparent) for m in recorder.seen} == {
        (TRACEPARENT, TRACEPARENT),
        (other, other),
    }
