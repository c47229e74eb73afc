"""Coalescing SendMessage and DeleteMessage into their batch forms, without a fixed linger.

Callers hand an entry to the :class:`Batcher` and get a future. A flusher thread takes up to 10
entries for one queue (within SQS's 1 MiB batch limit) and sends them in one request. Nothing
waits on a timer: a lone entry goes out at once, and entries that arrive while a batch is in
flight wait for the next one. Under load the batches fill by themselves; when idle, the cost is
one thread hand-off.

Partial failures are per entry: an entry SQS rejects for the sender's fault fails its future at
once; one that failed for SQS's own fault (``SenderFault`` false) is retried, alone, a few times.
A request that SQS rejects as a whole is retried entry by entry, each alone: SQS validates a
batch as one request, and one caller's invalid message (a FIFO message without a group id)
must not fail the messages that happened to share its batch.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._errors import ClientClosedError, QueueDoesNotExist, SqsError, aws_errors
from ._loop import BackgroundLoop
from ._pending import settle
from ._wire import MAX_MESSAGE_BYTES, message_size

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_ENTRIES", "Batcher"]

logger = logging.getLogger(__name__)

MAX_BATCH_ENTRIES = 10  # SQS's limit for SendMessageBatch and DeleteMessageBatch
MAX_BATCH_BYTES = MAX_MESSAGE_BYTES  # SQS caps a whole batch at the size of one message
MAX_ENTRY_RETRIES = 3

Kind = Literal["send", "delete"]


@dataclass
class _Item:
    entry: dict[str, Any]
    future: Future[Any]
    size: int
    retries: int = 0
    alone: bool = False  # sent in a batch of its own (after its batch was rejected whole)


@dataclass
class _Queue:
    items: deque[_Item] = field(default_factory=deque)


class Batcher:
    """Batches sends and deletes per queue on ``workers`` flusher threads.

    ``send`` futures resolve to the SQS message id; ``delete`` futures to None.
    """

    def __init__(self, sqs: SQSClient, *, name: str, workers: int = 2) -> None:
        self._sqs = sqs
        self._cond = threading.Condition()
        # (kind, queue_url) -> entries waiting, oldest first; flushers take queues round-robin.
        self._waiting: OrderedDict[tuple[Kind, str], _Queue] = OrderedDict()
        self._closed = False
        self._loops = [
            BackgroundLoop(f"{name}-batcher-{i}", self._flush_once) for i in range(workers)
        ]
        for loop in self._loops:
            loop.start()

    def send(self, queue_url: str, arguments: Mapping[str, Any]) -> Future[str]:
        """Queue a message (``SendMessage`` arguments without ``QueueUrl``) for sending."""
        entry = dict(arguments)
        return self._put("send", queue_url, entry, message_size(entry))

    def delete(self, queue_url: str, receipt_handle: str) -> Future[None]:
        """Queue a message for deletion."""
        return self._put("delete", queue_url, {"ReceiptHandle": receipt_handle}, 0)

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is queued, then stop the flushers. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for loop in self._loops:
            loop.wake()
        # Shutdown order: flushers drain the queues (they stop taking new entries only once
        # closed *and* empty), then they are stopped and joined.
        with self._cond:
            drained = self._cond.wait_for(lambda: not self._waiting, timeout)
        for loop in self._loops:
            loop.stop(timeout)
        if not drained:
            self._fail_waiting()

    def _put(self, kind: Kind, queue_url: str, entry: dict[str, Any], size: int) -> Future[Any]:
        future: Future[Any] = Future()
        with self._cond:
            if self._closed:
                raise ClientClosedError("the batcher is closed")
            self._waiting.setdefault((kind, queue_url), _Queue()).items.append(
                _Item(entry, future, size)
            )
        for loop in self._loops:
            loop.wake()
        return future

    def _take(self) -> tuple[Kind, str, list[_Item]] | None:
        with self._cond:
            if not self._waiting:
                self._cond.notify_all()  # close() waits for this
                return None
            (kind, queue_url), queue = next(iter(self._waiting.items()))
            batch: list[_Item] = []
            size = 0
            while queue.items and len(batch) < MAX_BATCH_ENTRIES:
                item = queue.items[0]
                if batch and (item.alone or size + item.size > MAX_BATCH_BYTES):
                    break
                batch.append(queue.items.popleft())
                size += item.size
                if item.alone:
                    break
            del self._waiting[(kind, queue_url)]
            if queue.items:  # what is left goes to the back: queues take turns
                self._waiting[(kind, queue_url)] = queue
            return kind, queue_url, batch

    def _flush_once(self) -> float | None:
        taken = self._take()
        if taken is None:
            return None  # wait for _put's wake()
        kind, queue_url, batch = taken
        entries = [{"Id": str(i), **item.entry} for i, item in enumerate(batch)]
        operation = "SendMessageBatch" if kind == "send" else "DeleteMessageBatch"
        try:
            with aws_errors(operation, queue_url):
                if kind == "send":
                    response: Any = self._sqs.send_message_batch(
                        QueueUrl=queue_url,
                        Entries=entries,  # type: ignore[arg-type]
                    )
                else:
                    response = self._sqs.delete_message_batch(
                        QueueUrl=queue_url,
                        Entries=entries,  # type: ignore[arg-type]
                    )
        except QueueDoesNotExist as exc:
            for item in batch:
                settle(item.future, error=exc)
            return 0
        except SqsError as exc:
            if len(batch) == 1:
                settle(batch[0].future, error=exc)
                return 0
            logger.debug(
                "%s rejected whole (%s); retrying its entries one by one", operation, exc.code
            )
            for item in reversed(batch):
                item.alone = True
                self._requeue(kind, queue_url, item)
            return 0
        for ok in response.get("Successful", []):
            settle(batch[int(ok["Id"])].future, result=ok.get("MessageId"))
        for failed in response.get("Failed", []):
            item = batch[int(failed["Id"])]
            if not failed.get("SenderFault") and item.retries < MAX_ENTRY_RETRIES:
                item.retries += 1
                logger.debug("retrying %s entry after %s", operation, failed.get("Code"))
                self._requeue(kind, queue_url, item)
                continue
            settle(
                item.future,
                error=SqsError(
                    f"{operation} on {queue_url}: entry failed: {failed.get('Code')}: "
                    f"{failed.get('Message')}",
                    code=str(failed.get("Code", "Unknown")),
                    operation=operation,
                ),
            )
        return 0

    def _requeue(self, kind: Kind, queue_url: str, item: _Item) -> None:
        with self._cond:
            queue = self._waiting.setdefault((kind, queue_url), _Queue())
            queue.items.appendleft(item)

    def _fail_waiting(self) -> None:
        with self._cond:
            waiting, self._waiting = self._waiting, OrderedDict()
        for queue in waiting.values():
            for item in queue.items:
                settle(item.future, error=ClientClosedError("closed before the batch was sent"))
