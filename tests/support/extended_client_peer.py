"""A peer that speaks SQS through AWS's own Python extended client (amazon-sqs-extended-client).

Run as a subprocess by tests/integration/test_offload.py: importing ``sqs_extended_client`` replaces
``boto3.Session`` for the whole process, which must not happen inside the test process.

    python -m tests.support.extended_client_peer call  ENDPOINT BUCKET REQUEST_QUEUE REPLY_QUEUE
    python -m tests.support.extended_client_peer serve ENDPOINT BUCKET REQUEST_QUEUE

``call`` sends the JSON on its standard input as a request through S3 (always), then receives
the reply through the extended client, prints its body, and deletes it (the extended client
deletes the S3 object).
``serve`` receives one request, replies through S3 with ``{"echo": body}``, and deletes the
request (and its S3 object).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import Any

import boto3
import sqs_extended_client  # noqa: F401  (replaces boto3.Session with the extended session)
from botocore.config import Config

REGION = "us-east-1"
DEADLINE = 30.0


def clients(endpoint: str, bucket: str) -> Any:
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    # The extended client's settings are attributes its session adds to the SQS client.
    sqs: Any = session.client("sqs", endpoint_url=endpoint)
    sqs.s3_client = session.client(
        "s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"})
    )
    sqs.large_payload_support = bucket
    sqs.always_through_s3 = True
    sqs.delete_payload_from_s3 = True
    return sqs


def receive_one(sqs: Any, queue_url: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MessageAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        if messages:
            message: dict[str, Any] = messages[0]
            return message
    raise SystemExit(f"no message on {queue_url} within {DEADLINE:g}s")


def string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def call(sqs: Any, request_queue: str, reply_queue: str, payload: str) -> None:
    correlation_id = uuid.uuid4().hex
    sqs.send_message(
        QueueUrl=request_queue,
        MessageBody=payload,
        MessageAttributes={"ReplyTo": string(reply_queue), "CorrelationId": string(correlation_id)},
    )
    reply = receive_one(sqs, reply_queue)
    assert reply["MessageAttributes"]["CorrelationId"]["StringValue"] == correlation_id
    sqs.delete_message(QueueUrl=reply_queue, ReceiptHandle=reply["ReceiptHandle"])
    print(reply["Body"])


def serve(sqs: Any, request_queue: str) -> None:
    request = receive_one(sqs, request_queue)
    attributes = request["MessageAttributes"]
    sqs.send_message(
        QueueUrl=attributes["ReplyTo"]["StringValue"],
        MessageBody=json.dumps({"echo": json.loads(request["Body"])}),
        MessageAttributes={
            "CorrelationId": attributes["CorrelationId"],
            "ContentType": string("application/json"),
            "Status": string("ok"),
        },
    )
    sqs.delete_message(QueueUrl=request_queue, ReceiptHandle=request["ReceiptHandle"])


def main(argv: list[str]) -> None:
    mode, endpoint, bucket, request_queue, *rest = argv
    sqs = clients(endpoint, bucket)
    if mode == "call":
        call(sqs, request_queue, rest[0], sys.stdin.read())
    else:
        serve(sqs, request_queue)


if __name__ == "__main__":
    main(sys.argv[1:])
