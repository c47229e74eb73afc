"""A client's reply channel: its reply queue, pending map, reply poller and heartbeat.

They live and die together. :meth:`ReplyChannel.open` creates them: one CreateQueue, two
threads and one heartbeat registration; all or nothing, with :meth:`ReplyChannel.abandon`.
:meth:`ReplyChannel.stop` ends the threads, and :meth:`ReplyChannel.delete_queue` then
deletes the queue. :meth:`ReplyChannel.lose` handles a queue deleted underneath;
:meth:`ReplyChannel.retire`, a queue flooded with junk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqs_rpc._batcher import Batcher
from sqs_rpc._codecs import Codec
from sqs_rpc._errors import ClientClosedError, ReplyQueueLost, SqsError
from sqs_rpc._loop import in_thread, stop_all, thread_name
from sqs_rpc._payload_store import PayloadStore

from .heartbeat import SCHEDULER, Registration
from .pending import PendingCalls
from .reply_poller import ReplyPoller
from .reply_queue import ReplyQueue

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["DELETE_TIMEOUT", "ReplyChannel"]

logger = logging.getLogger(__name__)

# How long a close waits for DeleteQueue. A healthy SQS answers in milliseconds; one that
# does not answer must not hold a close (botocore would retry for minutes).
DELETE_TIMEOUT = 5.0


class ReplyChannel:
    """One reply queue with the threads that serve it.

    Built inert; :meth:`open` creates the queue and starts the threads. If ``open`` fails,
    or anything interrupts it (a ``KeyboardInterrupt`` included), its owner calls
    :meth:`abandon`, which undoes whatever part of it was done.
    """

    def __init__(
        self,
        sqs: SQSClient,
        *,
        prefix: str,
        owner: str,
        codec: Codec,
        payloads: PayloadStore,
        batcher: Batcher,
        heartbeat_interval: float,
        idle_retention: int,
        wait_time_seconds: int,
        on_lost: Callable[[ReplyChannel], None],
        on_flooded: Callable[[ReplyChannel], None] | None = None,
    ) -> None:
        """``owner`` is the client's :func:`~sqs_rpc._loop.owner_id`, for the thread names."""
        self._sqs = sqs
        self.queue = ReplyQueue(sqs, prefix=prefix, retention_seconds=idle_retention)
        self.pending = PendingCalls(thread_name("timeouts", owner))
        self.url = ""  # set by open()
        self._owner = owner
        self._codec = codec
        self._payloads = payloads
        self._batcher = batcher
        self._heartbeat_interval = heartbeat_interval
        self._idle_retention = idle_retention
        self._wait_time = wait_time_seconds
        self._on_lost = on_lost
        self._on_flooded = on_flooded
        self._poller: ReplyPoller | None = None
        self._heartbeat: Registration | None = None

    def open(self) -> None:
        """Create the queue, start the timer and poller, and register the heartbeat."""
        self.url = self.queue.create()
        self._poller = ReplyPoller(
            self._sqs,
            self.url,
            self.pending,
            self._codec,
            self._batcher,
            payloads=self._payloads,
            name=thread_name("replies", self._owner),
            wait_time_seconds=self._wait_time,
            on_lost=lambda: self._on_lost(self),
            on_flooded=None if self._on_flooded is None else self._flooded,
        )
        self.pending.start()
        self._poller.start()
        self._heartbeat = SCHEDULER.register(
            self.queue,
            interval=self._heartbeat_interval,
            on_lost=lambda: self._on_lost(self),
        )

    def abandon(self, timeout: float | None = None) -> None:
        """Undo an :meth:`open` that failed or was interrupted, at any point. Idempotent.

        Stops the threads it started, leaves the heartbeat, and deletes the queue if SQS
        created it (found by name when the URL never came back).
        """
        self.pending.fail_all(
            lambda cid: ClientClosedError(f"the reply queue of call {cid} could not be made"),
            close=True,
        )
        stop_all([self.pending, self._poller], timeout)
        SCHEDULER.forget(self.queue, timeout)
        self._delete(self.queue.discard, DELETE_TIMEOUT)

    def stop(self, timeout: float | None = None) -> bool:
        """Fail waiting calls and stop the threads; True if they ended within ``timeout``.

        Idempotent. The queue stays: :meth:`delete_queue` deletes it once the client has
        flushed its batcher, so that the replies' deletes still find their queue.
        """
        failed = self.pending.fail_all(
            lambda cid: ClientClosedError(f"the client was closed while call {cid} waited"),
            close=True,
        )
        if failed:
            logger.info("closing client: failed %d pending calls", failed)
        # Shutdown order: (1) waiting callers fail (above), so no one waits on a closing
        # client; (2) the timer stops; (3) the queue leaves the heartbeat; (4) the poller is
        # woken and joined.
        return stop_all([self.pending, self._heartbeat, self._poller], timeout)

    def delete_queue(self, timeout: float = DELETE_TIMEOUT) -> bool:
        """Delete the reply queue within ``timeout`` seconds; True if it is gone.

        Call after :meth:`stop`: the poller never sees it gone. A queue not deleted is logged
        and left for a sweeper. A request without an answer in time is left behind, on a
        daemon thread that ends when botocore gives up.
        """
        return self._delete(self.queue.delete, timeout)

    def _delete(self, delete: Callable[[], None], timeout: float) -> bool:
        where = self.queue.url or self.queue.name
        try:
            in_thread(delete, thread_name("closing", self._owner)).result(timeout)
        except Exception as exc:  # FutureTimeout (no answer) or SqsError
            logger.warning(
                "reply queue %s was not deleted (%s); it is left for the sweeper, which may "
                "delete it %ds after its last heartbeat",
                where,
                str(exc) or f"no answer within {timeout:g}s",
                self._idle_retention,
            )
            return False
        return True

    def lose(self) -> None:
        """The queue was deleted underneath: fail the waiting calls now, and stop.

        Runs on the poller's or the heartbeat's thread, so it only signals the poller.
        :meth:`stop`, from ``close()``, joins it.
        """
        logger.warning(
            "reply queue %s was deleted while the client was open; failing its waiting calls "
            "and creating a new queue on the next call",
            self.queue.name,
        )
        self._shut(
            lambda cid: ReplyQueueLost(
                f"the reply queue {self.queue.name} was deleted while call {cid} waited (by an "
                "operator or a sweeper), so its reply cannot arrive. Retrying is safe: the "
                "client makes a new reply queue. If a sweeper did it, check that the client's "
                "heartbeat can keep up (see docs/operations.md)"
            )
        )
        self.queue.url = None  # nothing left to delete

    def _shut(self, error: Callable[[str], BaseException]) -> None:
        """Fail waiting (and later) calls with ``error``; stop the timer, heartbeat and poller.

        Signals the poller only: this runs on its thread or the heartbeat's.
        """
        self.pending.fail_all(error, close=True)
        self.pending.stop()
        if self._heartbeat is not None:
            self._heartbeat.stop(30)
        if self._poller is not None:
            self._poller.signal_stop()

    def _flooded(self) -> None:
        if self._on_flooded is not None:
            self._on_flooded(self)

    def retire(self) -> None:
        """The client moved to a new queue: delete this one once no call waits on it.

        Calls already waiting still get their replies from here. Runs on the poller's thread.
        """
        if self._poller is not None:
            self._poller.retire(self._close_idle)

    def _close_idle(self) -> None:
        """On the poller's thread, once the retired queue has no call waiting."""
        # A call that got this queue's address just before the client moved on fails at once,
        # unsent, rather than waiting for a reply that cannot come.
        self._shut(
            lambda cid: ReplyQueueLost(
                f"the reply queue {self.queue.name} was abandoned before call {cid} was sent: "
                "it was flooded with messages that answer no call. The request was not sent; "
                "retrying is safe"
            )
        )
        try:
            self.queue.delete()  # and the junk in it, in one request
        except SqsError as exc:
            # Its heartbeat has stopped: a sweeper deletes it after its idle retention.
            logger.warning("could not delete abandoned reply queue %s: %s", self.queue.name, exc)

    def is_alive(self) -> bool:
        """True while the poller thread runs."""
        return self._poller is not None and self._poller.is_alive()
