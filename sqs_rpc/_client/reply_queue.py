"""The client's temporary reply queue: create it, tag its heartbeat, delete it.

SQS has no idle expiry for queues. So every reply queue carries two tags that let a sweeper
find the ones whose owner died. One is the last heartbeat (epoch seconds). The other is the
idle-retention period (seconds) after which, without a heartbeat, the queue counts as
orphaned. Both are defined in ``_sweeper.py``, which reads them.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from typing import TYPE_CHECKING

from sqs_rpc._attributes import HEARTBEAT_TAG, RETENTION_TAG
from sqs_rpc._errors import ConfigurationError, QueueDoesNotExist, aws_errors

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "ReplyQueue",
    "message_retention",
    "validate_prefix",
]

logger = logging.getLogger(__name__)

# How often, and how far apart, an interrupted creation looks for the queue it may have made.
DISCARD_LOOKUPS = 5
DISCARD_LOOKUP_PAUSE = 0.25
REPLY_VISIBILITY_TIMEOUT = 5  # seconds; see create()
# SQS's bounds for MessageRetentionPeriod, in seconds: one minute to 14 days.
MIN_MESSAGE_RETENTION = 60
MAX_MESSAGE_RETENTION = 1_209_600

_MAX_QUEUE_NAME = 80
_ID_LENGTH = 32  # uuid4().hex
MAX_PREFIX_LENGTH = _MAX_QUEUE_NAME - _ID_LENGTH
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def validate_prefix(prefix: str) -> str:
    """Check that ``prefix`` + a 32-character id is a valid SQS queue name."""
    if not prefix or len(prefix) > MAX_PREFIX_LENGTH or not _PREFIX_RE.match(prefix):
        raise ConfigurationError(
            f"reply_queue_prefix {prefix!r} is invalid: use 1 to {MAX_PREFIX_LENGTH} characters "
            "from A-Z, a-z, 0-9, '-' and '_' (SQS queue names are at most 80 characters and "
            "sqs-rpc appends a 32-character id)"
        )
    return prefix


def message_retention(idle_retention: int) -> int:
    """A reply queue's ``MessageRetentionPeriod``: its idle retention, within SQS's bounds.

    A reply that waits that long was never read by a live client (its poller receives at
    once): its caller is gone. So it need not outlive the queue's idle retention, and a dead
    client's leftovers expire by themselves rather than after SQS's default 4 days.
    """
    return min(max(idle_retention, MIN_MESSAGE_RETENTION), MAX_MESSAGE_RETENTION)


class ReplyQueue:
    """One uniquely named, tagged reply queue. Not thread-safe: its owner serialises calls."""

    def __init__(self, sqs: SQSClient, *, prefix: str, retention_seconds: int) -> None:
        self._sqs = sqs
        self.name = validate_prefix(prefix) + uuid.uuid4().hex
        self.retention_seconds = retention_seconds
        self.url: str | None = None
        self._asked = False  # CreateQueue was sent: the queue may exist, URL known or not
        # Epoch seconds (wall clock, which a frozen or suspended process sees jump) of the
        # creation or the last heartbeat SQS accepted: what a sweeper compares with retention.
        self.last_heartbeat = time.time()

    def create(self) -> str:
        """Create the queue with its tags in one request and return its URL."""
        self._asked = True
        with aws_errors("CreateQueue"):
            response = self._sqs.create_queue(
                QueueName=self.name,
                # Long polling is the default for every receive on this queue. A short
                # visibility timeout: a receive whose response is lost on the way (connection
                # reset, read timeout) hides its replies only this long, not SQS's default 30 s.
                # Replies are kept no longer than the idle retention (see message_retention).
                Attributes={
                    "ReceiveMessageWaitTimeSeconds": "20",
                    "VisibilityTimeout": str(REPLY_VISIBILITY_TIMEOUT),
                    "MessageRetentionPeriod": str(message_retention(self.retention_seconds)),
                },
                tags={
                    HEARTBEAT_TAG: str(int(self.last_heartbeat)),
                    RETENTION_TAG: str(self.retention_seconds),
                },
            )
        self.url = response["QueueUrl"]
        logger.info("created reply queue %s", self.url)
        return self.url

    def heartbeat(self) -> None:
        """Refresh the heartbeat tag."""
        if self.url is None:
            return
        now = time.time()
        with aws_errors("TagQueue", self.url):
            self._sqs.tag_queue(QueueUrl=self.url, Tags={HEARTBEAT_TAG: str(int(now))})
        self.last_heartbeat = now

    def discard(self) -> None:
        """Delete the queue after a failed :meth:`create`, even one whose URL never came back.

        An interrupted CreateQueue may have created the queue: its name finds it. The request
        may still be on its way to SQS when the client gave up on it, so "no such queue" is
        asked again a few times over about a second. A queue created even later carries its
        heartbeat tags: a sweeper removes it after its idle retention.
        """
        if self.url is None and self._asked:
            pause = threading.Event()
            for attempt in range(DISCARD_LOOKUPS):
                try:
                    with aws_errors("GetQueueUrl"):
                        self.url = self._sqs.get_queue_url(QueueName=self.name)["QueueUrl"]
                    break
                except QueueDoesNotExist:
                    if attempt == DISCARD_LOOKUPS - 1:
                        return  # never created, as far as SQS can tell
                    pause.wait(DISCARD_LOOKUP_PAUSE)
        self._asked = False
        self.delete()

    def delete(self) -> None:
        """Delete the queue; a queue already gone is not an error."""
        if self.url is None:
            return
        url, self.url = self.url, None
        try:
            with aws_errors("DeleteQueue", url):
                self._sqs.delete_queue(QueueUrl=url)
        except QueueDoesNotExist:
            logger.info("reply queue %s was already deleted", url)
            return
        logger.info("deleted reply queue %s", url)
