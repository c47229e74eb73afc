"""Property-based tests of everything that parses what comes off a queue (sqs_rpc._wire and the
JSON codec): any input either decodes or raises DecodeError, never anything else, and what
sqs-rpc encodes decodes back to itself.

The messages are shaped as boto3 hands them out (``MessageAttributes`` values are dicts with a
``DataType`` and a ``StringValue`` or ``BinaryValue``), with arbitrary contents.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sqs_rpc import DecodeError, EncodeError
from sqs_rpc._attributes import (
    CONTENT_TYPE,
    CORRELATION_ID,
    DEADLINE,
    REPLY_TO,
    RESERVED_ATTRIBUTES,
    STATUS,
    VERSION,
)
from sqs_rpc._codecs import JsonCodec, TextCodec, sqs_text_problem
from sqs_rpc._error_info import ErrorInfo
from sqs_rpc._outgoing import OutgoingMessage
from sqs_rpc._wire import (
    MAX_DEADLINE_DISTANCE_MS,
    PROTOCOL_VERSION,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    reply_address,
)

T = TypeVar("T")


def _attempt(parse: Callable[[Any], T], value: Any) -> T | None:
    """``parse(value)``, or None after a DecodeError that says what is wrong. Any other
    exception escapes and fails the test."""
    error: DecodeError | None = None
    try:
        return parse(value)
    except DecodeError as exc:
        error = exc
    assert str(error)
    return None


# The first text strategy of a fresh interpreter builds hypothesis's table of characters per
# codec (a pass over every code point): on a loaded machine that alone took over 60 s.
pytestmark = pytest.mark.timeout(240)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text SQS accepts in bodies and attribute values: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD and
# beyond #x10000 (the API reference for SendMessage). Surrogates never occur.
sqs_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="".join(chr(c) for c in range(0x20) if c not in (9, 10, 13))
        + "\ufffe\uffff",
    )
)
any_text = st.text()  # what a foreign or broken producer, or another emulator, might deliver
attribute_names = st.one_of(st.sampled_from(sorted(RESERVED_ATTRIBUTES)), st.text(max_size=20))
attribute_values = st.one_of(
    st.builds(
        lambda t, v: {"DataType": t, "StringValue": v},
        st.sampled_from(["String", "Number", "String.custom", "Number.int", "Weird"]),
        any_text,
    ),
    st.builds(lambda v: {"DataType": "Binary", "BinaryValue": v}, st.binary(max_size=64)),
    st.just({"DataType": "String"}),  # no value at all
    st.builds(lambda v: {"DataType": "String", "StringValue": v}, st.integers()),  # wrong type
)
numbers = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=True).map(str),
    st.text(max_size=30),
    st.just("9" * 5000),  # longer than int() will parse (sys.int_info.str_digits_check_threshold)
    st.just("9" * 400),  # int() parses it; as a float it overflows
    st.integers(-(10**20), 10**20).map(lambda ms: str(int(time.time() * 1000) + ms)),
)


@st.composite
def received_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A message as ReceiveMessage might return it, with arbitrary contents."""
    attributes: dict[str, Any] = draw(
        st.dictionaries(attribute_names, attribute_values, max_size=10)
    )
    # Bias towards the interesting attributes with plausible-but-wrong values.
    for name, values in [
        (VERSION, st.sampled_from([PROTOCOL_VERSION, "0", "2", "", "1.0", " 1"])),
        (DEADLINE, numbers),
        (STATUS, st.sampled_from(["ok", "error", "OK", "", "fail"])),
        (REPLY_TO, st.sampled_from(["", "http://127.0.0.1:1/000000000000/q", "not a url"])),
        (CORRELATION_ID, st.sampled_from(["", "c-1", "x" * 300])),
    ]:
        if draw(st.booleans()):
            attributes[name] = {"DataType": "String", "StringValue": draw(values)}
    message: dict[str, Any] = {
        "MessageId": draw(any_text),
        "ReceiptHandle": draw(any_text),
        "MessageAttributes": attributes,
        "Attributes": {"ApproximateReceiveCount": draw(numbers)},
    }
    body = draw(st.one_of(any_text, st.none(), st.integers()))
    if body is not None:
        message["Body"] = body
    return message


@FUZZ
@given(received_messages())
def test_decode_request_decodes_or_raises_decode_error(message: dict[str, Any]) -> None:
    now_ms = time.time() * 1000
    request = _attempt(lambda m: decode_request(m, now_ms=now_ms), message)
    if request is None:
        return
    assert isinstance(request.body, str)
    # A decoded Deadline is near the clock: safe for any arithmetic a server does with it.
    assert request.deadline_ms is None or (
        abs(request.deadline_ms - now_ms) <= MAX_DEADLINE_DISTANCE_MS
    )
    assert request.receive_count >= 1
    assert request.reply_to is None or request.correlation_id
    assert not set(request.attributes) & RESERVED_ATTRIBUTES


@FUZZ
@given(received_messages())
def test_decode_reply_decodes_or_raises_decode_error(message: dict[str, Any]) -> None:
    reply = _attempt(decode_reply, message)
    if reply is None:
        return
    assert reply.status in ("ok", "error")
    assert reply.correlation_id


@FUZZ
@given(received_messages())
def test_reply_address_never_raises(message: dict[str, Any]) -> None:
    address = reply_address(message)
    if address is not None:
        reply_to, correlation_id = address
        assert reply_to
        assert correlation_id is None or isinstance(correlation_id, str)


def _received(sent: OutgoingMessage) -> dict[str, Any]:
    return {
        "MessageId": "m",
        "ReceiptHandle": "r",
        "Body": sent.body,
        "MessageAttributes": sent.attributes,
        "Attributes": {"ApproximateReceiveCount": "1"},
    }


NOW_MS = 1_767_225_600_000

user_attribute_names = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=127),
    min_size=1,
    max_size=20,
).filter(lambda n: n not in RESERVED_ATTRIBUTES and not n.lower().startswith(("aws", "amazon")))


@FUZZ
@given(
    body=sqs_text,
    correlation_id=st.text(min_size=1, max_size=64).filter(str.strip),
    reply_to=st.one_of(st.none(), st.just("http://127.0.0.1:1/000000000000/reply")),
    deadline_ms=st.one_of(
        st.none(),
        st.integers(-MAX_DEADLINE_DISTANCE_MS, MAX_DEADLINE_DISTANCE_MS).map(lambda d: NOW_MS + d),
    ),
    attributes=st.dictionaries(
        user_attribute_names, st.one_of(sqs_text, st.binary(max_size=32)), max_size=3
    ),
)
def test_request_round_trips(
    body: str,
    correlation_id: str,
    reply_to: str | None,
    deadline_ms: int | None,
    attributes: dict[str, str | bytes],
) -> None:
    sent = encode_request(
        body=body,
        content_type="application/json",
        correlation_id=correlation_id,
        reply_to=reply_to,
        deadline_ms=deadline_ms,
        attributes=attributes,
    )
    request = decode_request(_received(sent), now_ms=NOW_MS)
    assert (request.body, request.correlation_id, request.reply_to, request.deadline_ms) == (
        body,
        correlation_id,
        reply_to,
        deadline_ms,
    )
    assert dict(request.attributes) == attributes


@FUZZ
@given(
    body=sqs_text,
    correlation_id=st.text(min_size=1, max_size=64),
    status=st.sampled_from(["ok", "error"]),
)
def test_reply_round_trips(body: str, correlation_id: str, status: Any) -> None:
    sent = encode_reply(
        correlation_id=correlation_id, status=status, body=body, content_type="application/json"
    )
    reply = decode_reply(_received(sent))
    assert (reply.correlation_id, reply.status, reply.body) == (correlation_id, status, body)
    assert sent.attribute(CONTENT_TYPE) == reply.content_type


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@FUZZ
@given(st.one_of(any_text, json_values.map(json.dumps)))
@example(_nested(100_000))  # deeper than the parser's recursion limit
@example('{"type": "X", "message": ' + _nested(100_000) + "}")
@example(json.dumps({"type": "E", "message": "m"})[:-3])  # truncated
def test_error_documents_decode_or_raise_decode_error(body: str) -> None:
    info = _attempt(ErrorInfo.from_body, body)
    if info is None:
        return
    assert isinstance(info.type, str)
    assert isinstance(info.message, str)
    assert info.details is None or isinstance(info.details, dict)


@FUZZ
@given(
    type_=st.text(),
    message=st.text(),
    details=st.one_of(st.none(), st.dictionaries(st.text(), json_values, max_size=4)),
)
def test_error_documents_round_trip(type_: str, message: str, details: Any) -> None:
    info = ErrorInfo(type_, message, details)
    assert ErrorInfo.from_body(info.to_body()) == info


@FUZZ
@given(st.one_of(any_text, json_values.map(json.dumps).map(lambda s: s[: len(s) // 2])))
@example(_nested(100_000))
def test_json_codec_decodes_or_raises_decode_error(body: str) -> None:
    _attempt(JsonCodec().decode, body)


@FUZZ
@given(json_values)
def test_json_codec_round_trips(value: Any) -> None:
    codec = JsonCodec()
    assert codec.decode(codec.encode(value)) == value


def test_a_truncated_request_body_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="JSON"):
        JsonCodec().decode('{"x": [1, 2')


# Any str: lone surrogates and the characters SQS refuses too (exclude_categories=() keeps the
# surrogates that characters() leaves out by default).
every_text = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=()),
        st.sampled_from("\ud800\udfff\ufffe\uffff\x00\x07"),
    )
)


def _backslashreplace(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@FUZZ
@given(
    st.one_of(
        every_text,
        st.lists(every_text, max_size=3),
        st.dictionaries(every_text, every_text, max_size=3),
    )
)
def test_json_codec_encodes_text_sqs_accepts_or_raises_encode_error(value: Any) -> None:
    codec = JsonCodec()
    if any("\ud800" <= char <= "\udfff" for char in json.dumps(value, ensure_ascii=False)):
        with pytest.raises(EncodeError, match="surrogate"):
            codec.encode(value)
        return
    body = codec.encode(value)
    assert sqs_text_problem(body) is None
    assert codec.decode(body) == value


@FUZZ
@given(every_text)
def test_text_codec_encodes_text_sqs_accepts_or_raises_encode_error(value: str) -> None:
    try:
        body = TextCodec().encode(value)
    except EncodeError:
        assert sqs_text_problem(value) is not None
        return
    assert body == value
    assert sqs_text_problem(body) is None


@FUZZ
@given(type_=every_text, message=every_text, details=st.dictionaries(every_text, every_text))
def test_error_documents_are_always_text_sqs_accepts(
    type_: str, message: str, details: dict[str, str]
) -> None:
    body = ErrorInfo(type_, message, details).to_body()
    assert sqs_text_problem(body) is None
    info = ErrorInfo.from_body(body)
    # Nothing is lost but lone surrogates, which read as their escapes.
    assert (info.type, info.message) == (_backslashreplace(type_), _backslashreplace(message))
    assert info.details == {_backslashreplace(k): _backslashreplace(v) for k, v in details.items()}
