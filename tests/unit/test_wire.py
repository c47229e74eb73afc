from __future__ import annotations

from typing import Any

import pytest

from sqs_rpc import MAX_MESSAGE_BYTES, ConfigurationError, DecodeError, PayloadTooLarge
from sqs_rpc._attributes import (
    MAX_MESSAGE_ATTRIBUTES,
    MAX_USER_ATTRIBUTES,
    RESERVED_ATTRIBUTES,
    encode_attributes,
    message_size,
    string_value,
)
from sqs_rpc._error_info import ErrorInfo
from sqs_rpc._options import check_max_message_bytes
from sqs_rpc._outgoing import OutgoingMessage
from sqs_rpc._wire import (
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    is_wake_message,
    reply_address,
    wake_message,
)


def _received(sent: OutgoingMessage, **extra: Any) -> dict[str, Any]:
    """What ReceiveMessage returns for the message ``sent``."""
    return {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": sent.body,
        "MessageAttributes": sent.attributes,
        **extra,
    }


def test_request_round_trip() -> None:
    sent = encode_request(
        body='{"x":1}',
        content_type="application/json",
        correlation_id="c-1",
        reply_to="http://sqs/reply",
        deadline_ms=1_700_000_000_000,
        attributes={"Tenant": "acme", "Blob": b"\x00\x01"},
    )
    request = decode_request(
        _received(sent, Attributes={"ApproximateReceiveCount": "3"}), now_ms=1_700_000_000_000
    )
    assert request.body == '{"x":1}'
    assert request.correlation_id == "c-1"
    assert request.reply_to == "http://sqs/reply"
    assert request.deadline_ms == 1_700_000_000_000
    assert request.receive_count == 3
    assert request.attributes == {"Tenant": "acme", "Blob": b"\x00\x01"}
    assert sent.attributes["Deadline"]["DataType"] == "Number"


def test_one_way_request_has_no_reply_to_or_deadline() -> None:
    sent = encode_request(
        body="1",
        content_type="application/json",
        correlation_id="c",
        reply_to=None,
        deadline_ms=None,
        attributes={},
    )
    assert "ReplyTo" not in sent.attributes
    assert "Deadline" not in sent.attributes
    assert decode_request(_received(sent)).reply_to is None


def test_protocol_leaves_room_for_user_attributes() -> None:
    users = {f"a{i}": "v" for i in range(MAX_USER_ATTRIBUTES)}
    sent = encode_request(
        body="1",
        content_type="application/json",
        correlation_id="c",
        reply_to="http://r",
        deadline_ms=1,
        attributes=users,
        nonce="n",
    )
    # One more is reserved for W3C traceparent (tracestate takes a slot only when one is free).
    assert len(sent.attributes) + 1 <= MAX_MESSAGE_ATTRIBUTES


def test_too_many_user_attributes_name_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="payload"):
        encode_attributes({f"a{i}": "v" for i in range(MAX_USER_ATTRIBUTES + 1)})


@pytest.mark.parametrize("name", [*sorted(RESERVED_ATTRIBUTES), "AWS.Trace", "amazon.x"])
def test_reserved_attribute_names_are_rejected(name: str) -> None:
    with pytest.raises(ConfigurationError, match="reserved"):
        encode_attributes({name: "v"})


def test_attribute_values_must_be_str_or_bytes() -> None:
    with pytest.raises(ConfigurationError, match="str or bytes"):
        encode_attributes({"n": 1})  # type: ignore[dict-item]


def test_foreign_message_without_version_is_accepted() -> None:
    request = decode_request({"MessageId": "m", "ReceiptHandle": "r", "Body": "{}"})
    assert request.reply_to is None
    assert request.content_type == "application/json"


def test_unknown_version_is_rejected_with_the_fix() -> None:
    message = {
        "Body": "{}",
        "MessageAttributes": {"SqsRpcVersion": {"DataType": "String", "StringValue": "99"}},
    }
    with pytest.raises(DecodeError, match="upgrade"):
        decode_request(message)
    with pytest.raises(DecodeError, match="upgrade"):
        decode_reply(message)


def test_request_with_reply_to_needs_a_correlation_id() -> None:
    message = {
        "Body": "{}",
        "MessageAttributes": {"ReplyTo": {"DataType": "String", "StringValue": "http://r"}},
    }
    with pytest.raises(DecodeError, match="CorrelationId"):
        decode_request(message)
    assert reply_address(message) == ("http://r", None)


def test_bad_deadline_is_a_decode_error() -> None:
    message = {
        "Body": "{}",
        "MessageAttributes": {"Deadline": {"DataType": "Number", "StringValue": "soon"}},
    }
    with pytest.raises(DecodeError, match="Deadline"):
        decode_request(message)


def test_reply_round_trip() -> None:
    sent = encode_reply(
        correlation_id="c", status="ok", body="[1]", content_type="application/json"
    )
    reply = decode_reply(_received(sent))
    assert (reply.correlation_id, reply.status, reply.body) == ("c", "ok", "[1]")


def test_reply_with_bad_status_is_rejected() -> None:
    sent = encode_reply(correlation_id="c", status="ok", body="1", content_type="application/json")
    sent = sent.with_attributes({"Status": string_value("maybe")})
    with pytest.raises(DecodeError, match="Status"):
        decode_reply(_received(sent))


def test_reply_without_correlation_id_is_rejected() -> None:
    with pytest.raises(DecodeError, match="CorrelationId"):
        decode_reply({"Body": "1", "MessageAttributes": {}})


def test_error_document_round_trip() -> None:
    info = ErrorInfo("ValueError", "bad", {"field": "x"})
    assert ErrorInfo.from_body(info.to_body()) == info


@pytest.mark.parametrize("body", ["not json", "[1]", '{"message": "no type"}'])
def test_malformed_error_documents_are_decode_errors(body: str) -> None:
    with pytest.raises(DecodeError):
        ErrorInfo.from_body(body)


def test_wake_message_is_recognised() -> None:
    assert is_wake_message(_received(wake_message()))
    assert not is_wake_message({"Body": "x"})


def test_message_size_counts_body_and_attribute_names_types_values() -> None:
    arguments = {
        "MessageBody": "ü" * 3,  # 6 bytes in UTF-8
        "MessageAttributes": {
            "Name": {"DataType": "String", "StringValue": "abc"},  # 4 + 6 + 3
            "Blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},  # 4 + 6 + 2
            "N": {"DataType": "Number", "StringValue": "12"},  # 1 + 6 + 2
        },
    }
    assert message_size(arguments) == 6 + 13 + 12 + 9
    assert OutgoingMessage.from_send_kwargs(arguments).size == 6 + 13 + 12 + 9


def test_check_size_is_inclusive_and_reports_size_and_limit() -> None:
    OutgoingMessage("x" * 100).check_size(100)
    with pytest.raises(PayloadTooLarge, match="101 bytes") as info:
        OutgoingMessage("x" * 101).check_size(100, what="reply")
    assert (info.value.size, info.value.limit) == (101, 100)
    assert "reply" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [0, 1023, MAX_MESSAGE_BYTES + 1, 2048.0, True, "1024"])
def test_max_message_bytes_is_validated(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_message_bytes"):
        check_max_message_bytes(value)


def test_the_default_limit_is_one_mebibyte() -> None:
    assert MAX_MESSAGE_BYTES == 1_048_576
    assert check_max_message_bytes(1024) == 1024
