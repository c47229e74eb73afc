"""Coalescing SendMessage and DeleteMessage into their batch forms.

Callers hand an entry to the :class:`Batcher` and get a future. Flusher threads take up to 10
entries for one queue (within SQS's 1 MiB batch limit) and send them in one request.

*Sends* never wait on a timer when nothing else is going on: a lone entry goes out at once.
Entries that arrive while a batch for their queue is in flight wait for it, then go together.
A full batch does not wait: a second flusher sends it in parallel, so that at most
``MAX_IN_FLIGHT`` (2) batches of one queue are on the wire, the second only when the entries
waiting behind the first fill a whole batch. The owner may say it is
``busy``: other calls are in flight, and their callers are about to send too, as they wake
together when a batch of replies arrives. Then a send waits for them, at most
``send_linger`` or the last ``SendMessageBatch``'s round trip. A clump of calls thus stays
one batch.

*Deletes* (and visibility changes, ``hide``) are off everyone's critical path, since the caller
already has its reply. They may
wait up to ``delete_delay`` seconds for company. A batch of deletes goes out when it is full,
when its oldest entry has waited that long, or at :meth:`Batcher.stop`. Ten deletes in one
request is most of what separates a loaded client from SQS's floor of 0.6 requests per call.

Flushers are woken only when a batch is due: a new entry that joins a queue whose batch is
already scheduled, or that waits for a batch in flight, wakes no thread. When one is due, one
idle flusher is woken, not all of them; a flusher that returns from a request looks again by
itself. Under load most entries thus cost no thread wake-up at all.

Partial failures are per entry; one request and what becomes of each entry is
:mod:`sqs_rpc._batch_request`. An entry handed back for a retry goes first in its queue.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._attributes import MAX_MESSAGE_BYTES
from ._batch_request import Item, Kind, send_batch
from ._errors import ClientClosedError
from ._futures import settle
from ._loop import BackgroundLoop, stop_all
from ._outgoing import OutgoingMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_ENTRIES", "MAX_IN_FLIGHT", "Batcher"]

logger = logging.getLogger(__name__)

MAX_BATCH_ENTRIES = 10  # SQS's limit for SendMessageBatch and DeleteMessageBatch
MAX_BATCH_BYTES = MAX_MESSAGE_BYTES  # SQS caps a whole batch at the size of one message
# Batches of one queue on the wire at once. The second goes only when a whole batch waits
# behind the first: SQS is the bottleneck then, and one more request in flight halves the
# wait; a third would rarely find a full batch to send.
MAX_IN_FLIGHT = 2


@dataclass
class _Queue:
    items: deque[Item] = field(default_factory=deque)
    size: int = 0  # bytes of the waiting items
    in_flight: int = 0  # batches of this queue being sent right now

    def full(self) -> bool:
        """A whole batch is waiting: sending it cannot be improved on by waiting longer."""
        return (
            len(self.items) >= MAX_BATCH_ENTRIES
            or self.size >= MAX_BATCH_BYTES
            or self.items[0].alone
        )


class Batcher:
    """Batches sends and deletes per queue on ``workers`` flusher threads.

    ``send`` futures resolve to the SQS message id; ``delete`` futures to None. A delete waits
    at most ``delete_delay`` seconds for other deletes to share its request. A send waits at
    most ``send_linger`` seconds, and only while ``busy()`` is true.

    The flushers are named ``<name>-0``, ``<name>-1``... They start with the first queued
    entry, or with :meth:`start`. :meth:`stop` sends what is queued, then ends them.
    """

    def __init__(
        self,
        sqs: SQSClient,
        *,
        name: str,
        workers: int = 2,
        delete_delay: float = 0.0,
        send_linger: float = 0.0,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self._sqs = sqs
        self._delays: dict[Kind, float] = {
            "send": send_linger,
            "delete": delete_delay,
            "hide": delete_delay,
        }
        # How long the last SendMessageBatch took: a send lingers at most that long (and at
        # most send_linger). Callers that are about to send arrive within about one round trip;
        # on a fast SQS, waiting longer would add latency and save nothing. Under load round
        # trips grow, and so do the batches: the wait adapts to what SQS and the CPU allow.
        self._send_round_trip = send_linger
        self._busy = busy
        self._cond = threading.Condition()
        # (kind, queue_url) -> entries waiting (oldest first) and batches in flight; a queue
        # stays here until both are empty. Flushers take queues round-robin.
        self._waiting: OrderedDict[tuple[Kind, str], _Queue] = OrderedDict()
        self._closed = False
        self._loops = [
            BackgroundLoop(f"{name}-{i}", functools.partial(self._flush_once, i))
            for i in range(workers)
        ]
        # Flushers waiting, by index: when each looks next (monotonic; inf: only when woken).
        # A flusher not in here is sending, or has not run yet: it looks when it is done.
        self._idle: dict[int, float] = {}
        self._started = False

    def start(self) -> None:
        """Start the flusher threads (idempotent). A stopped batcher stays stopped."""
        self._started = True
        for loop in self._loops:
            loop.start()

    def send(
        self, queue_url: str, message: OutgoingMessage, *, inline: bool = False
    ) -> Future[str]:
        """Queue a message for sending.

        With ``inline``, a send that would go at once anyway is made on the calling thread,
        without a hand-off to a flusher and back. It goes at once when nothing waits or is in
        flight for its queue and the owner is not busy. This suits a caller that blocks on the
        result and needs no deadline shorter than botocore's own (a server worker's reply).
        """
        entry = dict(message.to_send_kwargs())
        size = message.size
        if inline:
            item = self._take_inline(queue_url, entry, size)
            if item is not None:
                try:
                    self._flush("send", queue_url, [item])
                except Exception as exc:  # never leave the caller waiting on a future
                    logger.exception("sending to %s failed unexpectedly", queue_url)
                    settle(item.future, error=exc)
                finally:
                    # No flusher comes back to this queue by itself: wake one if needed.
                    self._sent("send", queue_url, flusher=False)
                return item.future
        return self._put("send", queue_url, entry, size)

    def _take_inline(self, queue_url: str, entry: dict[str, Any], size: int) -> Item | None:
        """An item to send on the caller's thread now (marked in flight), or None: queue it."""
        with self._cond:
            if self._closed:
                raise ClientClosedError("the batcher is closed")
            if ("send", queue_url) in self._waiting or self._may_wait("send"):
                return None
            self._waiting[("send", queue_url)] = _Queue(in_flight=1)
            return Item(entry, Future(), size, time.monotonic())

    def delete(self, queue_url: str, receipt_handle: str) -> Future[None]:
        """Queue a message for deletion."""
        return self._put("delete", queue_url, {"ReceiptHandle": receipt_handle}, 0)

    def hide(self, queue_url: str, receipt_handle: str, seconds: int) -> Future[None]:
        """Queue a visibility change (``seconds`` from when it is sent), batched like deletes."""
        entry = {"ReceiptHandle": receipt_handle, "VisibilityTimeout": seconds}
        return self._put("hide", queue_url, entry, 0)

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Send what is queued, then stop the flushers; True if all went out and they ended.

        Idempotent. Entries still waiting when ``timeout`` runs out fail with
        :class:`ClientClosedError`. New entries are refused from the start.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for loop in self._loops:  # closed: everything waiting is due now
            loop.wake()
        # Shutdown order, in one budget: the flushers drain the queues (they stop taking
        # entries only once closed *and* empty), then they are stopped and joined.
        with self._cond:
            drained = self._cond.wait_for(lambda: not self._waiting, timeout)
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        stopped = stop_all(self._loops, left)
        if not drained:
            self._fail_waiting()
        return drained and stopped

    def _put(self, kind: Kind, queue_url: str, entry: dict[str, Any], size: int) -> Future[Any]:
        future: Future[Any] = Future()
        with self._cond:
            if self._closed:
                raise ClientClosedError("the batcher is closed")
            queue = self._waiting.setdefault((kind, queue_url), _Queue())
            queue.items.append(Item(entry, future, size, time.monotonic()))
            queue.size += size
            # Most entries wake nobody: a delete joining others already scheduled, a send
            # waiting for the batch in flight (the flusher that sends it looks again).
            wake = self._flusher_for(self._ready_at(kind, queue))
        if not self._started:
            self.start()
        if wake is not None:
            wake.wake()
        return future

    def _ready_at(self, kind: Kind, queue: _Queue) -> float | None:
        """When the queue's next batch may go (monotonic), or None: not before one returns.

        Call with the lock held.
        """
        if not queue.items:
            return None
        full = queue.full()
        if queue.in_flight >= MAX_IN_FLIGHT or (queue.in_flight and not full):
            return None  # these go with the next batch, once one in flight returns
        if full or self._closed or not self._may_wait(kind):
            return queue.items[0].queued  # already due
        return queue.items[0].queued + self._delay(kind)

    def _flusher_for(self, ready: float | None) -> BackgroundLoop | None:
        """The idle flusher to wake for a batch due at ``ready``; None if one looks in time.

        Call with the lock held; wake the flusher after releasing it.
        """
        if ready is None:
            return None
        chosen: int | None = None
        for index, looks in self._idle.items():
            if looks <= ready:
                return None  # it will see this batch when it looks
            if chosen is None or looks > self._idle[chosen]:
                chosen = index
        if chosen is None:
            return None  # every flusher is sending (or starting): each looks when done
        self._idle[chosen] = ready  # a second entry due no sooner wakes nobody else
        return self._loops[chosen]

    def _take(self, flusher: int) -> tuple[Kind, str, list[Item]] | float | None:
        """A batch to send now, or else the seconds until one is due (None: until woken)."""
        now = time.monotonic()
        due: float | None = None
        wake: BackgroundLoop | None = None
        with self._cond:
            self._idle.pop(flusher, None)
            if not self._waiting:
                self._idle[flusher] = math.inf
                self._cond.notify_all()  # stop() waits for this
                return None
            taken: tuple[Kind, str, list[Item]] | None = None
            for (kind, queue_url), queue in self._waiting.items():
                ready = self._ready_at(kind, queue)
                if ready is None:
                    continue
                if ready > now:
                    due = ready if due is None else min(due, ready)
                    continue
                if taken is not None:
                    # Another batch is due too: an idle peer sends it in parallel.
                    wake = self._flusher_for(now)
                    break
                batch: list[Item] = []
                size = 0
                while queue.items and len(batch) < MAX_BATCH_ENTRIES:
                    item = queue.items[0]
                    if batch and (item.alone or size + item.size > MAX_BATCH_BYTES):
                        break
                    batch.append(queue.items.popleft())
                    size += item.size
                    if item.alone:
                        break
                queue.size -= size
                queue.in_flight += 1
                taken = kind, queue_url, batch
                again = self._ready_at(kind, queue)
                if again is not None and again <= now:
                    wake = self._flusher_for(now)  # a second full batch of this queue
                    break
            if taken is not None:
                self._waiting.move_to_end(taken[:2])  # queues take turns
            else:
                self._idle[flusher] = math.inf if due is None else due
        if wake is not None:
            wake.wake()
        if taken is not None:
            return taken
        return None if due is None else max(due - now, 0.0)

    def _delay(self, kind: Kind) -> float:
        if kind != "send":
            return self._delays[kind]
        return min(self._delays["send"], self._send_round_trip)

    def _may_wait(self, kind: Kind) -> bool:
        if kind != "send":
            return True
        return self._delays["send"] > 0 and self._busy is not None and self._busy()

    def _sent(self, kind: Kind, queue_url: str, *, flusher: bool = True) -> None:
        """A batch of this queue has returned. Forget the queue if nothing else is left.

        A flusher looks for the next batch by itself; after an inline send (``flusher``
        false), entries held back for it wake an idle flusher if they are due.
        """
        wake: BackgroundLoop | None = None
        with self._cond:
            queue = self._waiting.get((kind, queue_url))
            if queue is None:  # stop() gave up waiting and failed everything
                return
            queue.in_flight -= 1
            if not queue.items and not queue.in_flight:
                del self._waiting[(kind, queue_url)]
                if not self._waiting:
                    self._cond.notify_all()  # stop() waits for this (an inline send was last)
            elif queue.items and not flusher:
                wake = self._flusher_for(self._ready_at(kind, queue))
        if wake is not None:
            if not self._started:
                self.start()
            wake.wake()

    def _flush_once(self, flusher: int) -> float | None:
        taken = self._take(flusher)
        if not isinstance(taken, tuple):
            return taken  # wait for the next due batch, or for _put's wake()
        kind, queue_url, batch = taken
        try:
            self._flush(kind, queue_url, batch)
        except Exception as exc:  # never leave a caller waiting on a future
            logger.exception("sending a batch to %s failed unexpectedly", queue_url)
            for item in batch:
                settle(item.future, error=exc)
        finally:
            self._sent(kind, queue_url)
        return 0

    def _flush(self, kind: Kind, queue_url: str, batch: list[Item]) -> None:
        round_trip = send_batch(
            self._sqs, kind, queue_url, batch, functools.partial(self._requeue, kind, queue_url)
        )
        if round_trip is not None:
            self._send_round_trip = round_trip

    def _requeue(self, kind: Kind, queue_url: str, item: Item) -> None:
        # The batch it came from is still in flight: its _sent() (or the flusher that sent it,
        # looking again) takes care of it.
        with self._cond:
            queue = self._waiting.setdefault((kind, queue_url), _Queue())
            queue.items.appendleft(item)
            queue.size += item.size
        if not self._started:
            self.start()  # a retried inline send may be the first entry the flushers see

    def _fail_waiting(self) -> None:
        with self._cond:
            waiting, self._waiting = self._waiting, OrderedDict()
        for queue in waiting.values():
            for item in queue.items:
                settle(item.future, error=ClientClosedError("closed before the batch was sent"))
