"""What an RpcClient sends and receives with, in one process.

A :class:`Transport` holds the boto3 client, the batcher, the reply channel and the optional
sweeper. The batcher and the reply channel are created on first use. In a forked child, the
transport forgets the parent's queue and threads. Its next use rebuilds the boto3 client,
which needs one that sqs-rpc built: an injected one cannot cross a fork.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING

from sqs_rpc._aws import RequestCounter
from sqs_rpc._batcher import Batcher
from sqs_rpc._codecs import Codec
from sqs_rpc._errors import ClientClosedError, QueueDoesNotExist, RpcTimeout, SqsError
from sqs_rpc._loop import stop_all, thread_name
from sqs_rpc._outgoing import OutgoingMessage
from sqs_rpc._payload_store import PayloadStore
from sqs_rpc._sweeper import PeriodicSweep

from .pending import PendingCalls
from .reply_channel import DELETE_TIMEOUT, ReplyChannel

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["REPLY_DELETE_DELAY", "SEND_LINGER", "Transport"]

logger = logging.getLogger(__name__)

# How long a received reply's delete may wait for others to share its DeleteMessageBatch. The
# caller already has its reply; the reply queue's visibility timeout (5 s) is far longer.
REPLY_DELETE_DELAY = 0.2
# How long a request waits for others to share its SendMessageBatch, only while other calls
# are in flight (see _batcher.py). A lone call goes at once.
SEND_LINGER = 0.01
# A client moves away from a flooded reply queue at most this often, and keeps at most this
# many abandoned queues draining for the calls still waiting on them: an attacker who finds
# each new queue at once (ListQueues) cannot make the client create queues without end.
MIN_ROTATION_INTERVAL = 60.0
MAX_DRAINING = 3
# How long undoing a failed reply queue creation waits for the threads it had started.
ABANDON_TIMEOUT = 5.0


class Transport:
    """Sends a client's requests and routes the replies back, on one process's threads.

    ``owner`` is the client's :func:`~sqs_rpc._loop.owner_id`, for the thread names.
    ``rebuild`` makes a new boto3 client in a forked child; None for an injected one.
    ``requests`` counts the requests of whichever boto3 client is in use.
    """

    def __init__(
        self,
        sqs: SQSClient,
        *,
        rebuild: Callable[[], SQSClient] | None,
        requests: RequestCounter,
        owner: str,
        prefix: str,
        codec: Codec,
        payloads: PayloadStore,
        heartbeat_interval: float,
        idle_retention: int,
        reply_wait: int,
        sweep_interval: float | None,
    ) -> None:
        self._sqs = sqs
        self._rebuild = rebuild
        self._requests = requests
        self._owner = owner
        self._prefix = prefix
        self._codec = codec
        self._payloads = payloads
        self._heartbeat_interval = heartbeat_interval
        self._idle_retention = idle_retention
        self._reply_wait = reply_wait
        self._sweep_interval = sweep_interval
        self._pid = os.getpid()
        # Guards the fields below: the poller and the heartbeat report a lost queue here.
        self._lock = threading.Lock()
        self._stopped = False
        self._reply: ReplyChannel | None = None
        # Channels whose queue was lost, kept until stop() joins their pollers.
        self._retired: list[ReplyChannel] = []
        self._rotated: float | None = None  # time.monotonic() of the last move off a flood
        self._batcher: Batcher | None = None
        self._sweep = self._make_sweep()
        requests.watch(sqs)

    @property
    def reply_queue_url(self) -> str | None:
        reply = self._reply
        return reply.url if reply is not None else None

    def pending_calls(self) -> int:
        reply = self._reply
        return len(reply.pending) if reply is not None else 0

    def start(self) -> None:
        """Get ready for use in this process; start the sweep, if any. Idempotent.

        The first use in a forked child rebuilds the boto3 client. The owner serialises calls.
        """
        if os.getpid() != self._pid:
            self._adopt()
        if self._sweep is not None:
            self._sweep.start()

    def reply_address(self) -> tuple[PendingCalls, str]:
        """The pending map and URL of a live reply queue, created on first use."""
        self._check_after_pause()
        with self._lock:
            self._check_running()
            if self._reply is None:
                channel = ReplyChannel(
                    self._sqs,
                    prefix=self._prefix,
                    owner=self._owner,
                    codec=self._codec,
                    payloads=self._payloads,
                    batcher=self._batcher_locked(),
                    heartbeat_interval=self._heartbeat_interval,
                    idle_retention=self._idle_retention,
                    wait_time_seconds=self._reply_wait,
                    on_lost=self._lost,
                    on_flooded=self._flooded,
                )
                # All or nothing: whatever interrupts the creation (an SQS error, a thread that
                # cannot start, a Ctrl-C between two lines, also right after open() returns),
                # the queue and the threads it made go, before the exception propagates.
                try:
                    channel.open()
                    self._reply = channel
                except BaseException:
                    channel.abandon(ABANDON_TIMEOUT)
                    raise
            return self._reply.pending, self._reply.url

    def send(self, queue_url: str, message: OutgoingMessage, timeout: float) -> str:
        """Send a message and return its id, or raise :class:`RpcTimeout` after ``timeout``.

        Concurrent sends to one queue share a SendMessageBatch. A lone send goes at once.
        """
        sent = self.send_async(queue_url, message)
        try:
            # Bounded by the call's own timeout: a slow or retried send must not outlast it.
            return sent.result(timeout)
        except FutureTimeout:
            raise RpcTimeout(
                f"the request to {queue_url} could not be sent within {timeout:g}s (SQS is "
                "slow or unreachable); it may still be sent: raise timeout= or check the "
                "endpoint"
            ) from None

    def send_async(self, queue_url: str, message: OutgoingMessage) -> Future[str]:
        """Queue a message for sending, without waiting: the future gives its message id.

        Raises :class:`ClientClosedError` at once when the client is closed. The caller
        bounds its own wait (a call's reply future fails at its deadline anyway).
        """
        with self._lock:
            self._check_running()
            batcher = self._batcher_locked()
        return batcher.send(queue_url, message)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop every thread, then delete the reply queue, all within ``timeout`` seconds.

        Idempotent. Returns True when every thread ended in time. A queue not deleted in
        time is logged and left for a sweeper.
        """
        with self._lock:
            self._stopped = True
            reply, retired, batcher = self._reply, self._retired, self._batcher
            self._reply, self._retired = None, []
        # Shutdown order, in one budget: (1) the sweeper stops; (2) pollers of lost queues are
        # joined; (3) the reply channel stops: waiting calls fail and its threads end; (4) the
        # batcher sends what is queued and stops. Requests of calls failed in (3) still go, as
        # SQS cannot take them back, and the replies' deletes go now. (5) The reply queue is
        # deleted last, so that neither the poller nor the deletes of (4) find it gone.
        # The threads share the budget less what (5) may take, so that the whole stays in it.
        threads = None if timeout is None else max(timeout - DELETE_TIMEOUT, 0.0)
        stopped = stop_all([self._sweep, *retired, reply, batcher], threads)
        delete_budget = DELETE_TIMEOUT if timeout is None else min(DELETE_TIMEOUT, timeout)
        for channel in [*retired, reply]:  # abandoned queues still draining too
            if channel is not None:
                channel.delete_queue(delete_budget)
        return stopped

    def after_fork_in_child(self) -> None:
        """Forget the parent's queue and threads: run in a forked child before other code."""
        self._lock = threading.Lock()
        self._reply, self._retired = None, []
        self._batcher = None  # its flusher threads stayed in the parent
        self._sweep = None

    def _adopt(self) -> None:
        """Become this (forked) process's transport, with a boto3 client of its own."""
        if self._rebuild is None:
            raise ClientClosedError(
                f"this RpcClient was created in process {self._pid} with an injected "
                "sqs_client, which cannot be shared across fork(); create the RpcClient "
                "(and its boto3 client) in the child process, or let the RpcClient build "
                "its own boto3 client (no sqs_client=) so that it can rebuild it after fork"
            )
        self._sqs = self._rebuild()
        self._requests.detach()  # the parent's boto3 client
        self._requests.watch(self._sqs)
        self._pid = os.getpid()
        self._sweep = self._make_sweep()
        logger.info("RpcClient adopted by process %d after fork", self._pid)

    def _make_sweep(self) -> PeriodicSweep | None:
        if self._sweep_interval is None:
            return None
        return PeriodicSweep(
            self._sqs,
            prefixes=(self._prefix,),
            interval=self._sweep_interval,
            name=thread_name("sweeper", self._owner),
        )

    def _check_running(self) -> None:
        if self._stopped:
            raise ClientClosedError("this RpcClient is closed; create a new one")

    def _batcher_locked(self) -> Batcher:
        if self._batcher is None:
            self._batcher = Batcher(
                self._sqs,
                name=thread_name("batcher", self._owner),
                delete_delay=REPLY_DELETE_DELAY,
                send_linger=SEND_LINGER,
                # Other calls in flight: their callers wake together when a batch of replies
                # arrives and send at once. A lone call (nothing else pending) never waits.
                busy=lambda: self.pending_calls() > 1,
            )
        return self._batcher

    def _check_after_pause(self) -> None:
        """After a long pause, make sure the reply queue still exists before naming it ReplyTo.

        A frozen process (a warm AWS Lambda between invocations) beats no heartbeat, so a
        sweeper may have deleted its queue. A request naming that queue would run, and its
        reply would be lost. The heartbeat thread keeps the last beat within a third of the
        idle retention. When it is older than half, one TagQueue tells, and refreshes it.
        """
        reply = self._reply
        if reply is None or time.time() - reply.queue.last_heartbeat <= self._idle_retention / 2:
            return
        try:
            reply.queue.heartbeat()
        except QueueDoesNotExist:
            self._lost(reply)  # reply_address() makes a new queue
        except SqsError as exc:
            # Not conclusive: send the call. The heartbeat thread keeps trying.
            logger.info("could not check the reply queue after a pause: %s", exc)
        else:
            logger.debug("reply queue %s still exists after a pause", reply.queue.name)

    def _lost(self, reply: ReplyChannel) -> None:
        """The reply queue was deleted underneath; the next call makes a new one, lazily."""
        with self._lock:
            if self._reply is not reply:
                return  # already handled (the poller and the heartbeat may both notice)
            self._reply = None
            # Keep only channels whose poller still runs, for stop() to join. A client that
            # loses many queues over its life does not accumulate them.
            self._retired = [old for old in self._retired if old.is_alive()]
            self._retired.append(reply)
        reply.lose()

    def _flooded(self, reply: ReplyChannel) -> None:
        """The reply queue is flooded with junk: new calls get a new queue (see reply_poller)."""
        now = time.monotonic()
        with self._lock:
            if self._reply is not reply or self._stopped:
                return
            self._retired = [old for old in self._retired if old.is_alive()]
            if (self._rotated is not None and now - self._rotated < MIN_ROTATION_INTERVAL) or len(
                self._retired
            ) >= MAX_DRAINING:
                logger.warning(
                    "reply queue %s is flooded, but the client moved queues less than %.0fs ago "
                    "or drains %d already; staying on it",
                    reply.queue.name,
                    MIN_ROTATION_INTERVAL,
                    len(self._retired),
                )
                return
            self._rotated = now
            self._reply = None  # the next call creates a new queue
            self._retired.append(reply)
        reply.retire()
