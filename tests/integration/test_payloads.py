"""Payloads end to end: raw text and bytes codecs, and the message size limit on both sides."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from sqs_rpc import (
    MAX_MESSAGE_BYTES,
    BytesCodec,
    ConfigurationError,
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    PayloadTooLarge,
    RemoteError,
    RequestCounter,
    RpcClient,
    TextCodec,
)
from sqs_rpc._outgoing import OutgoingMessage
from sqs_rpc._wire import encode_request

Serve = Callable[..., MessagePoller]


class Reverse(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        return message.body[::-1]


class Big(MessageHandler):
    """Replies with as many characters as the request asks for."""

    def handle(self, message: IncomingMessage) -> Any:
        return "x" * int(message.body["size"])


def test_text_codec_round_trip(sqs: Any, queue_url: str, serve: Serve) -> None:
    serve(queue_url, Reverse(), codec=TextCodec())
    with RpcClient(sqs_client=sqs, codec=TextCodec()) as client:
        assert client.call(queue_url, "héllo, {not json", timeout=20) == "nosj ton{ ,olléh"


def test_bytes_codec_round_trip(sqs: Any, queue_url: str, serve: Serve) -> None:
    serve(queue_url, Reverse(), codec=BytesCodec())
    data = bytes(range(256))
    with RpcClient(sqs_client=sqs, codec=BytesCodec()) as client:
        assert client.call(queue_url, data, timeout=20) == data[::-1]


def test_codec_mismatch_is_reported_to_the_caller(sqs: Any, queue_url: str, serve: Serve) -> None:
    serve(queue_url, Reverse(), codec=BytesCodec())
    with (
        RpcClient(sqs_client=sqs, codec=TextCodec()) as client,
        pytest.raises(RemoteError, match="base64") as info,
    ):
        client.call(queue_url, "text", timeout=20)
    assert info.value.error_type == "DecodeError"


def test_oversized_request_is_refused_before_any_sqs_request(sqs: Any, queue_url: str) -> None:
    counter = RequestCounter.attach(sqs)
    with RpcClient(sqs_client=sqs) as client:
        with pytest.raises(PayloadTooLarge, match="1,048,576") as info:
            client.call(queue_url, "x" * MAX_MESSAGE_BYTES, timeout=5)
        assert info.value.limit == MAX_MESSAGE_BYTES
        assert info.value.size > MAX_MESSAGE_BYTES
        with pytest.raises(PayloadTooLarge):
            client.publish(queue_url, "x" * MAX_MESSAGE_BYTES)
        assert client.reply_queue_url is None  # no reply queue was created for it
        assert client.pending_calls == 0
    assert counter.total() == 0


def test_the_limit_is_a_setting_and_counts_attributes(sqs: Any, queue_url: str) -> None:
    with RpcClient(sqs_client=sqs, max_message_bytes=2048) as client:
        # A one-way message: body + CorrelationId + ContentType + SqsRpcVersion + Tenant.
        room = 2048 - OutgoingMessage("", _attributes_of_publish()).size
        client.publish(queue_url, "x" * (room - 2), attributes={"Tenant": "a"})  # '"x…"' fits
        with pytest.raises(PayloadTooLarge, match="2,049 bytes"):
            client.publish(queue_url, "x" * (room - 1), attributes={"Tenant": "a"})
        with pytest.raises(PayloadTooLarge):
            client.publish(queue_url, "x" * (room - 2), attributes={"Tenant": "ab"})
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 1  # only the message that fitted was sent


def _attributes_of_publish() -> Mapping[str, Any]:
    return encode_request(
        body="",
        content_type="application/json",
        correlation_id="0" * 32,  # uuid4().hex is 32 characters
        reply_to=None,
        deadline_ms=None,
        attributes={"Tenant": "a"},
    ).attributes


def test_oversized_reply_becomes_an_error_reply(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    serve(queue_url, Big(), max_message_bytes=4096)
    assert len(client.call(queue_url, {"size": 1000}, timeout=20)) == 1000
    with pytest.raises(RemoteError, match="over the limit of 4,096 bytes") as info:
        client.call(queue_url, {"size": 5000}, timeout=20)
    assert info.value.error_type == "PayloadTooLarge"
    assert info.value.details is not None
    assert info.value.details["limit"] == 4096
    assert info.value.details["size"] > 5000


@pytest.mark.parametrize("value", [100, MAX_MESSAGE_BYTES * 2])
def test_max_message_bytes_is_checked_at_construction(sqs: Any, value: int) -> None:
    with pytest.raises(ConfigurationError, match="max_message_bytes"):
        RpcClient(sqs_client=sqs, max_message_bytes=value)
    with pytest.raises(ConfigurationError, match="max_message_bytes"):
        MessagePoller(
            "http://sqs/123456789012/q", Reverse(), sqs_client=sqs, max_message_bytes=value
        )
