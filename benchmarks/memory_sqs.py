"""An in-process stand-in for a boto3 SQS client, for measuring sqs-rpc's own CPU alone.

Not an SQS emulator and not for tests (they talk HTTP to a real SQS-compatible server): it
keeps queues in dicts and deques under one lock and answers the operations a client and a
``MessagePoller`` make in the way boto3 returns them, with no serialising, signing, HTTP or
parsing. Against it, what a process spends per call is sqs-rpc's own work plus a few dict and
deque operations per request here. Visibility timeouts never expire (a message received stays
hidden until deleted or released with visibility 0); there are no FIFO semantics beyond
passing ``MessageGroupId`` through; queue URLs are ``http://memory/000000000000/NAME``.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MemorySqs"]

_PREFIX = "http://memory/000000000000/"


class _Events:
    """boto3's event system, as far as sqs-rpc uses it: registering handlers that never run."""

    def register(self, *_: Any, **__: Any) -> None:
        pass

    def unregister(self, *_: Any, **__: Any) -> None:
        pass


class _Meta:
    region_name = "us-east-1"
    endpoint_url = "http://memory"
    events = _Events()


@dataclass
class _Queue:
    attributes: dict[str, str]
    ready: deque[dict[str, Any]] = field(default_factory=deque)
    hidden: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class MemorySqs:
    """The SQS operations sqs-rpc's client and server make, in memory (see the module)."""

    meta = _Meta()

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._queues: dict[str, _Queue] = {}
        self._ids = itertools.count()

    def _queue(self, url: str) -> _Queue:
        queue = self._queues.get(url)
        if queue is None:
            raise LookupError(f"no queue {url}")
        return queue

    def create_queue(
        self, QueueName: str, Attributes: Mapping[str, str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        url = _PREFIX + QueueName
        with self._changed:
            queue = self._queues.setdefault(url, _Queue(dict(Attributes or {})))
            queue.tags.update(kwargs.get("tags") or {})
        return {"QueueUrl": url}

    def get_queue_url(self, QueueName: str, **_: Any) -> dict[str, Any]:
        return {"QueueUrl": _PREFIX + QueueName}

    def get_queue_attributes(self, QueueUrl: str, **_: Any) -> dict[str, Any]:
        attributes = {
            "VisibilityTimeout": "30",
            "MessageRetentionPeriod": "345600",
            "QueueArn": "arn:aws:sqs:us-east-1:000000000000:" + QueueUrl.rsplit("/", 1)[1],
        }
        attributes.update(self._queue(QueueUrl).attributes)
        return {"Attributes": attributes}

    def tag_queue(self, QueueUrl: str, Tags: Mapping[str, str], **_: Any) -> dict[str, Any]:
        self._queue(QueueUrl).tags.update(Tags)
        return {}

    def list_queue_tags(self, QueueUrl: str, **_: Any) -> dict[str, Any]:
        return {"Tags": dict(self._queue(QueueUrl).tags)}

    def delete_queue(self, QueueUrl: str, **_: Any) -> dict[str, Any]:
        with self._changed:
            self._queues.pop(QueueUrl, None)
            self._changed.notify_all()
        return {}

    def _put(self, url: str, entry: Mapping[str, Any]) -> str:
        message_id = str(next(self._ids))
        message = {
            "MessageId": message_id,
            "Body": entry["MessageBody"],
            "MessageAttributes": entry.get("MessageAttributes", {}),
            "Attributes": {"SentTimestamp": str(int(time.time() * 1000))},
            "received": 0,
        }
        if "MessageGroupId" in entry:
            message["Attributes"]["MessageGroupId"] = entry["MessageGroupId"]
        self._queue(url).ready.append(message)
        return message_id

    def send_message(self, QueueUrl: str, **entry: Any) -> dict[str, Any]:
        with self._changed:
            message_id = self._put(QueueUrl, entry)
            self._changed.notify_all()
        return {"MessageId": message_id}

    def send_message_batch(self, QueueUrl: str, Entries: list[Any], **_: Any) -> dict[str, Any]:
        with self._changed:
            sent = [{"Id": e["Id"], "MessageId": self._put(QueueUrl, e)} for e in Entries]
            self._changed.notify_all()
        return {"Successful": sent, "Failed": []}

    def receive_message(
        self, QueueUrl: str, MaxNumberOfMessages: int = 1, WaitTimeSeconds: int = 0, **_: Any
    ) -> dict[str, Any]:
        end = time.monotonic() + WaitTimeSeconds
        with self._changed:
            queue = self._queue(QueueUrl)
            while not queue.ready:
                left = end - time.monotonic()
                if left <= 0:
                    return {}
                self._changed.wait(left)
                queue = self._queue(QueueUrl)
            now = str(int(time.time() * 1000))
            messages: list[dict[str, Any]] = []
            while queue.ready and len(messages) < MaxNumberOfMessages:
                message = queue.ready.popleft()
                receipt = uuid.uuid4().hex
                queue.hidden[receipt] = message
                message["received"] += 1
                attributes = dict(message["Attributes"])
                attributes["ApproximateReceiveCount"] = str(message["received"])
                attributes["ApproximateFirstReceiveTimestamp"] = now
                messages.append(
                    {
                        "MessageId": message["MessageId"],
                        "ReceiptHandle": receipt,
                        "Body": message["Body"],
                        "Attributes": attributes,
                        "MessageAttributes": message["MessageAttributes"],
                    }
                )
        return {"Messages": messages}

    def delete_message(self, QueueUrl: str, ReceiptHandle: str, **_: Any) -> dict[str, Any]:
        with self._changed:
            self._queue(QueueUrl).hidden.pop(ReceiptHandle, None)
        return {}

    def delete_message_batch(self, QueueUrl: str, Entries: list[Any], **_: Any) -> dict[str, Any]:
        with self._changed:
            queue = self._queues.get(QueueUrl)
            for entry in Entries:
                if queue is not None:
                    queue.hidden.pop(entry["ReceiptHandle"], None)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def change_message_visibility(
        self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int, **_: Any
    ) -> dict[str, Any]:
        entry = {"Id": "0", "ReceiptHandle": ReceiptHandle, "VisibilityTimeout": VisibilityTimeout}
        self.change_message_visibility_batch(QueueUrl, [entry])
        return {}

    def change_message_visibility_batch(
        self, QueueUrl: str, Entries: list[Any], **_: Any
    ) -> dict[str, Any]:
        with self._changed:
            queue = self._queue(QueueUrl)
            for entry in Entries:
                if entry["VisibilityTimeout"] == 0 and entry["ReceiptHandle"] in queue.hidden:
                    queue.ready.appendleft(queue.hidden.pop(entry["ReceiptHandle"]))
            self._changed.notify_all()
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}
