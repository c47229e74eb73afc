"""The visibility heartbeat: keeps a message hidden while its handler runs.

SQS hides a received message for the queue's visibility timeout; a handler that runs longer
would see its message delivered again, and run twice. While a handler runs, one background
thread extends the visibility of its message (``ChangeMessageVisibilityBatch``) every
``interval`` seconds, each time to ``timeout`` seconds from now, up to ``max_extension``
seconds after the receive in total; past that cap the message is let go (a stuck handler must
not hold a message for ever). A worker untracks its message in ``finally`` *before* deleting
it, and untracking waits for a beat in progress, so no extension races the delete.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqs_rpc._errors import SqsError, aws_errors
from sqs_rpc._loop import BackgroundLoop, thread_name

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["VisibilityHeartbeat"]

logger = logging.getLogger(__name__)

BATCH = 10


@dataclass
class _Tracked:
    receipt_handle: str
    received: float  # time.monotonic()
    next_beat: float
    capped: bool = False


class VisibilityHeartbeat:
    """Extends the visibility of tracked messages until they are untracked."""

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        *,
        owner: str,
        interval: float,
        timeout: int,
        max_extension: float,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self.interval = interval
        self.timeout = timeout
        self.max_extension = max_extension
        self._lock = threading.Lock()
        self._tracked: dict[int, _Tracked] = {}
        self._ids = itertools.count()
        self._loop = BackgroundLoop(thread_name("visibility", owner), self._beat)

    def start(self) -> None:
        self._loop.start()

    def stop(self, timeout: float | None = None) -> bool:
        return self._loop.stop(timeout)

    def track(self, receipt_handle: str, received: float) -> int:
        """Start extending a message received at ``received`` (monotonic); return a token."""
        token = next(self._ids)
        with self._lock:
            self._tracked[token] = _Tracked(receipt_handle, received, received + self.interval)
        self._loop.wake()
        return token

    def untrack(self, token: int) -> None:
        """Stop extending; returns after any beat in progress, so none follows."""
        with self._lock:
            self._tracked.pop(token, None)

    def _beat(self) -> float | None:
        # The lock is held across the request on purpose: untrack() must not return while an
        # extension for its message is on the wire (it would race the delete that follows).
        with self._lock:
            now = time.monotonic()
            due = [t for t in self._tracked.values() if not t.capped and t.next_beat <= now]
            for start in range(0, len(due), BATCH):
                self._extend(due[start : start + BATCH], now)
            upcoming = [t.next_beat for t in self._tracked.values() if not t.capped]
        return None if not upcoming else max(min(upcoming) - time.monotonic(), 0.0)

    def _extend(self, batch: list[_Tracked], now: float) -> None:
        entries = []
        for i, tracked in enumerate(batch):
            held = now - tracked.received
            seconds = self.timeout
            if held + seconds >= self.max_extension:
                seconds = max(int(self.max_extension - held), 0)
                tracked.capped = True
                logger.warning(
                    "a handler has held its message for %.0fs; not extending past the "
                    "max_visibility_extension of %.0fs: it will be redelivered",
                    held,
                    self.max_extension,
                )
            tracked.next_beat = now + self.interval
            entries.append(
                {
                    "Id": str(i),
                    "ReceiptHandle": tracked.receipt_handle,
                    "VisibilityTimeout": seconds,
                }
            )
        try:
            with aws_errors("ChangeMessageVisibilityBatch", self._queue_url):
                response = self._sqs.change_message_visibility_batch(
                    QueueUrl=self._queue_url,
                    Entries=entries,  # type: ignore[arg-type]
                )
        except SqsError as exc:
            # Retried at the next beat; one miss is harmless while interval < timeout.
            logger.warning("could not extend visibility of %d messages: %s", len(entries), exc)
            return
        for failure in response.get("Failed", []):
            logger.warning("could not extend a message's visibility: %s", failure.get("Message"))
        logger.debug("extended visibility of %d messages by %ds", len(entries), self.timeout)
