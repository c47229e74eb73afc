"""Lambda's SQS event shape, and SQS messages as boto3 returns them, into each other.

Lambda's SQS event source delivers a batch as ``{"Records": [...]}``. Each record is a
received message with camelCase keys: ``messageId``, ``receiptHandle``, ``body``,
``attributes``, ``eventSourceARN``, ... and ``messageAttributes``, whose values have
``stringValue`` / ``binaryValue`` (base64) / ``dataType``. The protocol code (``_wire.py``)
reads the shape boto3's ``ReceiveMessage`` returns. :func:`message_from_record` converts, so
there is one decoder. :func:`record_from_message` goes the other way, for tests and local runs
(:func:`receive_event`).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqs_rpc._errors import ConfigurationError, aws_errors

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "QueueArn",
    "delete_succeeded",
    "message_from_record",
    "parse_queue_arn",
    "receive_event",
    "record_from_message",
    "records_of",
]

logger = logging.getLogger(__name__)

MAX_MESSAGES = 10  # ReceiveMessage's limit, and Lambda's default batch size


@dataclass(frozen=True)
class QueueArn:
    """An SQS queue ARN taken apart: ``arn:PARTITION:sqs:REGION:ACCOUNT:NAME``."""

    arn: str
    region: str
    account: str
    name: str

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")


def parse_queue_arn(arn: object) -> QueueArn | None:
    """Parse an SQS queue ARN; None when it is not one."""
    if not isinstance(arn, str):
        return None
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not all(parts[3:]):
        return None
    return QueueArn(arn, parts[3], parts[4], parts[5])


def _attribute_from_record(name: str, value: Mapping[str, Any]) -> dict[str, Any] | None:
    data_type = str(value.get("dataType", "String"))
    text = value.get("stringValue")
    if isinstance(text, str):
        return {"DataType": data_type, "StringValue": text}
    encoded = value.get("binaryValue")
    if isinstance(encoded, str):
        try:
            return {"DataType": data_type, "BinaryValue": base64.b64decode(encoded, validate=True)}
        except (binascii.Error, ValueError):
            logger.warning("message attribute %r has a binaryValue that is not base64", name)
    return None  # list values are reserved by SQS and never sent


def message_from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """One Lambda SQS event record as the message dict ``ReceiveMessage`` would return."""
    attributes: dict[str, dict[str, Any]] = {}
    for name, value in (record.get("messageAttributes") or {}).items():
        if isinstance(value, Mapping):
            converted = _attribute_from_record(name, value)
            if converted is not None:
                attributes[name] = converted
    message: dict[str, Any] = {
        "MessageId": str(record.get("messageId", "")),
        "ReceiptHandle": str(record.get("receiptHandle", "")),
        "Attributes": {str(k): str(v) for k, v in (record.get("attributes") or {}).items()},
        "MessageAttributes": attributes,
    }
    if isinstance(record.get("body"), str):
        message["Body"] = record["body"]
    if "md5OfBody" in record:
        message["MD5OfBody"] = record["md5OfBody"]
    return message


def record_from_message(
    message: Mapping[str, Any], *, queue_arn: str, region: str
) -> dict[str, Any]:
    """A received message as Lambda's SQS event source would put it in ``Records``."""
    attributes: dict[str, dict[str, Any]] = {}
    for name, value in message.get("MessageAttributes", {}).items():
        record_value: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
        if "StringValue" in value:
            record_value["stringValue"] = value["StringValue"]
        else:
            record_value["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        attributes[name] = record_value
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def receive_event(
    sqs_client: SQSClient,
    queue_url: str,
    *,
    max_messages: int = MAX_MESSAGES,
    wait_time_seconds: int = 1,
) -> dict[str, Any]:
    """Receive up to ``max_messages`` from ``queue_url`` and return them as a Lambda SQS event.

    What Lambda's event source mapping does before it invokes a function: for tests and local
    runs of a :class:`~sqs_rpc.aws_lambda.LambdaResponder`. The messages are in flight for the
    queue's visibility timeout; records reported as successful are deleted by
    :func:`~sqs_rpc.aws_lambda.delete_succeeded`, as Lambda would. ``{"Records": []}`` when
    nothing arrived within ``wait_time_seconds``.

    Example::

        event = receive_event(sqs, queue_url)
        response = responder(event, None)
        delete_succeeded(sqs, queue_url, event, response)
    """
    if isinstance(max_messages, bool) or not isinstance(max_messages, int):
        raise ConfigurationError(f"max_messages={max_messages!r} must be an int from 1 to 10")
    if not 1 <= max_messages <= MAX_MESSAGES:
        raise ConfigurationError(f"max_messages={max_messages!r} must be from 1 to 10")
    with aws_errors("GetQueueAttributes", queue_url):
        arn = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
    with aws_errors("ReceiveMessage", queue_url):
        messages = sqs_client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_time_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
    region = sqs_client.meta.region_name
    return {"Records": [record_from_message(m, queue_arn=arn, region=region) for m in messages]}


def delete_succeeded(
    sqs_client: SQSClient,
    queue_url: str,
    event: Mapping[str, Any],
    response: Mapping[str, Any],
) -> list[str]:
    """Delete the records of ``event`` not in ``response``'s ``batchItemFailures``, as Lambda does.

    Returns the deleted message ids. For tests and local runs; on AWS, Lambda does this.
    """
    failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
    done = [r for r in records_of(event) if r["messageId"] not in failed]
    deleted: list[str] = []
    for start in range(0, len(done), MAX_MESSAGES):
        chunk = done[start : start + MAX_MESSAGES]
        entries: Sequence[Any] = [
            {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)
        ]
        with aws_errors("DeleteMessageBatch", queue_url):
            result = sqs_client.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        deleted += [chunk[int(ok["Id"])]["messageId"] for ok in result.get("Successful", [])]
    return deleted


def records_of(event: object) -> list[Mapping[str, Any]]:
    """The records of a Lambda SQS event; ConfigurationError when it is not one."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise ConfigurationError(
            "the event has no 'Records' list: invoke this function from an SQS event source "
            "mapping (or with an event shaped like one)"
        )
    return records
