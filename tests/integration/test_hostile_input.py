"""Text and numbers a sender controls: lone surrogates, SQS-invalid characters, absurd deadlines
and timeouts, attribute names that are not names. Each ends in a typed error, on the side that
can do something about it, before anything is sent; a server runs a handler at most once for
it and tells the caller why.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import (
    BytesCodec,
    ConfigurationError,
    DecodeError,
    EncodeError,
    IncomingMessage,
    JsonCodec,
    MessageHandler,
    MessagePoller,
    RemoteError,
    RequestMessage,
    RpcClient,
    TextCodec,
    TraceContext,
)
from sqs_rpc._error_info import ErrorInfo
from sqs_rpc._wire import decode_request
from tests.support.helpers import messages_in, wait_for

Serve = Callable[..., MessagePoller]
LONE_SURROGATE = "\ud800"


class Recording(MessageHandler):
    """Records every run; returns ``chr(codepoint)`` or raises with it, as the body asks."""

    def __init__(self) -> None:
        self.calls: list[IncomingMessage] = []

    def handle(self, message: IncomingMessage) -> Any:
        self.calls.append(message)
        body = message.body
        if isinstance(body, dict) and "return" in body:
            return chr(body["return"])
        if isinstance(body, dict) and "raise" in body:
            raise ValueError(f"bad input {chr(body['raise'])}")
        return body


def string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def send_raw(
    sqs: Any, queue_url: str, reply_to: str, body: str, **attributes: dict[str, str]
) -> str:
    """Send a request the way any sender may: every byte chosen by the test."""
    correlation_id = uuid.uuid4().hex
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageAttributes={
            "ReplyTo": string(reply_to),
            "CorrelationId": string(correlation_id),
            **attributes,
        },
    )
    return correlation_id


def one_reply(sqs: Any, reply_queue: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=reply_queue, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if messages:
            sqs.delete_message(QueueUrl=reply_queue, ReceiptHandle=messages[0]["ReceiptHandle"])
            return messages[0]
    pytest.fail(f"no reply within {timeout}s")


def error_of(reply: Any) -> ErrorInfo:
    assert reply["MessageAttributes"]["Status"]["StringValue"] == "error"
    return ErrorInfo.from_body(reply["Body"])


# -- lone surrogates and other text SQS refuses ------------------------------------------------


def test_a_lone_surrogate_in_a_request_is_undecodable_and_never_runs(
    sqs: Any, queue_url: str, reply_queue: str, serve: Serve
) -> None:
    handler = Recording()
    poller = serve(queue_url, handler)
    # ASCII JSON, valid on AWS: json.loads makes it a str no UTF-8 encoder accepts.
    send_raw(sqs, queue_url, reply_queue, json.dumps(LONE_SURROGATE))
    error = error_of(one_reply(sqs, reply_queue))
    assert error.type == "DecodeError"
    assert "surrogate" in error.message
    wait_for(lambda: poller.stats().undecodable == 1)
    assert handler.calls == []


def test_a_return_value_with_a_lone_surrogate_is_an_error_reply_after_one_run(
    client: RpcClient, sqs: Any, queue_url: str, serve: Serve
) -> None:
    handler = Recording()
    serve(queue_url, handler)
    with pytest.raises(RemoteError) as info:
        client.call(queue_url, {"return": 0xD800}, timeout=10)
    assert info.value.error_type == "EncodeError"
    assert "surrogate" in info.value.remote_message
    wait_for(lambda: messages_in(sqs, queue_url) == 0)  # answered: deleted, not retried
    assert len(handler.calls) == 1


def test_an_error_message_with_a_lone_surrogate_reaches_the_caller_escaped(
    client: RpcClient, sqs: Any, queue_url: str, serve: Serve
) -> None:
    handler = Recording()
    serve(queue_url, handler)
    with pytest.raises(RemoteError) as info:
        client.call(queue_url, {"raise": 0xDC00}, timeout=10)
    assert info.value.error_type == "ValueError"
    assert info.value.remote_message == "bad input \\udc00"
    wait_for(lambda: messages_in(sqs, queue_url) == 0)
    assert len(handler.calls) == 1


def test_a_noncharacter_sqs_refuses_travels_escaped_in_json(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    # U+FFFF is Unicode, but not text SQS accepts in a body; JSON can escape it losslessly.
    serve(queue_url, Recording())
    assert client.call(queue_url, {"text": "a\uffffb"}, timeout=10) == {"text": "a\uffffb"}
    assert client.call(queue_url, {"return": 0xFFFE}, timeout=10) == "\ufffe"


@pytest.mark.parametrize(
    "payload", [LONE_SURROGATE, {"k": ["x" + LONE_SURROGATE]}, {LONE_SURROGATE: 1}]
)
def test_a_payload_with_a_lone_surrogate_raises_encode_error_before_sending(
    client: RpcClient, queue_url: str, payload: Any
) -> None:
    with pytest.raises(EncodeError, match="surrogate"):
        client.call(queue_url, payload, timeout=5)
    assert client.reply_queue_url is None  # nothing was created, nothing sent


@pytest.mark.parametrize("text", [LONE_SURROGATE, "a\uffffb", "bell\x07"])
def test_text_codec_refuses_text_sqs_refuses(text: str) -> None:
    with pytest.raises(EncodeError, match="TextCodec"):
        TextCodec().encode(text)


def test_a_codec_returning_text_sqs_refuses_raises_encode_error(sqs: Any, queue_url: str) -> None:
    class Raw:
        content_type = "text/x-raw"

        def encode(self, value: Any) -> str:
            return str(value)

        def decode(self, data: str) -> Any:
            return data

    with RpcClient(sqs_client=sqs, codec=Raw()) as client, pytest.raises(EncodeError, match="SQS"):
        client.call(queue_url, "nul\x00", timeout=5)


@pytest.mark.parametrize(
    "text",
    [json.dumps(LONE_SURROGATE), '{"a": "\\udfff"}', '["\\ud83d"]', '{"\\udc00": 1}'],
)
def test_json_codec_refuses_to_decode_a_lone_surrogate(text: str) -> None:
    with pytest.raises(DecodeError, match="surrogate"):
        JsonCodec().decode(text)


def test_json_codec_still_decodes_escaped_surrogate_pairs() -> None:
    # Escaped pairs are how ASCII-only JSON writers (Python's default) send astral characters.
    assert JsonCodec().decode(json.dumps({"emoji": "\U0001f600"})) == {"emoji": "\U0001f600"}


def test_bytes_codec_is_safe_for_any_bytes() -> None:
    data = "\ud800".encode("utf-8", "surrogatepass") + bytes(range(256))
    assert BytesCodec().decode(BytesCodec().encode(data)) == data


def test_error_documents_are_always_text_sqs_accepts() -> None:
    body = ErrorInfo(f"T{LONE_SURROGATE}", f"m\ufffe{LONE_SURROGATE}", {"x": "\udfff"}).to_body()
    body.encode("utf-8")  # no lone surrogate left
    assert "\ufffe" not in body
    info = ErrorInfo.from_body(body)
    assert (info.type, info.message, info.details) == (
        "T\\ud800",
        "m\ufffe\\ud800",
        {"x": "\\udfff"},
    )


@pytest.mark.parametrize(
    ("attributes", "match"),
    [
        ({"tenant": LONE_SURROGATE}, "tenant"),
        ({"tenant": "a\uffff"}, "tenant"),
    ],
)
def test_attribute_values_sqs_refuses_raise_configuration_error(
    client: RpcClient, queue_url: str, attributes: dict[str, str], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        client.call(queue_url, 1, timeout=5, attributes=attributes)
    assert client.reply_queue_url is None


@pytest.mark.parametrize("tracestate", [f"a={LONE_SURROGATE}", "a=\x00", "a=" + "b" * 511])
def test_a_tracestate_sqs_or_w3c_refuses_raises_configuration_error(tracestate: str) -> None:
    with pytest.raises(ConfigurationError, match="tracestate"):
        TraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate)


def test_a_correlation_id_sqs_refuses_raises_configuration_error(
    client: RpcClient, queue_url: str
) -> None:
    with pytest.raises(ConfigurationError, match="correlation_id"):
        client.send(RequestMessage(queue_url, 1, correlation_id="id" + LONE_SURROGATE))
    assert client.reply_queue_url is None


# -- hostile numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "deadline",
    [
        pytest.param("9" * 400, id="400-digits"),  # int() parses it; as seconds, no float holds it
        pytest.param("-" + "9" * 400, id="minus-400-digits"),
        pytest.param(str(int(time.time())), id="seconds"),  # 1970, in milliseconds
        pytest.param(str(int(time.time() * 1_000_000)), id="microseconds"),  # year 57,000
        pytest.param("1.5e12", id="exponent"),
        pytest.param(" 1767225610000", id="space"),
    ],
)
def test_an_absurd_deadline_is_undecodable_with_an_error_reply(
    sqs: Any, queue_url: str, reply_queue: str, serve: Serve, deadline: str
) -> None:
    handler = Recording()
    poller = serve(queue_url, handler)
    send_raw(
        sqs, queue_url, reply_queue, "1", Deadline={"DataType": "String", "StringValue": deadline}
    )
    error = error_of(one_reply(sqs, reply_queue))
    assert error.type == "DecodeError"
    assert "Deadline" in error.message
    wait_for(lambda: poller.stats().undecodable == 1)
    assert handler.calls == []


def test_decode_request_bounds_the_deadline_around_the_given_clock() -> None:
    now_ms = 1_767_225_600_000
    year_ms = 366 * 86_400_000

    def message(deadline: int) -> dict[str, Any]:
        return {
            "Body": "1",
            "MessageAttributes": {"Deadline": {"DataType": "Number", "StringValue": str(deadline)}},
        }

    for deadline in (now_ms - year_ms, now_ms, now_ms + year_ms):
        assert decode_request(message(deadline), now_ms=now_ms).deadline_ms == deadline
    for deadline in (now_ms - year_ms - 1, now_ms + year_ms + 1):
        with pytest.raises(DecodeError, match="Deadline"):
            decode_request(message(deadline), now_ms=now_ms)


@pytest.mark.parametrize("timeout", [1e13, 43_200.001, float("inf"), 0, -1, "5"])
def test_an_absurd_call_timeout_raises_configuration_error_before_sending(
    client: RpcClient, queue_url: str, timeout: Any
) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        client.call(queue_url, 1, timeout=timeout)
    with pytest.raises(ConfigurationError, match="timeout"):
        client.send(RequestMessage(queue_url, 1), timeout=timeout)
    assert client.reply_queue_url is None
    assert client.stats().calls == 0


def test_the_longest_timeout_is_accepted(client: RpcClient, queue_url: str, serve: Serve) -> None:
    serve(queue_url, Recording())
    assert client.call(queue_url, 7, timeout=43_200) == 7


def test_an_absurd_default_timeout_raises_configuration_error(sqs: Any) -> None:
    with pytest.raises(ConfigurationError, match="default_timeout"):
        RpcClient(sqs_client=sqs, default_timeout=1e13)


@pytest.mark.parametrize(
    ("attributes", "match"),
    [
        ({1: "x"}, "1"),
        ({None: "x"}, "None"),
        ({"a b": "x"}, "a b"),
        ({"": "x"}, "''"),
        ({".tenant": "x"}, ".tenant"),
        ({"ten..ant": "x"}, "ten..ant"),
        ({"t" * 257: "x"}, "256"),
        ([("tenant", "x")], "mapping"),
    ],
)
def test_attribute_names_sqs_refuses_raise_configuration_error(
    client: RpcClient, queue_url: str, attributes: Any, match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        client.call(queue_url, 1, timeout=5, attributes=attributes)
    assert client.reply_queue_url is None
