"""The server's outbox: replies and deletes, sent in batches by one background thread.

Workers hand a reply or a delete to the outbox and block until SQS has answered for it. The
outbox thread sleeps until woken, then takes *everything* queued: replies grouped per reply
queue into ``SendMessageBatch`` requests, deletes into ``DeleteMessageBatch`` requests, 10
entries (and at most 256 KiB) each. There is no linger: a lone message is flushed the moment
it arrives, and whatever accumulates while a flush is in flight goes out together in the next
one. Entries that fail inside a batch are retried on their own (only the failed ones), a few
times for server-side faults; sender faults fail at once.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import SqsError, SqsRpcError, aws_errors
from ._loop import BackgroundLoop
from ._pending import settle
from ._stats import Counters

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["Outbox"]

logger = logging.getLogger(__name__)

MAX_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
ENTRY_ATTEMPTS = 3
RETRY_DELAY = 0.05
# How long a worker waits for the outbox: far longer than botocore's retries of one request.
RESULT_TIMEOUT = 300.0


@dataclass
class _Item:
    arguments: dict[str, Any]
    future: Future[None]
    size: int = 0


def _size(arguments: dict[str, Any]) -> int:
    size = len(str(arguments.get("MessageBody", "")).encode())
    for name, value in arguments.get("MessageAttributes", {}).items():
        size += len(name) + len(value.get("DataType", "")) + len(str(value.get("StringValue", "")))
        size += len(value.get("BinaryValue", b""))
    return size


def _chunks(items: Sequence[_Item]) -> Iterator[list[_Item]]:
    chunk: list[_Item] = []
    size = 0
    for item in items:
        if chunk and (len(chunk) == MAX_ENTRIES or size + item.size > MAX_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item.size
    if chunk:
        yield chunk


class Outbox:
    """Batches a server's replies (per reply queue) and deletes (from its request queue).

    With ``background=False`` there is no thread: each reply or delete is sent at once on the
    caller's thread (the AWS Lambda responder, where threads freeze between invocations).
    """

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        *,
        name: str,
        counters: Counters,
        background: bool = True,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._counters = counters
        self._lock = threading.Lock()
        self._replies: dict[str, list[_Item]] = defaultdict(list)
        self._deletes: list[_Item] = []
        self._pause = threading.Event()  # never set: Event.wait is the retry delay
        # Stopped (or never to be started): _submit flushes on the caller's thread.
        self._background = background
        self._stopped = not background
        self._loop = BackgroundLoop(f"{name}-outbox", self._flush)

    def start(self) -> None:
        if self._background:
            self._loop.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the thread, then flush what is still queued from here, so no worker waits.

        After this, a late worker (one that outlived the shutdown budget) flushes its own
        reply and delete on its own thread.
        """
        self._stopped = True
        stopped = self._loop.stop(timeout)
        self._flush()
        return stopped

    def _submit(self) -> None:
        if self._stopped:
            self._flush()
        else:
            self._loop.wake()

    def send_reply(self, reply_to: str, arguments: dict[str, Any]) -> None:
        """Send one reply; return once SQS accepted it, raise :class:`SqsError` if it did not."""
        item = _Item(arguments, Future(), _size(arguments))
        with self._lock:
            self._replies[reply_to].append(item)
        self._submit()
        item.future.result(RESULT_TIMEOUT)

    def delete(self, receipt_handle: str) -> bool:
        """Delete one request; True once SQS deleted it, False (logged) if it could not."""
        item = _Item({"ReceiptHandle": receipt_handle}, Future())
        with self._lock:
            self._deletes.append(item)
        self._submit()
        try:
            item.future.result(RESULT_TIMEOUT)
        except (SqsRpcError, TimeoutError) as exc:
            logger.warning("could not delete a request (%s); it will be redelivered", exc)
            return False
        return True

    def _flush(self) -> None:
        with self._lock:
            replies, self._replies = self._replies, defaultdict(list)
            deletes, self._deletes = self._deletes, []
        # Replies first: a worker deletes its request only after its reply was accepted, so
        # the deletes queued now belong to replies sent in an earlier flush.
        for reply_to, items in replies.items():
            for chunk in _chunks(items):
                self._send(chunk, "SendMessageBatch", reply_to, self._send_batch)
        for chunk in _chunks(deletes):
            self._send(chunk, "DeleteMessageBatch", self._queue_url, self._delete_batch)
        # None: sleep until the next wake(); a wake() during this flush cuts that sleep short.

    def _send_batch(self, queue_url: str, entries: list[Any]) -> Any:
        return self._sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)

    def _delete_batch(self, queue_url: str, entries: list[Any]) -> Any:
        return self._sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)

    def _send(self, items: list[_Item], operation: str, queue_url: str, call: Any) -> None:
        pending = items
        for attempt in range(ENTRY_ATTEMPTS):
            if attempt:
                self._pause.wait(RETRY_DELAY * 2**attempt)
            by_id = {str(i): item for i, item in enumerate(pending)}
            entries = [{"Id": i, **item.arguments} for i, item in by_id.items()]
            try:
                with aws_errors(operation, queue_url):
                    response = call(queue_url, entries)
            except SqsRpcError as exc:
                # The whole request failed after botocore's own retries: fail every entry.
                for item in pending:
                    settle(item.future, error=exc)
                return
            except Exception as exc:  # never leave a worker waiting on a future
                logger.exception("%s on %s failed unexpectedly", operation, queue_url)
                for item in pending:
                    settle(item.future, error=exc)
                return
            for success in response.get("Successful", []):
                done = by_id.pop(str(success.get("Id")), None)
                if done is not None:
                    self._count(operation)
                    settle(done.future)
            retry: list[_Item] = []
            for failure in response.get("Failed", []):
                failed = by_id.pop(str(failure.get("Id")), None)
                if failed is None:
                    continue
                code = str(failure.get("Code", "Unknown"))
                if failure.get("SenderFault"):
                    error = SqsError(
                        f"{operation} on {queue_url}: entry failed: {code}: "
                        f"{failure.get('Message', '')}",
                        code=code,
                        operation=operation,
                    )
                    settle(failed.future, error=error)
                else:
                    retry.append(failed)
            # Entries SQS reported neither way are retried too.
            pending = retry + list(by_id.values())
            if not pending:
                return
            logger.info("%s on %s: retrying %d failed entries", operation, queue_url, len(pending))
        for item in pending:
            settle(
                item.future,
                error=SqsError(
                    f"{operation} on {queue_url}: entry still failing after "
                    f"{ENTRY_ATTEMPTS} attempts",
                    code="BatchEntryFailed",
                    operation=operation,
                ),
            )

    def _count(self, operation: str) -> None:
        self._counters.add("replies_sent" if operation == "SendMessageBatch" else "deleted")
