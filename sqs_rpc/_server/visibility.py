"""The visibility heartbeat: keeps a message hidden while its handler runs.

SQS hides a received message for the queue's visibility timeout; a handler that runs longer
would see its message delivered again, and run twice. While a handler runs, one background
thread extends the visibility of its message (``ChangeMessageVisibilityBatch``) every
``interval`` seconds, each time to ``timeout`` seconds from now, up to ``max_extension``
seconds after the receive in total; past that cap the message is let go (a stuck handler must
not hold a message for ever). A worker untracks its message in ``finally`` *before* deleting
it, and untracking waits for an extension of *that* message on the wire, so none races the
delete. No lock is held during a request: a slow SQS delays no other worker.

The thread sleeps until the earliest beat due, and when idle for one ``interval``: a message
tracked meanwhile is due no sooner than that next look. It is woken only by a message whose
first beat comes before its next look (one received before the look and tracked after it).
Tracking a message thus costs a dict entry, not a thread wake-up, under load and alone alike;
an idle poller's heartbeat looks once per ``interval``.
"""

from __future__ import annotations

import itertools
import logging
import math
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
    token: int
    receipt_handle: str
    received: float  # time.monotonic()
    next_beat: float
    capped: bool = False
    sending: bool = False  # an extension of this message is on the wire


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
        # Guards _tracked and each entry's fields; never held during a request to SQS.
        self._lock = threading.Condition()
        self._tracked: dict[int, _Tracked] = {}
        # When the thread looks next (monotonic): a message due earlier wakes it.
        self._looks = math.inf
        self._ids = itertools.count()
        self._loop = BackgroundLoop(thread_name("visibility", owner), self._beat)

    def start(self) -> None:
        self._loop.start()

    def stop(self, timeout: float | None = None) -> bool:
        return self._loop.stop(timeout)

    def track(self, receipt_handle: str, received: float) -> int:
        """Start extending a message received at ``received`` (monotonic); return a token."""
        token = next(self._ids)
        next_beat = received + self.interval
        with self._lock:
            self._tracked[token] = _Tracked(token, receipt_handle, received, next_beat)
            wake = next_beat < self._looks
            if wake:
                self._looks = next_beat
        if wake:
            self._loop.wake()
        return token

    def untrack(self, token: int) -> None:
        """Stop extending; returns after an extension of this message on the wire, if any."""
        with self._lock:
            tracked = self._tracked.pop(token, None)
            if tracked is not None:
                # Only this message's own extension is waited for: the delete that follows
                # must not race it. Other messages' extensions are none of its business.
                self._lock.wait_for(lambda: not tracked.sending)

    def _beat(self) -> float | None:
        with self._lock:
            # Looking now: a message tracked during this step is seen at its end (below), so
            # it need not wake the thread.
            self._looks = -math.inf
            now = time.monotonic()
            due = [t for t in self._tracked.values() if not t.capped and t.next_beat <= now]
        for start in range(0, len(due), BATCH):
            self._extend(due[start : start + BATCH], now)
        with self._lock:
            upcoming = [t.next_beat for t in self._tracked.values() if not t.capped]
            # Idle, it looks again one interval from now: a message tracked from now on is
            # due no sooner than that, so it wakes nobody.
            self._looks = min(upcoming, default=time.monotonic() + self.interval)
            looks = self._looks
        return max(looks - time.monotonic(), 0.0)

    def _extend(self, batch: list[_Tracked], now: float) -> None:
        # Snapshot under the lock, send outside it: track() and untrack() of other messages
        # go on while the request is on the wire (an endpoint may take seconds to answer).
        with self._lock:
            batch = [t for t in batch if self._tracked.get(t.token) is t]  # still tracked
            entries = [self._entry(i, tracked, now) for i, tracked in enumerate(batch)]
            for tracked in batch:
                tracked.sending = True
        if not entries:
            return
        try:
            self._send(entries)
        finally:
            with self._lock:
                for tracked in batch:
                    tracked.sending = False
                self._lock.notify_all()

    def _entry(self, index: int, tracked: _Tracked, now: float) -> dict[str, object]:
        held = now - tracked.received
        seconds = self.timeout
        if held + seconds >= self.max_extension:
            seconds = max(int(self.max_extension - held), 0)
            tracked.capped = True
            logger.warning(
                "a message has been held for %.0fs; not extending past the "
                "max_visibility_extension of %.0fs: it will be redelivered",
                held,
                self.max_extension,
            )
        tracked.next_beat = now + self.interval
        return {
            "Id": str(index),
            "ReceiptHandle": tracked.receipt_handle,
            "VisibilityTimeout": seconds,
        }

    def _send(self, entries: list[dict[str, object]]) -> None:
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
