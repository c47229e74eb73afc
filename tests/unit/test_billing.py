"""The billed-request arithmetic: one request per started 64 KiB of an action's payload."""

from __future__ import annotations

import pytest

from sqs_rpc._billing import BILLING_CHUNK, billed_requests, received_payload, sent_payload

KiB = 1024


@pytest.mark.parametrize(
    ("payload", "billed"),
    [
        (0, 1),  # an action without payload (a delete, an empty receive) is one request
        (1, 1),
        (64 * KiB - 1, 1),
        (64 * KiB, 1),
        (64 * KiB + 1, 2),
        (100 * KiB, 2),
        (256 * KiB, 4),  # AWS's example: a 256 KB payload is billed as four requests
        (1024 * KiB, 16),  # the largest SQS message
    ],
)
def test_every_started_64_kib_chunk_is_one_billed_request(payload: int, billed: int) -> None:
    assert billed_requests(payload) == billed


def test_a_send_counts_body_and_attributes() -> None:
    params = {
        "QueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/q",  # not payload
        "MessageBody": "é" * 10,  # UTF-8 bytes, not characters
        "MessageAttributes": {
            "CorrelationId": {"DataType": "String", "StringValue": "abc"},
            "Blob": {"DataType": "Binary", "BinaryValue": b"\x00" * 5},
        },
    }
    expected = 20 + len("CorrelationId") + len("String") + 3 + len("Blob") + len("Binary") + 5
    assert sent_payload("SendMessage", params) == expected


def test_a_batch_is_billed_on_its_summed_payload() -> None:
    entries = [{"Id": str(i), "MessageBody": "x" * (20 * KiB)} for i in range(10)]
    payload = sent_payload("SendMessageBatch", {"Entries": entries})
    assert payload == 200 * KiB
    assert billed_requests(payload) == 4  # not 10: the batch is one action of 200 KiB


def test_actions_without_messages_have_no_payload() -> None:
    assert sent_payload("DeleteMessage", {"ReceiptHandle": "x" * 100 * KiB}) == 0


def test_a_receive_is_billed_on_what_it_returns() -> None:
    parsed = {
        "Messages": [
            {"Body": "x" * (60 * KiB), "MessageAttributes": {}, "ReceiptHandle": "r" * 500}
            for _ in range(3)
        ]
    }
    assert received_payload(parsed) == 180 * KiB
    assert billed_requests(received_payload(parsed)) == 3
    assert billed_requests(received_payload({})) == 1


def test_the_chunk_is_64_kib() -> None:
    assert BILLING_CHUNK == 65_536
