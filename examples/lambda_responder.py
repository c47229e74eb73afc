"""A MessageHandler as an AWS Lambda function behind an SQS event source mapping.

    python examples/lambda_responder.py

On AWS: package this file with sqs-rpc (``pip install sqs-rpc -t build/``), set the function's
handler to ``lambda_responder.handler``, and add the request queue as its trigger with
"Report batch item failures" on. docs/lambda.md has the settings and the IAM policy.

Run as a script, it plays Lambda's part on the embedded SQS-compatible server: callers send
requests, then each round receives a batch as Lambda would, invokes the handler with it, and
deletes the records the handler did not report as failed.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future
from typing import Any

from sqs_rpc import EmbeddedSqs, IncomingMessage, MessageHandler, RemoteError, RpcClient
from sqs_rpc.aws_lambda import LambdaResponder, delete_succeeded, receive_event

STOCK = {"apple": 3, "pear": 0}


class Inventory(MessageHandler):
    """Answers stock queries; an unknown item is an error the caller receives."""

    def handle(self, message: IncomingMessage) -> Any:
        item = message.body["item"]
        if item not in STOCK:
            raise KeyError(f"unknown item {item!r}")
        return {"item": item, "in_stock": STOCK[item]}


# Lambda imports this module once per container and calls `handler` for every batch: built
# here, the responder (its boto3 client, its reply cache) is reused while the container is
# warm. On Lambda, AWS_REGION is set and the function's role supplies the credentials.
handler = LambdaResponder(Inventory(), region_name=os.environ.get("AWS_REGION", "us-east-1"))


class LocalContext:
    """The one method of Lambda's context object the responder uses."""

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def main() -> None:
    with EmbeddedSqs() as sqs:
        # As on AWS: a dead-letter queue catches requests that keep failing.
        dead_letters = sqs.create_queue("inventory-dlq")
        dlq_arn = sqs.client().get_queue_attributes(
            QueueUrl=dead_letters, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            "inventory",
            RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        )
        # The same function, built against the embedded server instead of AWS.
        local = LambdaResponder(Inventory(), sqs_client=sqs.client())
        with RpcClient(sqs_client=sqs.client()) as client:
            calls: dict[str, Future[Any]] = {
                item: client.call_async(queue_url, {"item": item}, timeout=30)
                for item in ("apple", "pear", "kiwi")
            }
            # Lambda's event source mapping: receive a batch, invoke, delete the successes.
            invocations = 0
            for _ in range(30):
                if all(call.done() for call in calls.values()):
                    break
                event = receive_event(sqs.client(), queue_url, wait_time_seconds=1)
                if not event["Records"]:
                    continue
                invocations += 1
                response = local(event, LocalContext())
                delete_succeeded(sqs.client(), queue_url, event, response)
                print(
                    f"invocation {invocations}: {len(event['Records'])} records, "
                    f"{len(response['batchItemFailures'])} reported as failed"
                )
            for item, call in calls.items():
                try:
                    print(f"{item}: {call.result(30)}")
                except RemoteError as exc:
                    print(f"{item}: remote error {exc.error_type}: {exc.remote_message}")
        local.close()
        print("stats:", local.stats().handled, "handled,", local.stats().failed, "failed")


if __name__ == "__main__":
    main()
