"""The receive loop: long-polls for free slots only, and keeps FIFO groups in order.

``concurrency`` is the number of *slots*: messages in flight, whether their handler is sync
(on a worker thread) or async (a task on the event loop, on no thread; see ``work.py``). The
receiver asks SQS for at most as many messages as there are free slots, and starts each
message on a worker, except one whose FIFO group already has a message running: that one is
*held*. A held message takes no slot, so other groups run in parallel whatever the order SQS
returned them in. When a group's message ends (sync or async), its slot goes to the group's
next held one, so a group runs strictly in order: the next starts only once the previous is
deleted.
Held messages stay hidden: the visibility heartbeat extends them from their receive. If one
of a group's messages is not finished (left for redelivery), the group's held messages are
released (visibility 0), so SQS redelivers the group in order.

Stopping does not wait out the long poll in progress (up to ``wait_time_seconds``): the
receiver is a daemon thread, and what a late receive brings back is released at once
(visibility 0) for another poller. Workers are daemon threads too: a handler that never
returns cannot keep the process alive once :meth:`Receiver.drain` gave up on it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqs_rpc._errors import SqsError, aws_errors
from sqs_rpc._loop import RECEIVE_LINGER, BackgroundLoop, receive_pause, thread_name
from sqs_rpc._observe import Outcome
from sqs_rpc._stats import Counters

from .visibility import VisibilityHeartbeat
from .work import LoopSubmitter, Work, WorkRunner
from .workers import Workers

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["RECEIVE_STOP_WAIT", "Receiver"]

logger = logging.getLogger(__name__)

MAX_BATCH = 10
# How long the next receive waits for a lone message (no load) to be done; see
# Receiver._let_lone_message_go.
LONE_WAIT = 0.010
# How long a stop waits for the receive in progress: enough for one that is returning with
# messages (they are released before stop() returns), far less than a 20 s long poll.
RECEIVE_STOP_WAIT = 1.0
# What the dispatcher reads: redelivery count, FIFO group, and SQS's clock (deadline checks).
RECEIVE_ATTRIBUTES: list[Any] = [
    "ApproximateReceiveCount",
    "MessageGroupId",
    "SentTimestamp",
    "ApproximateFirstReceiveTimestamp",
]

Process = Callable[[Mapping[str, Any], float], Work[Outcome]]


@dataclass(frozen=True)
class _Held:
    """A FIFO message waiting for its group's running message to finish."""

    message: Mapping[str, Any]
    received: float  # time.monotonic() of its receive
    token: int | None  # the visibility heartbeat's, while held


class Receiver:
    """Receives from the request queue and runs ``process(message, received)`` on workers.

    ``process`` is the message's work (``work.py``); it ends with the message's
    :class:`~sqs_rpc._observe.Outcome`: finished or left. Its awaits run on ``loop``.
    """

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        *,
        owner: str,
        concurrency: int,
        wait_time: int,
        process: Process,
        counters: Counters,
        workers: Workers,
        loop: LoopSubmitter,
        heartbeat: VisibilityHeartbeat | None = None,
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._concurrency = concurrency
        self._wait_time = wait_time
        self._process_one = process
        self._counters = counters
        self._heartbeat = heartbeat
        # Standard queues accept MessageGroupId too (fair queues), with no order to keep.
        self._fifo = queue_url.endswith(".fifo")
        self._slots = threading.Condition()  # guards _free, _held and _groups
        self._free = concurrency
        self._held = 0
        # A FIFO group with a message running -> its held messages, in receive order.
        self._groups: dict[str, deque[_Held]] = {}
        # SQS locks a FIFO group while any of its messages is in flight, so held messages come
        # from one receive per running group (at most 9 each). This bound is for an endpoint
        # that does not lock groups: receiving stops until held messages start.
        self._max_held = MAX_BATCH * concurrency
        self.waiting_for_workers = False
        self.last_receive: float | None = None  # time.monotonic() of the last successful receive
        self.errors_in_a_row = 0
        self._loaded = False  # the last receive brought more than one message
        self._workers = workers
        self._runner = WorkRunner(workers.submit, loop)
        self._loop = BackgroundLoop(thread_name("receiver", owner), self._receive_once)

    @property
    def in_flight(self) -> int:
        """Messages held: being handled, or waiting in a FIFO group for their turn."""
        with self._slots:
            return self._concurrency - self._free + self._held

    def is_alive(self) -> bool:
        return self._loop.is_alive()

    def start(self) -> None:
        self._loop.start()

    def stop_receiving(self, timeout: float = RECEIVE_STOP_WAIT) -> bool:
        """Stop the loop; wait up to ``timeout`` for the receive in progress. True if it ended.

        Once this returns, no message is handed to a worker: a receive still in progress
        releases what it brings (visibility 0) when it returns, within the long-poll wait.
        """
        self._loop.signal_stop()
        # Under the lock: a receive that has not yet handed its messages out sees the flag.
        with self._slots:
            self._slots.notify_all()
        ended = self._loop.stop(timeout)
        if not ended:
            logger.info(
                "not waiting for the receive in progress (up to %ds): it ends on its own and "
                "releases what it brings",
                self._wait_time,
            )
        return ended

    def drain(self, timeout: float, cancel: Callable[[], int] = lambda: 0) -> bool:
        """Wait up to ``timeout`` for running work; then stop the worker pool.

        Past ``timeout``, ``cancel()`` cancels the async handlers still running (their
        messages are left for redelivery, never deleted); sync ones are left behind on their
        workers, daemon threads.
        """
        with self._slots:
            drained = self._slots.wait_for(
                lambda: self._free == self._concurrency and not self._held, timeout
            )
        if not drained:
            logger.warning(
                "%d handlers still running after %.0fs; their messages will be redelivered",
                self.in_flight,
                timeout,
            )
            cancelled = cancel()
            if cancelled:
                logger.warning("cancelled %d async handlers", cancelled)
        self._workers.shutdown(wait=drained)
        return drained

    def _receive_once(self) -> float:
        with self._slots:
            # Receive only what a free worker can start at once: a message held but not
            # started would sit out its visibility timeout for nothing.
            self.waiting_for_workers = True
            self._slots.wait_for(
                lambda: (self._free > 0 and self._held < self._max_held) or self._loop.stopping
            )
            wanted = min(MAX_BATCH, self._concurrency)
            if self._loaded and self._free < wanted:
                # Under load, workers free up within milliseconds; a receive for one or two
                # messages now would cost a request that a moment's wait saves.
                self._slots.wait_for(
                    lambda: self._free >= wanted or self._loop.stopping, RECEIVE_LINGER
                )
            self.waiting_for_workers = False
            if self._loop.stopping:
                return 0
            count = min(MAX_BATCH, self._free)
        asked = time.monotonic()
        try:
            with aws_errors("ReceiveMessage", self.queue_url):
                response = self._sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=count,
                    WaitTimeSeconds=self._wait_time,
                    MessageAttributeNames=["All"],
                    MessageSystemAttributeNames=RECEIVE_ATTRIBUTES,
                )
        except SqsError:
            # Logged and backed off by the BackgroundLoop; counted for health().
            self._counters.add("receive_errors")
            self.errors_in_a_row += 1
            raise
        received = time.monotonic()
        self.last_receive = received
        self.errors_in_a_row = 0
        messages = response.get("Messages", [])
        self._counters.add("received", len(messages))
        with self._slots:
            # Decided under the lock that stop_receiving() takes after setting the flag: either
            # drain() counts these messages, or they are released.
            late = self._loop.stopping
            if not late:
                for group_id, message in self._admit(messages, received):
                    self._workers.submit(self._run, group_id, message, received)
            free = self._free  # a slot freed after this: that message (or another) is done
        if late:
            self._release(messages)
            return 0
        # Under load (this receive or the last brought several messages), let more gather.
        busy, self._loaded = self._loaded, len(messages) > 1
        if len(messages) == 1 and not busy:
            self._let_lone_message_go(free)
        return receive_pause(len(messages), count, busy=busy, round_trip=received - asked)

    def _let_lone_message_go(self, free: int) -> None:
        """After a lone message, receive again once it is done, or after ``LONE_WAIT``.

        The next receive's request costs this process about as much CPU as the message's reply,
        and the two would take turns on the GIL: the reply, on the caller's critical path,
        would wait for a receive that most likely brings nothing. A fast handler's message is
        done within milliseconds; a slow one's holds the next receive back for ``LONE_WAIT``
        at most.
        """
        with self._slots:
            self._slots.wait_for(lambda: self._free > free or self._loop.stopping, LONE_WAIT)

    def _admit(
        self, messages: list[Any], received: float
    ) -> list[tuple[str | None, Mapping[str, Any]]]:
        """Take a worker for each message that may start now; hold the others."""
        starts: list[tuple[str | None, Mapping[str, Any]]] = []
        with self._slots:
            for message in messages:
                group_id = message.get("Attributes", {}).get("MessageGroupId")
                if not self._fifo or group_id is None:
                    starts.append((None, message))
                elif group_id in self._groups:
                    # Its group has a message running: it waits, hidden, on no worker.
                    self._groups[group_id].append(self._hold(message, received))
                    self._held += 1
                    continue
                else:
                    self._groups[group_id] = deque()
                    starts.append((group_id, message))
                self._free -= 1
        return starts

    def _hold(self, message: Mapping[str, Any], received: float) -> _Held:
        # Tracked from the receive, not from the start of its handler: the group's earlier
        # handlers may together outlast the visibility timeout, and SQS would redeliver it.
        heartbeat = self._heartbeat
        token = None if heartbeat is None else heartbeat.track(message["ReceiptHandle"], received)
        return _Held(message, received, token)

    def _run(self, group_id: str | None, message: Mapping[str, Any], received: float) -> None:
        """Handle a message; then its FIFO group's held messages in order, on this worker
        while they end without suspending (a sync handler)."""
        resume = functools.partial(self._resume, group_id)
        while True:
            finished = self._runner.run(self._process(message, received), resume)
            if finished is None:
                return  # an async handler runs: _resume goes on once it is done
            held = self._next(group_id, finished)
            if held is None:
                return
            message, received = held.message, held.received

    def _resume(self, group_id: str | None, finished: bool) -> None:
        """A suspended message ended: its slot goes to its group's next message, or is freed."""
        held = self._next(group_id, finished)
        if held is not None:
            self._run(group_id, held.message, held.received)

    def _next(self, group_id: str | None, finished: bool) -> _Held | None:
        """The message's slot goes to its group's next held message, or is freed (None)."""
        held = None if group_id is None else self._next_of(group_id, finished)
        if held is None:
            with self._slots:
                self._free += 1
                self._slots.notify_all()
        else:
            self._untrack([held])  # its handler's own tracking takes over
        return held

    def _next_of(self, group_id: str, finished: bool) -> _Held | None:
        """The group's next held message, or None: the group is done (or released)."""
        with self._slots:
            waiting = self._groups[group_id]
            if waiting and finished and not self._loop.stopping:
                self._held -= 1
                return waiting.popleft()
            del self._groups[group_id]
            rest = list(waiting)
            self._held -= len(rest)
            self._slots.notify_all()
        if rest:
            self._untrack(rest)
            why = "shutting down" if finished else "an earlier message of their group is not done"
            self._release_unstarted([h.message for h in rest], why)
        return None

    def _untrack(self, held: list[_Held]) -> None:
        heartbeat = self._heartbeat
        if heartbeat is not None:
            for one in held:
                if one.token is not None:
                    heartbeat.untrack(one.token)

    def _release_unstarted(self, messages: list[Mapping[str, Any]], why: str) -> None:
        logger.info("releasing %d messages unstarted: %s", len(messages), why)
        self._release(messages)

    def _release(self, messages: list[Any]) -> None:
        """Make received-but-unstarted messages visible again at once."""
        for start in range(0, len(messages), MAX_BATCH):
            self._release_batch(messages[start : start + MAX_BATCH])

    def _release_batch(self, messages: list[Any]) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages)
        ]
        try:
            with aws_errors("ChangeMessageVisibilityBatch", self.queue_url):
                self._sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=entries,  # type: ignore[arg-type]
                )
            logger.info("released %d unstarted messages", len(entries))
        except SqsError as exc:
            logger.warning(
                "could not release %d messages (%s); they return after their visibility timeout",
                len(entries),
                exc,
            )

    async def _process(self, message: Mapping[str, Any], received: float) -> bool:
        try:
            return (await self._process_one(message, received)).finished
        except asyncio.CancelledError:
            # A stop gave up on its async handler: nothing was sent or deleted.
            logger.info("message %s cancelled; left for redelivery", message.get("MessageId"))
            return False
        except Exception:
            # Never let a failure kill a worker silently; the message stays for redelivery.
            logger.exception("unexpected error handling message %s", message.get("MessageId"))
            return False
