"""The sweeper: finds reply queues whose owner died without ``close()`` and deletes them.

A queue is deleted only when **all** of these hold, checked in this order (cheapest first):

1. its name starts with the prefix (``ListQueues`` with ``QueueNamePrefix``, every page);
2. it carries heartbeat and retention tags: sqs-rpc's (``sqs-rpc:heartbeat`` in epoch seconds,
   ``sqs-rpc:idle-retention-seconds``) or the AWS Java temporary-queues client's
   (``__AmazonSQSIdleQueueDeletingClient.LastHeartbeatTimestamp`` in epoch milliseconds,
   ``__IdleQueueRetentionPeriodSeconds``). A queue without them is never touched;
3. its last heartbeat is older than its own retention period;
4. for the Java client's queues only: it holds no message, visible, in flight or delayed
   (unless ``include_nonempty``). That is the Java client's own sweeper's rule: its queues
   may host the virtual queues of live owners. An sqs-rpc reply queue is deleted whatever it
   holds: its messages can only be replies to its dead owner, which nobody will ever read.

Races are expected: a queue deleted meanwhile is reported as ``gone``. Throttling errors are
retried with exponential backoff. One queue's failure is reported and the sweep goes on.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import boto3
from botocore.config import Config

from ._attributes import HEARTBEAT_TAG, RETENTION_TAG
from ._aws import make_sqs_client
from ._errors import ConfigurationError, QueueDoesNotExist, SqsError, aws_errors, is_throttling
from ._loop import BackgroundLoop
from ._options import DEFAULT_REPLY_QUEUE_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "JAVA_HEARTBEAT_TAG",
    "JAVA_RETENTION_TAG",
    "PeriodicSweep",
    "SweepDecision",
    "SweepReport",
    "Sweeper",
]

logger = logging.getLogger(__name__)

# The contract between clients and sweepers: reply queue names start with a prefix, and every
# reply queue carries these two tags (set by _client/reply_queue.py).
JAVA_HEARTBEAT_TAG = "__AmazonSQSIdleQueueDeletingClient.LastHeartbeatTimestamp"
JAVA_RETENTION_TAG = "__IdleQueueRetentionPeriodSeconds"
DEFAULT_MAX_DELETIONS = 100
PAGE_SIZE = 1000  # ListQueues' maximum
THROTTLE_ATTEMPTS = 6
THROTTLE_BACKOFF = 0.5  # first retry after a throttling error; doubles each time
_MESSAGE_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)

Action = Literal["deleted", "would_delete", "kept", "gone", "error"]
Owner = Literal["sqs-rpc", "java"]  # whose heartbeat tags a queue carries
T = TypeVar("T")


@dataclass(frozen=True)
class SweepDecision:
    """What the sweeper did with one queue, and why.

    Attributes:
        queue_url: the queue.
        action: ``deleted``; ``would_delete`` (dry run); ``kept``; ``gone`` (deleted by
            someone else meanwhile); ``error`` (an SQS error; see ``reason``).
        reason: a short explanation, for example ``"heartbeat 12s old, retention 600s"``.
        idle_seconds: seconds since the last heartbeat, when the queue has one.
    """

    queue_url: str
    action: Action
    reason: str
    idle_seconds: float | None = None


@dataclass(frozen=True)
class SweepReport:
    """The result of one :meth:`Sweeper.sweep`: a decision per queue checked.

    Example::

        report = Sweeper(region_name="eu-west-1").sweep()
        print(len(report.deleted), "deleted;", len(report.kept), "kept")
    """

    reply_queue_prefix: str
    dry_run: bool
    decisions: tuple[SweepDecision, ...] = field(default_factory=tuple)

    @property
    def checked(self) -> int:
        return len(self.decisions)

    @property
    def deleted(self) -> tuple[SweepDecision, ...]:
        """Queues deleted (or, in a dry run, that would have been)."""
        return tuple(d for d in self.decisions if d.action in ("deleted", "would_delete"))

    @property
    def kept(self) -> tuple[SweepDecision, ...]:
        return tuple(d for d in self.decisions if d.action == "kept")

    @property
    def errors(self) -> tuple[SweepDecision, ...]:
        return tuple(d for d in self.decisions if d.action == "error")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible summary: counts, then every decision."""
        return {
            "reply_queue_prefix": self.reply_queue_prefix,
            "dry_run": self.dry_run,
            "checked": self.checked,
            "deleted": len(self.deleted),
            "kept": len(self.kept),
            "errors": len(self.errors),
            "decisions": [asdict(d) for d in self.decisions],
        }


class Sweeper:
    """Deletes orphaned reply queues under a name prefix.

    Example::

        sweeper = Sweeper(region_name="eu-west-1", dry_run=True)
        for decision in sweeper.sweep().decisions:
            print(decision.action, decision.queue_url, decision.reason)

    Args:
        sqs_client, session, endpoint_url, region_name, botocore_config: as for
            :class:`~sqs_rpc.RpcClient`.
        reply_queue_prefix: only queues whose name starts with this are considered (not empty).
        dry_run: decide, but delete nothing (decisions say ``would_delete``).
        include_nonempty: also delete idle queues of the Java client that still hold
            messages. Idle sqs-rpc reply queues are deleted whatever they hold.
        max_deletions: at most this many deletions per :meth:`sweep`; the rest wait for the
            next run.
    """

    def __init__(
        self,
        *,
        sqs_client: SQSClient | None = None,
        session: boto3.session.Session | None = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        reply_queue_prefix: str = DEFAULT_REPLY_QUEUE_PREFIX,
        dry_run: bool = False,
        include_nonempty: bool = False,
        max_deletions: int = DEFAULT_MAX_DELETIONS,
        botocore_config: Config | None = None,
    ) -> None:
        if not isinstance(reply_queue_prefix, str) or not reply_queue_prefix:
            raise ConfigurationError(
                "reply_queue_prefix must be a non-empty queue name prefix "
                "(for example 'sqs-rpc-reply-'): "
                "a sweeper never lists every queue of the account"
            )
        if (
            isinstance(max_deletions, bool)
            or not isinstance(max_deletions, int)
            or (max_deletions < 0)
        ):
            raise ConfigurationError(f"max_deletions={max_deletions!r} must be an int >= 0")
        self.reply_queue_prefix = reply_queue_prefix
        self.dry_run = dry_run
        self.include_nonempty = include_nonempty
        self.max_deletions = max_deletions
        self._sqs = make_sqs_client(
            sqs_client=sqs_client,
            session=session,
            endpoint_url=endpoint_url,
            region_name=region_name,
            botocore_config=botocore_config,
            long_poll_seconds=0,  # a sweeper never long-polls
        )
        # Set by cancel(): backoff waits end at once, and the sweep stops between queues.
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop a sweep in progress (from another thread) after the current request."""
        self._cancelled.set()

    def list_queue_urls(self) -> Iterator[str]:
        """Every queue URL under the prefix, following ``NextToken`` across pages."""
        token: str | None = None
        while True:
            arguments: dict[str, Any] = {
                "QueueNamePrefix": self.reply_queue_prefix,
                "MaxResults": PAGE_SIZE,
            }
            if token:
                arguments["NextToken"] = token
            response = self._retry(
                "ListQueues", None, functools.partial(self._sqs.list_queues, **arguments)
            )
            yield from response.get("QueueUrls", [])
            token = response.get("NextToken")
            if not token or self._cancelled.is_set():
                return

    def sweep(self) -> SweepReport:
        """Check every queue under the prefix once; delete the orphaned ones.

        Raises :class:`~sqs_rpc.SqsError` only when the queues cannot be listed; a failure on
        one queue is recorded as an ``error`` decision.
        """
        decisions: list[SweepDecision] = []
        deletions = 0
        for url in self.list_queue_urls():
            if self._cancelled.is_set():
                break
            name = url.rstrip("/").rsplit("/", 1)[-1]
            if not name.startswith(self.reply_queue_prefix):
                # Some endpoints ignore QueueNamePrefix; never trust the filter alone.
                continue
            try:
                decision = self._decide(url, capped=deletions >= self.max_deletions)
            except QueueDoesNotExist:
                decision = SweepDecision(url, "gone", "deleted by someone else meanwhile")
            except SqsError as exc:
                logger.warning("sweeper: could not check %s: %s", url, exc)
                decision = SweepDecision(url, "error", str(exc))
            if decision.action in ("deleted", "would_delete"):
                deletions += 1
            logger.info("sweeper: %s %s (%s)", decision.action, url, decision.reason)
            decisions.append(decision)
        return SweepReport(self.reply_queue_prefix, self.dry_run, tuple(decisions))

    def liveness_of(self, url: str) -> tuple[float, float] | None:
        """(last heartbeat in epoch seconds, idle retention in seconds) from the queue's tags.

        None when the queue has neither sqs-rpc's nor the Java client's heartbeat tags.
        """
        liveness = self._liveness_of(url)
        return None if liveness is None else liveness[:2]

    def _liveness_of(self, url: str) -> tuple[float, float, Owner] | None:
        tags = self._retry(
            "ListQueueTags", url, lambda: self._sqs.list_queue_tags(QueueUrl=url)
        ).get("Tags", {})
        return _liveness(tags)

    def _decide(self, url: str, *, capped: bool) -> SweepDecision:
        liveness = self._liveness_of(url)
        if liveness is None:
            return SweepDecision(url, "kept", "no heartbeat/retention tags: not a reply queue")
        heartbeat, retention, owner = liveness
        idle = time.time() - heartbeat
        if idle <= retention:
            return SweepDecision(
                url, "kept", f"alive: heartbeat {idle:.0f}s old, retention {retention:g}s", idle
            )
        # What a dead sqs-rpc client's queue holds are replies to calls that died with it (a
        # reply's delete waits up to 0.2 s to share a batch, and the replies of calls in
        # flight keep coming): garbage, so the queue goes whatever it holds. The Java
        # client's own sweeper keeps a non-empty queue, and so does this one for its queues.
        if owner == "java" and not self.include_nonempty:
            response = self._retry(
                "GetQueueAttributes",
                url,
                lambda: self._sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=list(_MESSAGE_COUNTS),  # type: ignore[arg-type]
                ),
            )
            attributes = {str(k): v for k, v in response.get("Attributes", {}).items()}
            # An endpoint that does not report a count (some emulators lack "Delayed")
            # counts as zero for it; the other two still protect the queue.
            held = sum(int(attributes.get(name, "0")) for name in _MESSAGE_COUNTS)
            if held:
                return SweepDecision(
                    url, "kept", f"idle {idle:.0f}s but holds {held} message(s)", idle
                )
        if capped:
            return SweepDecision(
                url, "kept", f"idle, but max_deletions={self.max_deletions} reached", idle
            )
        reason = f"idle: heartbeat {idle:.0f}s old, retention {retention:g}s"
        if self.dry_run:
            return SweepDecision(url, "would_delete", reason, idle)
        self._retry("DeleteQueue", url, lambda: self._sqs.delete_queue(QueueUrl=url))
        return SweepDecision(url, "deleted", reason, idle)

    def _retry(self, operation: str, url: str | None, request: Callable[[], T]) -> T:
        """Run one SQS request, retrying throttling errors with exponential backoff."""
        attempt = 0
        while True:
            try:
                with aws_errors(operation, url):
                    return request()
            except SqsError as exc:
                attempt += 1
                if not is_throttling(exc) or attempt >= THROTTLE_ATTEMPTS:
                    raise
                delay = THROTTLE_BACKOFF * 2.0 ** (attempt - 1) * random.uniform(0.5, 1.0)
                logger.info("sweeper: %s throttled; retrying in %.1fs", operation, delay)
                if self._cancelled.wait(delay):
                    raise


def _liveness(tags: Mapping[str, str]) -> tuple[float, float, Owner] | None:
    """(last heartbeat in epoch seconds, retention in seconds, whose tags), or None."""
    tag_sets: tuple[tuple[str, str, float, Owner], ...] = (
        (HEARTBEAT_TAG, RETENTION_TAG, 1.0, "sqs-rpc"),
        (JAVA_HEARTBEAT_TAG, JAVA_RETENTION_TAG, 1000.0, "java"),
    )
    for heartbeat_tag, retention_tag, scale, owner in tag_sets:
        if heartbeat_tag in tags and retention_tag in tags:
            try:
                heartbeat = float(tags[heartbeat_tag]) / scale
                retention = float(tags[retention_tag])
            except ValueError:
                return None  # not tags we wrote: hands off
            if not (math.isfinite(heartbeat) and math.isfinite(retention) and retention > 0):
                return None
            return heartbeat, retention, owner
    return None


class PeriodicSweep:
    """Runs a :class:`Sweeper` every ``interval`` seconds (±20% jitter) on a daemon thread.

    The first sweep is a random fraction of an interval after start, so a fleet started
    together does not sweep in step.
    """

    def __init__(
        self,
        sqs: SQSClient,
        *,
        prefixes: Sequence[str],
        interval: float,
        name: str = "sqs-rpc-sweeper",
    ) -> None:
        self._sweepers = [Sweeper(sqs_client=sqs, reply_queue_prefix=p) for p in prefixes]
        self._interval = interval
        self._loop = BackgroundLoop(
            name,
            self._step,
            initial_delay=interval * random.uniform(0.1, 1.0),
            min_backoff=min(interval, 10.0),
            max_backoff=max(interval, 10.0),
        )

    def start(self) -> None:
        self._loop.start()

    def stop(self, timeout: float | None = 60.0) -> bool:
        """Stop sweeping; True once the thread has ended."""
        # Shutdown order: cancel the sweep in progress (its backoff waits end), then join.
        for sweeper in self._sweepers:
            sweeper.cancel()
        return self._loop.stop(timeout)

    def _step(self) -> float:
        for sweeper in self._sweepers:
            report = sweeper.sweep()
            if report.deleted:
                logger.info("swept %d orphaned reply queues", len(report.deleted))
        return self._interval * random.uniform(0.8, 1.2)
