"""A client's reply channel: its reply queue, pending map, reply poller and heartbeat.

They live and die together. :meth:`ReplyChannel.open` creates them: one CreateQueue, two
threads and one heartbeat registration. :meth:`ReplyChannel.stop` ends the threads, and
:meth:`ReplyChannel.delete_queue` then deletes the queue. :meth:`ReplyChannel.lose` handles
a queue deleted underneath; :meth:`ReplyChannel.retire`, a queue flooded with junk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqs_rpc._batcher import Batcher
from sqs_rpc._codecs import Codec
from sqs_rpc._errors import ClientClosedError, ReplyQueueLost, SqsError
from sqs_rpc._loop import stop_all, thread_name
from sqs_rpc._payload_store import PayloadStore

from .heartbeat import SCHEDULER, Registration
from .pending import PendingCalls
from .reply_poller import ReplyPoller
from .reply_queue import ReplyQueue

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["ReplyChannel"]

logger = logging.getLogger(__name__)


class ReplyChannel:
    """One reply queue with the threads that serve it. Create with :meth:`open`."""

    def __init__(self, queue: ReplyQueue, pending: PendingCalls, url: str) -> None:
        self.queue = queue
        self.pending = pending
        self.url = url
        self._poller: ReplyPoller | None = None
        self._heartbeat: Registration | None = None

    @classmethod
    def open(
        cls,
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
    ) -> ReplyChannel:
        """Create the queue, start the timer and poller, and register the heartbeat.

        ``owner`` is the client's :func:`~sqs_rpc._loop.owner_id`, for the thread names.
        """
        queue = ReplyQueue(sqs, prefix=prefix, retention_seconds=idle_retention)
        url = queue.create()
        channel = cls(queue, PendingCalls(thread_name("timeouts", owner)), url)
        channel._poller = ReplyPoller(
            sqs,
            url,
            channel.pending,
            codec,
            batcher,
            payloads=payloads,
            name=thread_name("replies", owner),
            wait_time_seconds=wait_time_seconds,
            on_lost=lambda: on_lost(channel),
            on_flooded=None if on_flooded is None else lambda: on_flooded(channel),
        )
        channel.pending.start()
        channel._poller.start()
        channel._heartbeat = SCHEDULER.register(
            queue,
            interval=heartbeat_interval,
            on_lost=lambda: on_lost(channel),
        )
        return channel

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

    def delete_queue(self) -> None:
        """Delete the reply queue. Call after :meth:`stop`: the poller never sees it gone."""
        self.queue.delete()

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
        self.pending.fail_all(
            lambda cid: ReplyQueueLost(
                f"the reply queue {self.queue.name} was deleted while call {cid} waited (by an "
                "operator or a sweeper), so its reply cannot arrive. Retrying is safe: the "
                "client makes a new reply queue. If a sweeper did it, check that the client's "
                "heartbeat can keep up (see docs/operations.md)"
            ),
            close=True,
        )
        self.pending.stop()
        if self._heartbeat is not None:
            self._heartbeat.stop(30)
        if self._poller is not None:
            self._poller.signal_stop()
        self.queue.url = None  # nothing left to delete

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
        self.pending.fail_all(
            lambda cid: ReplyQueueLost(
                f"the reply queue {self.queue.name} was abandoned before call {cid} was sent: "
                "it was flooded with messages that answer no call. The request was not sent; "
                "retrying is safe"
            ),
            close=True,
        )
        self.pending.stop()
        if self._heartbeat is not None:
            self._heartbeat.stop(30)
        if self._poller is not None:
            self._poller.signal_stop()
        try:
            self.queue.delete()  # and the junk in it, in one request
        except SqsError as exc:
            # Its heartbeat has stopped: a sweeper deletes it after its idle retention.
            logger.warning("could not delete abandoned reply queue %s: %s", self.queue.name, exc)

    def is_alive(self) -> bool:
        """True while the poller thread runs."""
        return self._poller is not None and self._poller.is_alive()
