"""sqs_rpc.otel: OpenTelemetry spans for calls and handled messages, in one trace."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="install the otel extra and opentelemetry-sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import sqs_rpc.otel
from sqs_rpc import (
    Hooks,
    IncomingMessage,
    MessageHandled,
    MessageHandler,
    MessagePoller,
    RemoteError,
    RpcClient,
    trace_context,
)
from tests.support.handlers import Echo
from tests.support.helpers import Endpoint, wait_for

Serve = Callable[..., MessagePoller]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Spans(InMemorySpanExporter):
    """The finished spans of a provider that sqs-rpc is instrumented with."""

    def __init__(self) -> None:
        super().__init__()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self))


@pytest.fixture
def spans() -> Iterator[Spans]:
    exporter = Spans()
    sqs_rpc.otel.instrument(tracer_provider=exporter.provider)
    try:
        yield exporter
    finally:
        sqs_rpc.otel.uninstrument()
        exporter.provider.shutdown()


class Handled:
    """A hook that counts handled messages: each message's span has ended when it fires."""

    def __init__(self, expected: int) -> None:
        self._left = expected
        self._lock = threading.Lock()
        self.done = threading.Event()

    def __call__(self, event: MessageHandled) -> None:
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self.done.set()

    def wait(self) -> None:
        assert self.done.wait(10), "the server did not finish its messages"


def _one(spans: Spans, name: str) -> ReadableSpan:
    """The one finished span named ``name``.

    A call's span ends in its future's callbacks, which may run just after the call returned.
    """
    wait_for(lambda: any(s.name == name for s in spans.get_finished_spans()))
    (span,) = [s for s in spans.get_finished_spans() if s.name == name]
    return span


def _queue(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def test_a_call_makes_a_client_span_and_a_child_server_span(
    spans: Spans, endpoint: Endpoint, queue_url: str, serve: Serve
) -> None:
    handled = Handled(1)
    serve(queue_url, Echo(), hooks=Hooks(on_message_handled=handled))
    with RpcClient(sqs_client=endpoint.client()) as client:
        assert client.call(queue_url, "hi", timeout=10) == {"echo": "hi"}
    handled.wait()
    name = _queue(queue_url)
    client_span = _one(spans, f"send {name}")
    server_span = _one(spans, f"process {name}")
    assert client_span.kind is SpanKind.CLIENT
    assert server_span.kind is SpanKind.CONSUMER
    assert client_span.context is not None
    assert server_span.context is not None
    assert server_span.context.trace_id == client_span.context.trace_id
    assert server_span.parent is not None
    assert server_span.parent.span_id == client_span.context.span_id
    assert client_span.parent is None  # no span was current: a new trace
    client_attributes = dict(client_span.attributes or {})
    server_attributes = dict(server_span.attributes or {})
    correlation_id = client_attributes["messaging.message.conversation_id"]
    assert client_attributes == {
        "messaging.system": "aws_sqs",
        "messaging.destination.name": name,
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.message.conversation_id": correlation_id,
        "messaging.message.id": server_attributes["messaging.message.id"],
        "sqs_rpc.outcome": "ok",
    }
    assert server_attributes == {
        "messaging.system": "aws_sqs",
        "messaging.destination.name": name,
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.message.conversation_id": correlation_id,
        "messaging.message.id": client_attributes["messaging.message.id"],
        "sqs_rpc.outcome": "ok",
    }
    assert client_span.status.status_code is StatusCode.UNSET


class Forwarder(MessageHandler):
    """Calls the next queue from inside the handler: that call must join the trace."""

    def __init__(self, client: RpcClient, next_queue: str) -> None:
        self._client = client
        self._next = next_queue

    def handle(self, message: IncomingMessage) -> Any:
        return self._client.call(self._next, message.body, timeout=10)


def test_calls_a_handler_makes_are_children_of_its_span(
    spans: Spans,
    endpoint: Endpoint,
    make_queue: Callable[..., str],
    serve: Serve,
) -> None:
    front, back = make_queue(), make_queue()
    handled = Handled(2)
    hooks = Hooks(on_message_handled=handled)
    serve(back, Echo(), hooks=hooks)
    with RpcClient(sqs_client=endpoint.client()) as inner:
        serve(front, Forwarder(inner, back), hooks=hooks)
        tracer = trace.get_tracer("test", tracer_provider=spans.provider)
        with (
            RpcClient(sqs_client=endpoint.client()) as client,
            tracer.start_as_current_span("request") as root,
        ):
            assert client.call(front, "x", timeout=20) == {"echo": "x"}
        handled.wait()
    by_name = {s.name: s for s in spans.get_finished_spans()}
    chain = [
        f"send {_queue(front)}",
        f"process {_queue(front)}",
        f"send {_queue(back)}",
        f"process {_queue(back)}",
    ]
    # One trace, from the caller's own span down: each span the parent of the next.
    parents = [root.get_span_context(), *(by_name[n].context for n in chain)]
    for parent, name in zip(parents, chain, strict=False):
        child = by_name[name]
        assert child.parent is not None
        assert parent is not None
        assert (child.parent.trace_id, child.parent.span_id) == (parent.trace_id, parent.span_id)


def test_errors_set_the_status_of_both_spans(
    spans: Spans, endpoint: Endpoint, queue_url: str, serve: Serve
) -> None:
    handled = Handled(1)
    serve(queue_url, Echo(), hooks=Hooks(on_message_handled=handled))
    with RpcClient(sqs_client=endpoint.client()) as client, pytest.raises(RemoteError):
        client.call(queue_url, "fail", timeout=10)
    handled.wait()
    name = _queue(queue_url)
    client_span = _one(spans, f"send {name}")
    server_span = _one(spans, f"process {name}")
    assert client_span.status.status_code is StatusCode.ERROR
    assert (client_span.attributes or {})["error.type"] == "RemoteError"
    assert [e.name for e in client_span.events] == ["exception"]
    assert server_span.status.status_code is StatusCode.ERROR
    assert (server_span.attributes or {})["sqs_rpc.outcome"] == "error"


def test_an_explicit_trace_context_is_the_parent_without_a_current_span(
    spans: Spans, endpoint: Endpoint, queue_url: str, serve: Serve
) -> None:
    handled = Handled(1)
    serve(queue_url, Echo(), hooks=Hooks(on_message_handled=handled))
    with RpcClient(sqs_client=endpoint.client()) as client, trace_context(TRACEPARENT):
        client.call(queue_url, "hi", timeout=10)
    handled.wait()
    client_span = _one(spans, f"send {_queue(queue_url)}")
    assert client_span.parent is not None
    assert f"{client_span.parent.trace_id:032x}" == TRACEPARENT.split("-")[1]
    assert f"{client_span.parent.span_id:016x}" == TRACEPARENT.split("-")[2]


def test_publish_makes_a_producer_span(
    spans: Spans, endpoint: Endpoint, queue_url: str, serve: Serve
) -> None:
    handled = Handled(1)
    serve(queue_url, Echo(), hooks=Hooks(on_message_handled=handled))
    with RpcClient(sqs_client=endpoint.client()) as client:
        message_id = client.publish(queue_url, "one-way")
    handled.wait()
    span = _one(spans, f"send {_queue(queue_url)}")
    assert span.kind is SpanKind.PRODUCER
    assert (span.attributes or {})["messaging.message.id"] == message_id
    server_span = _one(spans, f"process {_queue(queue_url)}")
    assert server_span.parent is not None
    assert span.context is not None
    assert server_span.parent.span_id == span.context.span_id


def test_uninstrumented_clients_make_no_spans(
    endpoint: Endpoint, queue_url: str, serve: Serve
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sqs_rpc.otel.instrument(tracer_provider=provider)
    sqs_rpc.otel.uninstrument()
    assert not sqs_rpc.otel.is_instrumented()
    serve(queue_url, Echo())
    with RpcClient(sqs_client=endpoint.client()) as client:
        client.call(queue_url, "hi", timeout=10)
    assert exporter.get_finished_spans() == ()
    provider.shutdown()
