"""The baseline: request-response over SQS written directly on boto3, the way a competent
engineer would without sqs-rpc.

One reply queue per client; one SendMessage per request and per reply; batch receive (10, long
poll) and batch delete on both sides; a dict of futures keyed by correlation id. Sequential
calls cost 6 SQS requests each: client Send, Receive, DeleteBatch; server Receive, Send,
DeleteBatch.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


def _attr(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


class BaselineClient:
    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self._url: str = sqs.create_queue(QueueName=f"baseline-reply-{uuid.uuid4().hex}")[
            "QueueUrl"
        ]
        self._futures: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._poll, name="baseline-replies", daemon=True)
        self._thread.start()

    def call_async(self, queue_url: str, payload: Any, timeout: float = 30) -> Future[Any]:
        correlation_id = uuid.uuid4().hex
        future: Future[Any] = Future()
        with self._lock:
            self._futures[correlation_id] = future
        self._sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(payload),
            MessageAttributes={"ReplyTo": _attr(self._url), "CorrelationId": _attr(correlation_id)},
        )
        return future

    def call(self, queue_url: str, payload: Any, timeout: float = 30) -> Any:
        future = self.call_async(queue_url, payload, timeout)
        try:
            return future.result(timeout)
        except TimeoutError:
            with self._lock:  # forget the call so a late reply finds nothing
                for key in [k for k, f in self._futures.items() if f is future]:
                    del self._futures[key]
            raise

    def _poll(self) -> None:
        while not self._stopping:
            messages = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=20,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                continue
            for message in messages:
                attributes = message.get("MessageAttributes", {})
                correlation_id = attributes.get("CorrelationId", {}).get("StringValue", "")
                with self._lock:
                    future = self._futures.pop(correlation_id, None)
                if future is not None:
                    future.set_result(json.loads(message["Body"]))
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )

    def close(self) -> None:
        self._stopping = True
        self._sqs.send_message(QueueUrl=self._url, MessageBody="{}")  # end the long poll
        self._thread.join(30)
        self._sqs.delete_queue(QueueUrl=self._url)

    def __enter__(self) -> BaselineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BaselineServer:
    """Receives batches of 10, handles them on a pool, replies one by one, deletes the batch."""

    def __init__(
        self, sqs: Any, queue_url: str, handle: Callable[[Any], Any], concurrency: int = 8
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._handle = handle
        self._pool = ThreadPoolExecutor(concurrency)
        self._stopping = False
        self._thread = threading.Thread(target=self._poll, name="baseline-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _process(self, message: dict[str, Any]) -> None:
        attributes = message.get("MessageAttributes", {})
        result = self._handle(json.loads(message["Body"]))
        reply_to = attributes.get("ReplyTo", {}).get("StringValue")
        if reply_to:
            self._sqs.send_message(
                QueueUrl=reply_to,
                MessageBody=json.dumps(result),
                MessageAttributes={"CorrelationId": attributes["CorrelationId"]},
            )

    def _poll(self) -> None:
        while not self._stopping:
            messages = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=20,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                continue
            list(self._pool.map(self._process, messages))
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
