"""The reply poller: long-polls a client's reply queue and settles pending calls.

One poller per client. It receives replies in batches of up to 10 and settles each caller's
future by correlation id. It hands the deletes to the client's batcher, so neither the caller
nor the next receive waits on a delete. Unknown or late replies are dropped with a debug log:
a reply never reaches the wrong caller.

A reply whose body is in S3 (``_offload.py``) is read from there before it is decoded, and its
S3 object is deleted once the reply message is deleted. Only a reply that settles a waiting
call is read, and only an object read is deleted: anyone who can send to the reply queue
writes its pointers, so the S3 object of an unknown or late reply is never touched (the
bucket's lifecycle rule removes it), nor one whose pointer fails the checks (the call fails).

When the reply queue is deleted underneath (by an operator or an over-eager sweeper), the
poller reports it once through ``on_lost``. It then waits to be stopped: no hot loop of
failing receives.

Anyone allowed to send to ``sqs-rpc-reply-*`` can fill this queue with junk. An unknown
reply costs only a look at one attribute and a share of a batched delete, but SQS hands out
the oldest messages first: a real reply behind thousands of junk ones waits for all of them
to be received. So after ``FLOOD_UNKNOWN`` unknown replies in a row the poller reports a
flood through ``on_flooded``; the client then sends new calls' replies to a new queue, whose
name the attacker has to find out again, and :meth:`ReplyPoller.retire` this one: it keeps
receiving for the calls still waiting on it, and runs ``on_idle`` once none does (the queue
is deleted, junk and all, in one request).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from sqs_rpc._batcher import Batcher
from sqs_rpc._codecs import Codec
from sqs_rpc._errors import DecodeError, QueueDoesNotExist, RemoteError, SqsError, aws_errors
from sqs_rpc._futures import settle
from sqs_rpc._loop import BackgroundLoop, in_thread, receive_pause
from sqs_rpc._offload import Offloaded
from sqs_rpc._payload_store import PayloadStore
from sqs_rpc._wire import (
    ErrorInfo,
    correlation_id_of,
    decode_reply,
    is_wake_message,
    nonce_of,
    wake_message,
)

from .pending import PendingCalls

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["WAKE_TIMEOUT", "ReplyPoller"]

logger = logging.getLogger(__name__)

WAIT_TIME_SECONDS = 20
BATCH_SIZE = 10
# Unknown replies in a row that make a flood. Late replies of calls that timed out are unknown
# too, but rarely fifty in a row with no answer to a waiting call among them; and a false
# alarm costs one new queue.
FLOOD_UNKNOWN = 50
# How long stop() waits for SQS to take the message that ends the receive in progress. A
# healthy SQS answers in milliseconds; one that does not answer must not hold a close.
WAKE_TIMEOUT = 5.0
# How long stop() still waits for the poller when the wake message failed.
WAKE_FAILED_JOIN = 1.0


class ReplyPoller:
    """Receives replies from ``queue_url`` on a background loop and settles ``pending``."""

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        pending: PendingCalls,
        codec: Codec,
        batcher: Batcher,
        *,
        name: str,
        wait_time_seconds: int = WAIT_TIME_SECONDS,
        on_lost: Callable[[], None] | None = None,
        on_flooded: Callable[[], None] | None = None,
        payloads: PayloadStore | None = None,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._pending = pending
        self._codec = codec
        self._batcher = batcher
        self._wait_time = wait_time_seconds
        self._on_lost = on_lost
        self._on_flooded = on_flooded
        self._unknown_in_a_row = 0
        self._on_idle: Callable[[], None] | None = None  # set by retire()
        self._payloads = payloads if payloads is not None else PayloadStore(None)
        self._loop = BackgroundLoop(name, self._poll_once)

    def start(self) -> None:
        self._loop.start()

    def is_alive(self) -> bool:
        return self._loop.is_alive()

    def retire(self, on_idle: Callable[[], None]) -> None:
        """No new call names this queue: run ``on_idle`` (on this thread) once none waits."""
        self._on_idle = on_idle
        self._loop.wake()

    def signal_stop(self) -> None:
        """Ask the poller to stop after the receive in progress, without waiting for it."""
        self._loop.signal_stop()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop polling; return True when the thread has ended within ``timeout``.

        A receive cannot be interrupted, and it waits up to 20 s for a message: a message sent
        to the queue makes it return at once. When SQS does not take that message within
        :data:`WAKE_TIMEOUT`, the receive is not waited for: the thread ends when it returns.
        """
        if timeout is None:
            timeout = self._wait_time + 5
        self._loop.signal_stop()
        if not self._loop.is_alive():
            return True
        started = time.monotonic()
        try:
            in_thread(self._wake, f"{self._loop.name}-wake").result(min(WAKE_TIMEOUT, timeout))
        except Exception as exc:  # FutureTimeout (no answer) or SqsError
            logger.warning(
                "could not wake the reply poller of %s (%s); not waiting for its receive in "
                "progress, which ends within %ds or when botocore gives up",
                self._queue_url,
                str(exc) or f"no answer within {min(WAKE_TIMEOUT, timeout):g}s",
                self._wait_time,
            )
            # Refused at once (not silent), the receive may be failing too: a moment to end.
            return self._loop.stop(min(WAKE_FAILED_JOIN, timeout))
        left = max(timeout - (time.monotonic() - started), 0.0)
        stopped = self._loop.stop(left)
        if not stopped:
            logger.warning(
                "reply poller for %s did not stop within %.0fs", self._queue_url, timeout
            )
        return stopped

    def _wake(self) -> None:
        with aws_errors("SendMessage", self._queue_url):
            self._sqs.send_message(QueueUrl=self._queue_url, **wake_message())

    def _poll_once(self) -> float | None:
        on_idle = self._on_idle
        if on_idle is not None and len(self._pending) == 0:
            self._on_idle = None
            on_idle()
            return None  # on_idle stops this loop
        asked = time.monotonic()
        try:
            with aws_errors("ReceiveMessage", self._queue_url):
                response = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=BATCH_SIZE,
                    WaitTimeSeconds=self._wait_time,
                    MessageAttributeNames=["All"],
                )
        except QueueDoesNotExist:
            if self._loop.stopping:
                return 0
            logger.warning("reply queue %s was deleted underneath", self._queue_url)
            if self._on_lost is not None:
                self._on_lost()
            # Nothing more to receive from here: wait for stop(), never retry in a loop.
            return None
        round_trip = time.monotonic() - asked  # before dispatching: SQS's time, not ours
        messages = response.get("Messages", [])
        for message in messages:
            if is_wake_message(message):
                continue  # sent by stop(): its queue is deleted next, no delete needed
            read = self._dispatch(message)
            deleted = self._batcher.delete(self._queue_url, message["ReceiptHandle"])
            deleted.add_done_callback(_log_delete_failure)
            if read is not None:
                # Only once SQS deleted the reply: until then it may come back, with its body.
                deleted.add_done_callback(functools.partial(self._discard, read))
        # Calls still waiting means replies still coming: let them gather for the next receive.
        return receive_pause(
            len(messages), BATCH_SIZE, busy=len(self._pending) > 0, round_trip=round_trip
        )

    def _dispatch(self, message: Mapping[str, Any]) -> Offloaded | None:
        """Settle the call ``message`` answers; return its S3 body's pointer if it was read."""
        correlation_id = correlation_id_of(message)
        # The nonce too: a late reply to an earlier call with this id is not this call's.
        future = self._pending.pop(correlation_id, nonce_of(message)) if correlation_id else None
        if future is None:
            # Not read, not deleted, even with an S3 pointer: no call vouches for it.
            logger.debug("dropping reply for unknown or expired call %s", correlation_id)
            self._unknown_in_a_row += 1
            if self._unknown_in_a_row >= FLOOD_UNKNOWN and self._on_flooded is not None:
                self._unknown_in_a_row = 0  # asked again after as many more, if ignored
                logger.warning(
                    "reply queue %s is flooded: %d replies in a row answer no call",
                    self._queue_url,
                    FLOOD_UNKNOWN,
                )
                self._on_flooded()
            return None
        self._unknown_in_a_row = 0
        read: Offloaded | None = None
        try:
            message, read = self._payloads.load(message, kind="reply")
            reply = decode_reply(message)
            if reply.status == "error":
                info = ErrorInfo.from_body(reply.body)
                settle(
                    future,
                    error=RemoteError(
                        info.type,
                        info.message,
                        info.details,
                        correlation_id=correlation_id,
                        code=info.code,
                    ),
                )
                return read
            if reply.content_type != self._codec.content_type:
                raise DecodeError(
                    f"reply {correlation_id} has content type {reply.content_type!r} but this "
                    f"client's codec reads {self._codec.content_type!r}; use the same codec "
                    "on both sides"
                )
            try:
                value = self._codec.decode(reply.body)
            except DecodeError:
                raise
            except Exception as exc:
                # A user codec's own error: the call fails now rather than at its timeout.
                raise DecodeError(
                    f"the codec could not decode reply {correlation_id}: {exc!r}"
                ) from exc
            settle(future, result=value)
        except (DecodeError, SqsError) as exc:  # SqsError: S3 failed to give the body
            logger.warning("undecodable reply for call %s: %s", correlation_id, exc)
            settle(future, error=exc)
        logger.debug("settled call %s", correlation_id)
        return read

    def _discard(self, read: Offloaded, deleted: Future[None]) -> None:
        if not deleted.cancelled() and deleted.exception() is None:
            self._payloads.discard(read)


def _log_delete_failure(future: Future[None]) -> None:
    # The call is already settled; an undeleted reply comes back and is dropped as unknown.
    # Worth a warning, not worth failing anything.
    error = future.exception()
    if isinstance(error, QueueDoesNotExist):
        logger.debug("reply not deleted: its queue is gone")  # closed or lost: nothing to do
    elif error is not None:
        logger.warning("could not delete a reply: %s", error)
