"""Message attributes: the protocol's names, reply-queue tags and the attribute budget.

SQS allows 10 message attributes per message and counts their names, types and values against
the message size. This module names every attribute sqs-rpc reserves, checks the user's own
against SQS's rules and the budget, and measures a message as SQS does.
``docs/protocol.md`` has the table and the budget.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._codecs import sqs_text_problem
from ._errors import ConfigurationError

__all__ = [
    "CONTENT_TYPE",
    "CONTROL",
    "CORRELATION_ID",
    "DEADLINE",
    "EXTENDED_PAYLOAD_SIZE",
    "HEARTBEAT_TAG",
    "LEGACY_EXTENDED_PAYLOAD_SIZE",
    "MAX_MESSAGE_ATTRIBUTES",
    "MAX_MESSAGE_BYTES",
    "MAX_SERVICE_USER_ATTRIBUTES",
    "MAX_USER_ATTRIBUTES",
    "MIN_MESSAGE_BYTES",
    "NONCE",
    "OPERATION",
    "REPLY_TO",
    "RESERVED_ATTRIBUTES",
    "RETENTION_TAG",
    "STATUS",
    "TRACEPARENT",
    "TRACESTATE",
    "VERSION",
    "AttributeValue",
    "attributes_size",
    "encode_attributes",
    "message_size",
    "string_value",
    "within_attribute_budget",
]

AttributeValue = str | bytes

# Attribute names. SQS allows at most 10 message attributes per message.
REPLY_TO = "ReplyTo"
CORRELATION_ID = "CorrelationId"
CONTENT_TYPE = "ContentType"
VERSION = "SqsRpcVersion"
DEADLINE = "Deadline"
STATUS = "Status"
# Random per call, echoed on its reply: a caller may reuse a correlation id, and a late reply
# to the earlier call must not settle the later one. Optional: older peers neither send nor
# echo it, and protocol version 1 reads the same with or without it.
NONCE = "SqsRpcNonce"
OPERATION = "SqsRpcOperation"  # the Service operation a request calls (_server/service.py)
CONTROL = (
    "SqsRpcControl"  # only on the client's own wake-up message, never on the wire between peers
)
# Reserved for W3C trace context, so the protocol's budget below already counts them.
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
# The SQS extended client's marker of a body stored in S3 (_offload.py), and its older name.
EXTENDED_PAYLOAD_SIZE = "ExtendedPayloadSize"
LEGACY_EXTENDED_PAYLOAD_SIZE = "SQSLargePayloadSize"
# Tags on a reply queue: the contract between its client and the sweepers
# (docs/operations.md). The last heartbeat, in epoch seconds, and the idle retention, in
# seconds, after which a queue without a newer heartbeat counts as orphaned.
HEARTBEAT_TAG = "sqs-rpc:heartbeat"
RETENTION_TAG = "sqs-rpc:idle-retention-seconds"

RESERVED_ATTRIBUTES = frozenset(
    {
        REPLY_TO,
        CORRELATION_ID,
        CONTENT_TYPE,
        VERSION,
        DEADLINE,
        STATUS,
        NONCE,
        OPERATION,
        CONTROL,
        TRACEPARENT,
        TRACESTATE,
        EXTENDED_PAYLOAD_SIZE,
        LEGACY_EXTENDED_PAYLOAD_SIZE,
    }
)
# SQS's rule for attribute names: these characters, 1 to 256 of them, not starting or ending
# with a period nor holding two in a row (and not starting with "AWS." or "Amazon.").
_ATTRIBUTE_NAME = re.compile(r"(?!\.)(?!.*\.\.)[A-Za-z0-9_.-]{1,256}(?<!\.)")
MAX_MESSAGE_ATTRIBUTES = 10
# A call uses at most 6 protocol attributes (ReplyTo, CorrelationId, ContentType, SqsRpcVersion,
# Deadline, SqsRpcNonce) and traceparent: 3 are always the user's (2 with S3 offload, whose
# ExtendedPayloadSize takes one: checked in _offload.py). A Service call's SqsRpcOperation is a
# seventh protocol attribute: such a call leaves 2 (1 with offload). tracestate goes in a slot
# none of those took; on a message already at 10, it is left out (within_attribute_budget).
MAX_USER_ATTRIBUTES = 3
MAX_SERVICE_USER_ATTRIBUTES = MAX_USER_ATTRIBUTES - 1
# SQS's message size limit since August 2025 (it was 256 KiB before), counting the body and
# every attribute's name, type and value. A queue's MaximumMessageSize may be set lower, down
# to 1 KiB. A batch request is capped at the same total.
MAX_MESSAGE_BYTES = 1_048_576
MIN_MESSAGE_BYTES = 1024


def encode_attributes(
    attributes: Mapping[str, AttributeValue], *, limit: int = MAX_USER_ATTRIBUTES
) -> dict[str, dict[str, Any]]:
    """Turn user attributes into SQS ``MessageAttributes``, rejecting what SQS would refuse.

    Raises :class:`ConfigurationError` for too many attributes, a reserved name, a name SQS
    does not allow, or a value that is not ``str`` (of text SQS accepts) or ``bytes``.
    """
    if not isinstance(attributes, Mapping):
        raise ConfigurationError(
            f"attributes must be a mapping of names to str or bytes, not "
            f"{type(attributes).__name__}"
        )
    if len(attributes) > limit:
        raise ConfigurationError(
            f"{len(attributes)} message attributes given; at most {limit} are "
            f"yours (SQS allows {MAX_MESSAGE_ATTRIBUTES} and sqs-rpc reserves the rest): put "
            "further data in the payload"
        )
    encoded: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        if not isinstance(name, str) or not _ATTRIBUTE_NAME.fullmatch(name):
            raise ConfigurationError(
                f"message attribute name {name!r} is not one SQS accepts: a str of 1 to 256 "
                "letters, digits, '_', '-' and '.' (not first, last, or twice in a row)"
            )
        if name in RESERVED_ATTRIBUTES or name.lower().startswith(("aws.", "amazon.")):
            raise ConfigurationError(
                f"message attribute name {name!r} is reserved; choose another name"
            )
        if isinstance(value, str):
            problem = sqs_text_problem(value)
            if problem is not None:
                raise ConfigurationError(
                    f"message attribute {name!r} holds {problem}, which SQS refuses in a "
                    "String value; pass valid text, or bytes (sent as Binary)"
                )
            encoded[name] = {"DataType": "String", "StringValue": value}
        elif isinstance(value, bytes):
            encoded[name] = {"DataType": "Binary", "BinaryValue": value}
        else:
            raise ConfigurationError(
                f"message attribute {name!r} is a {type(value).__name__}; pass str or bytes"
            )
    return encoded


def attributes_size(attributes: Mapping[str, Mapping[str, Any]]) -> int:
    """What message attributes count against SQS's size limit, in bytes.

    For every attribute: its name, its data type and its value.
    """
    size = 0
    for name, value in attributes.items():
        size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        if "BinaryValue" in value:
            size += len(value["BinaryValue"])
        else:
            size += len(str(value.get("StringValue", "")).encode())
    return size


def message_size(arguments: Mapping[str, Any]) -> int:
    """The size of a message as SQS counts it against its limit, in bytes.

    ``arguments`` are ``SendMessage`` arguments (or a batch entry) as boto3 sees them: the
    UTF-8 body plus :func:`attributes_size`. Messages sqs-rpc builds have
    :attr:`~sqs_rpc._outgoing.OutgoingMessage.size`.
    """
    body = len(str(arguments.get("MessageBody", "")).encode())
    return body + attributes_size(arguments.get("MessageAttributes", {}))


def string_value(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def within_attribute_budget(
    attributes: Mapping[str, Mapping[str, Any]],
) -> Mapping[str, Mapping[str, Any]]:
    """``attributes`` within SQS's 10, leaving out ``tracestate`` if that is what it takes.

    Only a call with all 3 attributes of its own (or 2 and an S3 pointer's size) and a
    ``tracestate`` needs it. W3C trace context lets a carrier drop ``tracestate`` and keep
    ``traceparent``; nothing else of the protocol may go.
    """
    if len(attributes) > MAX_MESSAGE_ATTRIBUTES and TRACESTATE in attributes:
        return {name: value for name, value in attributes.items() if name != TRACESTATE}
    return attributes
