"""Requests from other request-response libraries, mapped onto sqs-rpc's protocol.

So that teams can migrate one side at a time, a server also answers:

- the AWS Java temporary-queues client (``AmazonSQSRequester``): the reply URL is in the
  ``ResponseQueueUrl`` attribute and there is no correlation id (each call has its own
  response queue, and the requester takes the first message on it). The URL may name a
  *virtual queue*, ``HOST_QUEUE_URL#VIRTUAL_NAME``: the reply then goes to the host queue with
  the ``__AmazonSQSVirtualQueuesClient.QueueName`` attribute set to the virtual name, which is
  how that client's own responder sends it.
- python-sqs-client: ``ReplyTo`` plus ``RequestMessageId`` instead of ``CorrelationId``; its
  requester matches the reply by ``RequestMessageId``, so the reply carries it back.

:func:`adapt_request` rewrites such a request into sqs-rpc's form before it is decoded, and
returns the attributes its reply must carry in addition. ``docs/protocol.md`` has the table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._attributes import CORRELATION_ID, REPLY_TO

__all__ = [
    "REQUEST_MESSAGE_ID",
    "RESPONSE_QUEUE_URL",
    "VIRTUAL_QUEUE_NAME",
    "adapt_request",
    "reply_destination",
    "split_virtual_queue",
]

RESPONSE_QUEUE_URL = "ResponseQueueUrl"  # Java temporary-queues client
VIRTUAL_QUEUE_NAME = "__AmazonSQSVirtualQueuesClient.QueueName"  # Java virtual queues
REQUEST_MESSAGE_ID = "RequestMessageId"  # python-sqs-client

_VIRTUAL_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")

Attributes = dict[str, dict[str, Any]]


def _string_attr(message: Mapping[str, Any], name: str) -> str | None:
    value = message.get("MessageAttributes", {}).get(name)
    text = value.get("StringValue") if isinstance(value, Mapping) else None
    return text if isinstance(text, str) and text else None


def _with_attributes(message: Mapping[str, Any], extra: Mapping[str, str]) -> dict[str, Any]:
    attributes = dict(message.get("MessageAttributes", {}))
    for name, value in extra.items():
        attributes[name] = {"DataType": "String", "StringValue": value}
    return {**message, "MessageAttributes": attributes}


def adapt_request(message: Mapping[str, Any]) -> tuple[Mapping[str, Any], Attributes]:
    """Return the request in sqs-rpc's form, and the extra attributes its reply carries."""
    if _string_attr(message, CORRELATION_ID) is not None:
        return message, {}  # sqs-rpc's own protocol
    reply_to = _string_attr(message, REPLY_TO)
    request_id = _string_attr(message, REQUEST_MESSAGE_ID)
    if reply_to is not None and request_id is not None:
        # python-sqs-client: its RequestMessageId is the correlation id, and comes back.
        echo = {REQUEST_MESSAGE_ID: {"DataType": "String", "StringValue": request_id}}
        return _with_attributes(message, {CORRELATION_ID: request_id}), echo
    response_url = _string_attr(message, RESPONSE_QUEUE_URL)
    if reply_to is None and response_url is not None:
        # Java temporary-queues client: one response queue per call, so the SQS message id
        # serves as the correlation id (the reply cache keys on it).
        message_id = str(message.get("MessageId", "")) or "java-request"
        adapted = {REPLY_TO: response_url, CORRELATION_ID: message_id}
        return _with_attributes(message, adapted), {}
    return message, {}


def split_virtual_queue(url: str) -> tuple[str, str | None]:
    """Split a Java virtual queue URL ``HOST#NAME`` into the host queue URL and the name."""
    host, sep, name = url.partition("#")
    return (host, name) if sep else (url, None)


def reply_destination(reply_to: str) -> tuple[str, Attributes] | None:
    """Where a reply to ``reply_to`` is sent, and the attributes that route it; None if invalid.

    A plain queue URL is its own destination. A virtual queue URL sends to its host queue with
    the virtual queue's name as an attribute (the name must be a plain queue-name string).
    """
    host, name = split_virtual_queue(reply_to)
    if name is None:
        return reply_to, {}
    if not _VIRTUAL_NAME.fullmatch(name):
        return None
    return host, {VIRTUAL_QUEUE_NAME: {"DataType": "String", "StringValue": name}}
