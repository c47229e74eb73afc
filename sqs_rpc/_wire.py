"""The wire protocol: request, reply and error envelopes <-> SQS messages.

``docs/protocol.md`` is the prose form of this module; keep them in step. Every envelope is a
frozen dataclass. Received SQS message dicts are read only here. Messages to send are built
here, as an :class:`~sqs_rpc._outgoing.OutgoingMessage`.

A request is an SQS message whose body is the encoded payload. Its String attributes are
``ReplyTo`` (the reply queue's URL; absent on a one-way message), ``CorrelationId``,
``ContentType`` and ``SqsRpcVersion``. A call also carries ``Deadline`` (a Number, in epoch
milliseconds) and ``SqsRpcNonce`` (random per call). A call to a :class:`~sqs_rpc.Service`
also carries ``SqsRpcOperation`` (the operation's name) and says version ``2``; version 1
messages stay readable.

A reply carries ``CorrelationId``, ``ContentType``, ``SqsRpcVersion``, ``Status`` (``ok`` or
``error``) and the request's ``SqsRpcNonce``. An error reply's body is a JSON error document
(``_error_info.py``). Requests and replies carry the W3C ``traceparent`` and ``tracestate``
attributes when the caller had a trace context.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._attributes import (
    CONTENT_TYPE,
    CONTROL,
    CORRELATION_ID,
    DEADLINE,
    MAX_SERVICE_USER_ATTRIBUTES,
    NONCE,
    OPERATION,
    REPLY_TO,
    RESERVED_ATTRIBUTES,
    STATUS,
    TRACEPARENT,
    TRACESTATE,
    VERSION,
    AttributeValue,
    encode_attributes,
    string_value,
    within_attribute_budget,
)
from ._codecs import JSON_CONTENT_TYPE
from ._errors import DecodeError
from ._outgoing import OutgoingMessage
from ._trace import TraceContext

__all__ = [
    "MAX_CORRELATION_ID_LENGTH",
    "MAX_DEADLINE_DISTANCE_MS",
    "MAX_NONCE_LENGTH",
    "PROTOCOL_VERSION",
    "SERVICE_PROTOCOL_VERSION",
    "Reply",
    "Request",
    "correlation_id_of",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
    "is_wake_message",
    "nonce_of",
    "reply_address",
    "valid_nonce",
    "wake_message",
]

PROTOCOL_VERSION = "1"
# A request that names an operation (a Service call) says version 2, so that a server too old
# to route it refuses it as undecodable (an error reply) instead of running the wrong handler.
# Replies, and every other message, stay version 1.
SERVICE_PROTOCOL_VERSION = "2"
SUPPORTED_VERSIONS = frozenset({PROTOCOL_VERSION, SERVICE_PROTOCOL_VERSION})

# The longest CorrelationId a request may carry, in characters. A server keeps the id of every
# request it answers (the reply cache), so its length is bounded on the wire, not trusted.
MAX_CORRELATION_ID_LENGTH = 128
# How far a Deadline may be from the server's clock, either way: a year. A genuine one is at
# most a call's longest timeout ahead (12 hours) and SQS's longest retention behind (14 days);
# one further off is a wrong clock, a wrong unit (seconds, microseconds) or hostile, and
# refused as undecodable, so it never reaches arithmetic (hundreds of digits overflow a float).
MAX_DEADLINE_DISTANCE_MS = 366 * 24 * 3600 * 1000
_DEADLINE = re.compile(r"[0-9]{1,16}")
_RECEIVE_COUNT = re.compile(r"[1-9][0-9]{0,9}")
# sqs-rpc writes 32 hex digits; a server accepts up to this many printable ASCII characters.
MAX_NONCE_LENGTH = 64
_NONCE = re.compile(rf"[\x21-\x7e]{{1,{MAX_NONCE_LENGTH}}}")

Status = Literal["ok", "error"]
SqsMessage = Mapping[str, Any]


@dataclass(frozen=True)
class Request:
    """A request (or one-way message) as received from a request queue."""

    message_id: str
    receipt_handle: str
    body: str
    content_type: str
    correlation_id: str | None
    reply_to: str | None
    deadline_ms: int | None
    receive_count: int
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    trace: TraceContext | None = None
    group_id: str | None = None  # MessageGroupId, on FIFO queues
    operation: str | None = None  # SqsRpcOperation: the Service operation called
    # SQS's clock (epoch ms): when SQS accepted the request, and when it first handed it out.
    sent_ms: int | None = None
    first_receive_ms: int | None = None
    nonce: str | None = None  # SqsRpcNonce: echoed on the reply; None from older clients


@dataclass(frozen=True)
class Reply:
    """A reply as received on a reply queue."""

    correlation_id: str
    status: Status
    body: str
    content_type: str
    nonce: str | None = None  # the request's SqsRpcNonce; None from older servers


def _add_trace(attrs: dict[str, dict[str, Any]], trace: TraceContext | None) -> None:
    if trace is not None:
        attrs[TRACEPARENT] = string_value(trace.traceparent)
        if trace.tracestate:
            attrs[TRACESTATE] = string_value(trace.tracestate)


def encode_request(
    *,
    body: str,
    content_type: str,
    correlation_id: str,
    reply_to: str | None,
    deadline_ms: int | None,
    attributes: Mapping[str, AttributeValue],
    trace: TraceContext | None = None,
    nonce: str | None = None,
    operation: str | None = None,
) -> OutgoingMessage:
    """The message of a request, without FIFO fields (the request encoder adds those).

    ``nonce`` is the call's own random ``SqsRpcNonce`` (calls only). With ``operation`` (a
    Service call), the request names it and says version 2.
    """
    if operation is None:
        attrs = encode_attributes(attributes)
        attrs[VERSION] = string_value(PROTOCOL_VERSION)
    else:
        attrs = encode_attributes(attributes, limit=MAX_SERVICE_USER_ATTRIBUTES)
        attrs[OPERATION] = string_value(operation)
        attrs[VERSION] = string_value(SERVICE_PROTOCOL_VERSION)
    _add_trace(attrs, trace)
    attrs[CORRELATION_ID] = string_value(correlation_id)
    attrs[CONTENT_TYPE] = string_value(content_type)
    if reply_to is not None:
        attrs[REPLY_TO] = string_value(reply_to)
    if deadline_ms is not None:
        attrs[DEADLINE] = {"DataType": "Number", "StringValue": str(deadline_ms)}
    if nonce is not None:
        attrs[NONCE] = string_value(nonce)
    return OutgoingMessage(body, within_attribute_budget(attrs))


def encode_reply(
    *,
    correlation_id: str,
    status: Status,
    body: str,
    content_type: str,
    trace: TraceContext | None = None,
    nonce: str | None = None,
) -> OutgoingMessage:
    """The message of a reply.

    ``nonce`` is the request's ``SqsRpcNonce``, echoed so that only its call takes the reply.
    """
    attrs = {
        CORRELATION_ID: string_value(correlation_id),
        CONTENT_TYPE: string_value(content_type),
        VERSION: string_value(PROTOCOL_VERSION),
        STATUS: string_value(status),
    }
    if nonce is not None:
        attrs[NONCE] = string_value(nonce)
    _add_trace(attrs, trace)
    return OutgoingMessage(body, attrs)


def wake_message() -> OutgoingMessage:
    """The message a client sends to its own reply queue to end a long poll at close."""
    return OutgoingMessage("wake", {CONTROL: string_value("wake")})


def _attr(message: SqsMessage, name: str) -> str | None:
    value = message.get("MessageAttributes", {}).get(name)
    if value is None:
        return None
    text = value.get("StringValue")
    return text if isinstance(text, str) else None


def correlation_id_of(message: SqsMessage) -> str | None:
    """The correlation id of any message, without validating the rest."""
    return _attr(message, CORRELATION_ID)


def nonce_of(message: SqsMessage) -> str | None:
    """A message's ``SqsRpcNonce`` as it is, without validating the rest."""
    return _attr(message, NONCE)


def valid_nonce(nonce: str | None) -> str | None:
    """``nonce`` if it is one a server echoes (1 to 64 printable ASCII characters), else None."""
    return nonce if nonce is not None and _NONCE.fullmatch(nonce) else None


def is_wake_message(message: SqsMessage) -> bool:
    return _attr(message, CONTROL) == "wake"


def _check_version(message: SqsMessage) -> None:
    # A message without a version comes from a producer that is not sqs-rpc (a plain SQS
    # message, python-sqs-client): accept it as version 1. A version we do not know is an error.
    version = _attr(message, VERSION)
    if version is not None and version not in SUPPORTED_VERSIONS:
        raise DecodeError(
            f"unsupported sqs-rpc protocol version {version!r} (this side speaks "
            f"{', '.join(sorted(SUPPORTED_VERSIONS))}); upgrade sqs-rpc on this side"
        )


def reply_address(message: SqsMessage) -> tuple[str, str | None] | None:
    """Where to send an error reply for a request that could not be decoded, if anywhere."""
    reply_to = _attr(message, REPLY_TO)
    if not reply_to:
        return None
    return reply_to, _attr(message, CORRELATION_ID)


def _deadline(message: SqsMessage, now_ms: float | None) -> int | None:
    """The request's Deadline in epoch milliseconds: whole, and within a year of the clock."""
    text = _attr(message, DEADLINE)
    if text is None:
        return None
    if not _DEADLINE.fullmatch(text):
        raise DecodeError(
            f"{DEADLINE} {text[:40]!r} is not epoch milliseconds (a whole number, at most "
            "16 digits)"
        )
    deadline_ms = int(text)
    now = time.time() * 1000 if now_ms is None else now_ms
    if abs(deadline_ms - now) > MAX_DEADLINE_DISTANCE_MS:
        raise DecodeError(
            f"{DEADLINE} {deadline_ms} is more than a year from the server's clock "
            f"({int(now)} epoch ms): the value is not epoch milliseconds (seconds? "
            "microseconds?), or a clock is wrong"
        )
    return deadline_ms


def _receive_count(message: SqsMessage) -> int:
    # Set by SQS, not the sender; still parsed without trusting it: 1 unless it is a count.
    text = str(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
    return int(text) if _RECEIVE_COUNT.fullmatch(text) else 1


def decode_request(message: SqsMessage, *, now_ms: float | None = None) -> Request:
    """Parse a received request; raise :class:`DecodeError` saying what is wrong.

    ``now_ms`` is the clock a ``Deadline`` must be near (``time.time()`` by default).
    """
    _check_version(message)
    body = message.get("Body")
    if not isinstance(body, str):
        raise DecodeError("message has no body")
    reply_to = _attr(message, REPLY_TO)
    correlation_id = _attr(message, CORRELATION_ID)
    if reply_to is not None and not correlation_id:
        raise DecodeError(f"request has {REPLY_TO} but no {CORRELATION_ID}")
    if correlation_id is not None and len(correlation_id) > MAX_CORRELATION_ID_LENGTH:
        raise DecodeError(
            f"{CORRELATION_ID} is {len(correlation_id):,} characters, over the protocol's "
            f"{MAX_CORRELATION_ID_LENGTH}: use a shorter id, such as a UUID"
        )
    deadline_ms = _deadline(message, now_ms)
    nonce = nonce_of(message)
    if nonce is not None and valid_nonce(nonce) is None:
        raise DecodeError(
            f"{NONCE} {nonce[:80]!r} is not 1 to {MAX_NONCE_LENGTH} printable ASCII characters"
        )
    user: dict[str, AttributeValue] = {}
    for name, value in message.get("MessageAttributes", {}).items():
        if name in RESERVED_ATTRIBUTES:
            continue
        if "StringValue" in value:
            user[name] = value["StringValue"]
        elif "BinaryValue" in value:
            user[name] = value["BinaryValue"]
    return Request(
        message_id=str(message.get("MessageId", "")),
        receipt_handle=str(message.get("ReceiptHandle", "")),
        body=body,
        content_type=_attr(message, CONTENT_TYPE) or JSON_CONTENT_TYPE,
        correlation_id=correlation_id,
        reply_to=reply_to or None,
        deadline_ms=deadline_ms,
        receive_count=_receive_count(message),
        attributes=user,
        # A malformed trace context is dropped, not an error (W3C: the receiver restarts it).
        trace=TraceContext.from_headers(
            {
                name: value
                for name in (TRACEPARENT, TRACESTATE)
                if (value := _attr(message, name)) is not None
            }
        ),
        group_id=message.get("Attributes", {}).get("MessageGroupId"),
        operation=_attr(message, OPERATION),
        sent_ms=_timestamp(message, "SentTimestamp"),
        first_receive_ms=_timestamp(message, "ApproximateFirstReceiveTimestamp"),
        nonce=nonce,
    )


def _timestamp(message: SqsMessage, name: str) -> int | None:
    """A system attribute in epoch milliseconds; None when absent or not such a number."""
    value = message.get("Attributes", {}).get(name)
    # SQS sets these, but an emulator or a proxy might not: never trust a length.
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 16:
        return None
    return int(value)


def decode_reply(message: SqsMessage) -> Reply:
    """Parse a received reply; raise :class:`DecodeError` saying what is wrong."""
    _check_version(message)
    correlation_id = _attr(message, CORRELATION_ID)
    if not correlation_id:
        raise DecodeError(f"reply has no {CORRELATION_ID}")
    status_text = _attr(message, STATUS)
    status: Status
    if status_text == "ok":
        status = "ok"
    elif status_text == "error":
        status = "error"
    else:
        raise DecodeError(
            f"reply {correlation_id} has {STATUS} {status_text!r}, not 'ok' or 'error'"
        )
    body = message.get("Body")
    if not isinstance(body, str):
        raise DecodeError(f"reply {correlation_id} has no body")
    return Reply(
        correlation_id=correlation_id,
        status=status,
        body=body,
        content_type=_attr(message, CONTENT_TYPE) or JSON_CONTENT_TYPE,
        nonce=_attr(message, NONCE),
    )
