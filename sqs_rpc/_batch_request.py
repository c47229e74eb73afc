"""One batch request to SQS, and what becomes of each of its entries.

:func:`send_batch` makes one ``SendMessageBatch``, ``DeleteMessageBatch`` or
``ChangeMessageVisibilityBatch`` request and settles each entry's future. Partial failures are
per entry. An entry SQS rejects for the sender's fault fails at once. One that failed for
SQS's own fault (``SenderFault`` false), or that SQS reported neither way, is handed back to
be retried, a few times. SQS validates a batch as one request, so a batch rejected whole is
handed back entry by entry, each to go alone: one caller's invalid message must not fail its
batch-mates. The :class:`~sqs_rpc._batcher.Batcher` decides when and with whom.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._errors import QueueDoesNotExist, SqsError, aws_errors
from ._futures import settle

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["MAX_ENTRY_RETRIES", "OPERATIONS", "Item", "Kind", "send_batch"]

logger = logging.getLogger(__name__)

MAX_ENTRY_RETRIES = 3

# "hide": ChangeMessageVisibility, for messages a server leaves in the queue on purpose; like a
# delete, off everyone's critical path.
Kind = Literal["send", "delete", "hide"]
OPERATIONS: dict[Kind, str] = {
    "send": "SendMessageBatch",
    "delete": "DeleteMessageBatch",
    "hide": "ChangeMessageVisibilityBatch",
}


@dataclass
class Item:
    """One entry of a batch: its request fields, its caller's future and its size in bytes."""

    entry: dict[str, Any]
    future: Future[Any]
    size: int
    queued: float = 0.0  # time.monotonic() when handed in
    retries: int = 0
    alone: bool = False  # sent in a batch of its own (after its batch was rejected whole)


def send_batch(
    sqs: SQSClient,
    kind: Kind,
    queue_url: str,
    batch: list[Item],
    retry: Callable[[Item], None],
) -> float | None:
    """Send ``batch`` as one request; settle each future, or hand the entry to ``retry``.

    Returns the round trip of a ``SendMessageBatch`` in seconds (None for the other kinds):
    the batcher bounds its waits by it.
    """
    entries = [{"Id": str(i), **item.entry} for i, item in enumerate(batch)]
    operation = OPERATIONS[kind]
    round_trip = None
    try:
        with aws_errors(operation, queue_url):
            if kind == "send":
                started = time.monotonic()
                response: Any = sqs.send_message_batch(
                    QueueUrl=queue_url,
                    Entries=entries,  # type: ignore[arg-type]
                )
                round_trip = time.monotonic() - started
            elif kind == "delete":
                response = sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=entries,  # type: ignore[arg-type]
                )
            else:
                response = sqs.change_message_visibility_batch(
                    QueueUrl=queue_url,
                    Entries=entries,  # type: ignore[arg-type]
                )
    except QueueDoesNotExist as exc:
        for item in batch:
            settle(item.future, error=exc)
        return None
    except SqsError as exc:
        if len(batch) == 1:
            settle(batch[0].future, error=exc)
            return None
        logger.debug("%s rejected whole (%s); retrying its entries one by one", operation, exc.code)
        for item in reversed(batch):
            item.alone = True
            retry(item)
        return None
    _settle_entries(operation, queue_url, batch, response, retry)
    return round_trip


def _settle_entries(
    operation: str,
    queue_url: str,
    batch: list[Item],
    response: Any,
    retry: Callable[[Item], None],
) -> None:
    unreported = dict(enumerate(batch))
    for ok in response.get("Successful", []):
        settle(unreported.pop(int(ok["Id"])).future, result=ok.get("MessageId"))
    # An entry SQS reported neither way is retried like one that failed on SQS's side.
    failures = [*response.get("Failed", [])]
    for failed in failures:
        unreported.pop(int(failed["Id"]), None)
    failures += [{"Id": str(i), "Code": "NotReported"} for i in unreported]
    for failed in failures:
        item = batch[int(failed["Id"])]
        if not failed.get("SenderFault") and item.retries < MAX_ENTRY_RETRIES:
            item.retries += 1
            logger.debug("retrying %s entry after %s", operation, failed.get("Code"))
            retry(item)
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
