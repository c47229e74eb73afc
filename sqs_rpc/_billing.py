"""How many requests SQS bills for one API call: one per started 64 KiB of its payload.

AWS's rule (https://aws.amazon.com/sqs/pricing/, "Each 64 KB chunk of a payload is billed as
1 request"): an action's payload is the messages it carries, body plus attributes, summed over
a batch of up to 10; every started 64 KiB chunk of that is one billed request, and an action
with no payload (a delete, an empty receive) is one. So a 100 KiB ``SendMessage`` is 2, a
``SendMessageBatch`` of ten 1 KiB messages is 1, and a ``ReceiveMessage`` that brings back
three 60 KiB messages is 3. The sizes are those SQS counts against its limit
(:func:`sqs_rpc._attributes.message_size`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._attributes import message_size

__all__ = ["BILLING_CHUNK", "billed_requests", "received_payload", "sent_payload"]

BILLING_CHUNK = 64 * 1024


def billed_requests(payload_bytes: int) -> int:
    """The requests an action carrying ``payload_bytes`` is billed as (at least 1)."""
    return max(1, -(-payload_bytes // BILLING_CHUNK))


def sent_payload(operation: str, params: Mapping[str, Any]) -> int:
    """The payload bytes of a ``SendMessage``/``SendMessageBatch`` call's parameters (else 0)."""
    if operation == "SendMessage":
        return message_size(params)
    if operation == "SendMessageBatch":
        return sum(message_size(entry) for entry in params.get("Entries", ()))
    return 0


def received_payload(parsed: Mapping[str, Any]) -> int:
    """The payload bytes a ``ReceiveMessage`` response brought back."""
    return sum(message_size(_as_sent(m)) for m in parsed.get("Messages", ()))


def _as_sent(message: Mapping[str, Any]) -> Mapping[str, Any]:
    # A received message has Body where a sent one has MessageBody; attributes are the same.
    return {
        "MessageBody": message.get("Body", ""),
        "MessageAttributes": message.get("MessageAttributes", {}),
    }
