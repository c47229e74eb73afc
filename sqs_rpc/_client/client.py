"""RpcClient: send requests to a queue and wait for their replies; RequestMessage.

A client owns one temporary reply queue (created on the first call that needs it, never for a
client that only publishes), one reply poller and one timeout timer; the process-wide heartbeat
(``_heartbeat.py``) keeps its queue's tag fresh. Many threads may share one client.

Lifecycle paths, none of which leaves a queue or a thread behind: ``close()`` deletes at once;
interpreter exit without ``close()`` closes through ``atexit`` (``_process.py``); a SIGKILLed
client's queue is deleted by a sweeper after its idle retention (``_sweeper.py``); in a forked
child the client forgets the parent's queue and threads and makes its own, lazily, if sqs-rpc
built its boto3 client (an injected one cannot be shared across fork: a clear error); a queue
deleted underneath fails the waiting calls with :class:`ReplyQueueLost`, and the next call makes
a new queue.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3

from sqs_rpc._aws import make_sqs_client
from sqs_rpc._batcher import Batcher
from sqs_rpc._codecs import Codec, JsonCodec
from sqs_rpc._errors import (
    ClientClosedError,
    ConfigurationError,
    QueueDoesNotExist,
    RpcTimeout,
    SqsError,
)
from sqs_rpc._futures import settle
from sqs_rpc._hooks import Hooks, check_hooks
from sqs_rpc._observe import CallObserver
from sqs_rpc._offload import PayloadStore, S3Offload
from sqs_rpc._stats import ClientStats
from sqs_rpc._sweeper import PeriodicSweep, check_sweep_interval
from sqs_rpc._trace import current_trace_context
from sqs_rpc._wire import MAX_MESSAGE_BYTES, AttributeValue, check_max_message_bytes, encode_request

from .pending import PendingCalls
from .process import track, untrack
from .reply_channel import ReplyChannel
from .reply_poller import WAIT_TIME_SECONDS
from .reply_queue import DEFAULT_PREFIX, validate_prefix
from .request import RequestMessage, check_message, check_timeout

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_IDLE_RETENTION",
    "DEFAULT_TIMEOUT",
    "RequestMessage",
    "RpcClient",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
DEFAULT_HEARTBEAT_INTERVAL = 60.0
DEFAULT_IDLE_RETENTION = 600
DEFAULT_MAX_CONNECTIONS = 50
# How long a received reply's delete may wait for others to share its DeleteMessageBatch. The
# caller already has its reply; the reply queue's visibility timeout (5 s) is far longer.
REPLY_DELETE_DELAY = 0.2
# How long a request waits for others to share its SendMessageBatch, only while other calls
# are in flight (see _batcher.py); a lone call goes at once.
SEND_LINGER = 0.01


class RpcClient:
    """Calls services behind SQS queues and waits for their replies.

    Example::

        with RpcClient() as client:
            client.call(queue_url, {"x": 1}, timeout=10)      # the decoded reply
            future = client.call_async(queue_url, {"x": 2})   # concurrent.futures.Future
            client.publish(queue_url, {"x": 3})               # one-way; returns the message id

    Args:
        sqs_client: a ready boto3 SQS client. Otherwise one is built from ``session`` (or the
            default session), ``endpoint_url`` and ``region_name``.
        queue_prefix: reply queue names are this prefix plus a 32-character id.
        default_timeout: seconds a call waits for its reply when it is given no ``timeout``.
        codec: encodes payloads and decodes replies; JSON by default.
        heartbeat_interval: seconds between refreshes of the reply queue's heartbeat tag
            (the process sends at most one TagQueue per interval, see docs/operations.md).
        idle_retention: seconds without a heartbeat after which a sweeper may delete the
            reply queue; at least three heartbeat intervals.
        max_connections: HTTP connection pool size of the SQS client built here (ignored with
            ``sqs_client=``); make it at least the number of threads calling concurrently.
        max_message_bytes: the largest request (body plus attributes) this client sends;
            larger ones raise :class:`~sqs_rpc.PayloadTooLarge`. SQS's limit by default.
        reply_wait_time_seconds: long-poll wait of the reply poller, 1 to 20.
        sweep_interval: when set, seconds (jittered) between sweeps of orphaned reply queues
            under ``queue_prefix``, run by this client in the background; off by default.
        offload: an :class:`~sqs_rpc.S3Offload`: requests too large for SQS go through S3,
            and replies offloaded by servers are read from S3 (see docs/payloads.md).
        hooks: callbacks on every call's start and end (:class:`~sqs_rpc.Hooks`), for
            metrics; none by default. See docs/observability.md.
    """

    def __init__(
        self,
        *,
        sqs_client: SQSClient | None = None,
        session: boto3.session.Session | None = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        queue_prefix: str = DEFAULT_PREFIX,
        default_timeout: float = DEFAULT_TIMEOUT,
        codec: Codec | None = None,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        idle_retention: int = DEFAULT_IDLE_RETENTION,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        reply_wait_time_seconds: int = WAIT_TIME_SECONDS,
        sweep_interval: float | None = None,
        offload: S3Offload | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self._prefix = validate_prefix(queue_prefix)
        self._default_timeout = check_timeout(default_timeout, "default_timeout")
        self._heartbeat_interval = check_timeout(heartbeat_interval, "heartbeat_interval")
        if not isinstance(idle_retention, int) or idle_retention < 3 * heartbeat_interval:
            raise ConfigurationError(
                f"idle_retention={idle_retention!r} must be whole seconds, at least three "
                f"heartbeat intervals ({3 * heartbeat_interval:g}s), so that a sweeper never "
                "deletes the queue of a live client whose heartbeat is a little late"
            )
        self._idle_retention = idle_retention
        self._max_message_bytes = check_max_message_bytes(max_message_bytes)
        if (
            isinstance(reply_wait_time_seconds, bool)
            or not isinstance(reply_wait_time_seconds, int)
            or not 1 <= reply_wait_time_seconds <= 20
        ):
            raise ConfigurationError(
                f"reply_wait_time_seconds={reply_wait_time_seconds!r} must be whole seconds "
                "from 1 to 20 (SQS's long-poll range)"
            )
        self._reply_wait = reply_wait_time_seconds
        self._sweep_interval = check_sweep_interval(sweep_interval)
        if codec is not None and not isinstance(codec, Codec):
            raise ConfigurationError(
                f"codec {codec!r} lacks content_type/encode/decode; see sqs_rpc.Codec"
            )
        self._codec: Codec = codec if codec is not None else JsonCodec()
        self._observer = CallObserver(check_hooks(hooks))
        build: Callable[[], SQSClient] = functools.partial(
            make_sqs_client,
            sqs_client=None,
            session=session,
            endpoint_url=endpoint_url,
            region_name=region_name,
            max_pool_connections=max_connections,
        )
        if sqs_client is None:
            self._sqs = build()
            # Only a client built here can be rebuilt in a forked child: a boto3 client's
            # connections cannot be shared across processes.
            self._rebuild: Callable[[], SQSClient] | None = build
        else:
            self._sqs = make_sqs_client(
                sqs_client=sqs_client,
                session=session,
                endpoint_url=endpoint_url,
                region_name=region_name,
            )
            self._rebuild = None
        self._payloads = PayloadStore(offload, session=session, region_name=region_name)
        self._observer.requests.watch(self._sqs)
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._closed = False
        # Created together, lazily, by _reply_address(); torn down by close() or when the
        # queue is lost (then kept in _retired until close() joins its poller).
        self._reply: ReplyChannel | None = None
        self._retired: list[ReplyChannel] = []
        self._batcher: Batcher | None = None  # created by the first send
        self._sweep = self._make_sweep()
        track(self)

    # -- context manager ------------------------------------------------------------------

    def __enter__(self) -> RpcClient:
        with self._lock:
            self._check_usable()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<RpcClient {state} reply_queue={self.reply_queue_url!r}>"

    @property
    def reply_queue_url(self) -> str | None:
        """The reply queue's URL, or None before the first call (and after close)."""
        reply = self._reply
        return reply.url if reply is not None else None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending_calls(self) -> int:
        """How many calls are waiting for a reply."""
        reply = self._reply
        return len(reply.pending) if reply is not None else 0

    def stats(self) -> ClientStats:
        """Counters, latency percentiles and SQS requests since creation (a frozen snapshot).

        Example::

            stats = client.stats()
            print(stats.calls, stats.timeouts, stats.latency.p99, stats.requests)
        """
        return self._observer.snapshot(self.pending_calls)

    # -- calls -------------------------------------------------------------------------------

    def call(
        self,
        queue_url: str,
        payload: Any = None,
        *,
        timeout: float | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
    ) -> Any:
        """Send ``payload`` to ``queue_url`` and return the decoded reply.

        Raises:
            RpcTimeout: no reply within ``timeout`` (default: the client's ``default_timeout``).
            RemoteError: the handler raised; the remote type and message are attached.
            EncodeError: the payload cannot be encoded.
            SqsError: SQS refused the request (for example :class:`QueueDoesNotExist`).
        """
        seconds = self._timeout(timeout)
        correlation_id = uuid.uuid4().hex
        message = RequestMessage(
            queue_url,
            payload,
            attributes=attributes or {},
            correlation_id=correlation_id,
            group_id=group_id,
            deduplication_id=deduplication_id,
        )
        future = self.send(message, timeout=seconds)
        try:
            return future.result(timeout=seconds)
        except FutureTimeout:
            # Only reached if this wait ends a hair before the timer fails the future. Fail
            # the future rather than cancel it, so that stats and hooks see a timeout.
            error = RpcTimeout(
                f"no reply within {seconds:g}s (correlation id {correlation_id}); raise "
                "timeout= or check the server",
                correlation_id=correlation_id,
            )
            if not settle(future, error=error):
                return future.result(timeout=0)  # settled meanwhile: that outcome stands
            raise error from None

    def call_async(
        self,
        queue_url: str,
        payload: Any = None,
        *,
        timeout: float | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
    ) -> Future[Any]:
        """Send a request and return a future for its reply.

        The future fails with :class:`RpcTimeout` at the deadline, or :class:`RemoteError`.
        Errors in sending (encoding, SQS) are raised here, at once. Cancelling the future
        forgets the call (its reply, if any, is dropped).
        """
        message = RequestMessage(
            queue_url,
            payload,
            attributes=attributes or {},
            group_id=group_id,
            deduplication_id=deduplication_id,
        )
        return self.send(message, timeout=timeout)

    def send(self, message: RequestMessage, *, timeout: float | None = None) -> Future[Any]:
        """Send a :class:`RequestMessage` and return a future for its reply."""
        seconds = self._timeout(timeout)
        correlation_id = message.correlation_id or uuid.uuid4().hex
        # Check and encode first: bad input never creates a queue or touches the pending map.
        check_message(message)
        body = self._codec.encode(message.body)
        # Size check without ReplyTo (a lower bound): an oversized payload creates no queue.
        # Nothing goes to S3 yet: the message is not final.
        self._send_arguments(message, body, correlation_id, None, None, upload=False)
        self._check_after_pause()
        pending, reply_to = self._reply_address()
        deadline_ms = int((time.time() + seconds) * 1000)
        arguments = self._send_arguments(message, body, correlation_id, reply_to, deadline_ms)
        future: Future[Any] = Future()
        self._observer.started(correlation_id, message.queue_url, future)
        pending.add(correlation_id, future, seconds)
        if future.done():
            # Failed already: the client closed, or the queue was lost, since _reply_address.
            return future
        try:
            self._send(message.queue_url, arguments, seconds)
        except Exception as exc:
            settle(future, error=exc)  # the caller gets exc; stats and hooks see an error
            raise
        except BaseException:
            future.cancel()
            raise
        logger.debug("sent call %s to %s", correlation_id, message.queue_url)
        return future

    def publish(
        self,
        queue_url: str,
        payload: Any = None,
        *,
        attributes: Mapping[str, AttributeValue] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        delay_seconds: int = 0,
    ) -> str:
        """Send a one-way message (no reply is expected) and return its SQS message id."""
        with self._lock:
            self._check_usable()
        message = RequestMessage(
            queue_url,
            payload,
            attributes=attributes or {},
            group_id=group_id,
            deduplication_id=deduplication_id,
            delay_seconds=delay_seconds,
        )
        check_message(message)
        body = self._codec.encode(payload)
        arguments = self._send_arguments(message, body, uuid.uuid4().hex, None, None)
        message_id = self._send(queue_url, arguments, self._default_timeout)
        self._observer.published()
        return message_id

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Fail pending calls, stop every thread, delete the reply queue. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            reply, retired = self._reply, self._retired
            self._reply, self._retired = None, []
            batcher = self._batcher
        untrack(self)
        if os.getpid() != self._pid:
            # A copy inherited across fork(): the threads and the queue belong to the parent.
            return
        # Shutdown order: (1) new calls are refused (above); (2) the in-process sweeper stops;
        # (3) pollers of lost queues are joined; (4) the reply channel closes: waiting calls
        # fail and its threads stop; (5) the batcher sends what is queued (requests of calls
        # already failed by (4) still go, as SQS cannot take them back anyway; replies'
        # deletes, which wait for company, go now) and stops; (6) the reply queue is deleted
        # last (see ReplyChannel.close).
        if self._sweep is not None:
            self._sweep.stop()
        for old in retired:
            old.join()

        def flush() -> None:
            if batcher is not None:
                batcher.stop()

        if reply is not None:
            reply.close(before_delete=flush)
        else:
            flush()
        self._observer.requests.detach()  # last: the requests of the steps above count

    # -- internals ---------------------------------------------------------------------------

    def _make_sweep(self) -> PeriodicSweep | None:
        if self._sweep_interval is None:
            return None
        return PeriodicSweep(self._sqs, prefix=self._prefix, interval=self._sweep_interval)

    def _check_usable(self) -> None:
        """Raise if closed; adopt the client in a forked child. Call with the lock held."""
        if self._closed:
            raise ClientClosedError("this RpcClient is closed; create a new one")
        if os.getpid() != self._pid:
            if self._rebuild is None:
                raise ClientClosedError(
                    f"this RpcClient was created in process {self._pid} with an injected "
                    "sqs_client, which cannot be shared across fork(); create the RpcClient "
                    "(and its boto3 client) in the child process, or let the RpcClient build "
                    "its own boto3 client (no sqs_client=) so that it can rebuild it after fork"
                )
            # The parent's queue, poller and heartbeat stay the parent's (the fork hook has
            # dropped them); this process gets its own boto3 client and, lazily, its own queue.
            self._reply, self._retired = None, []  # the fork hook did this too; be sure
            self._sqs = self._rebuild()
            self._observer.requests.detach()  # the parent's boto3 client
            self._observer.requests.watch(self._sqs)
            self._pid = os.getpid()
            self._sweep = self._make_sweep()
            logger.info("RpcClient adopted by process %d after fork", self._pid)
        if self._sweep is not None:
            self._sweep.start()

    def _after_fork_in_child(self) -> None:
        """Run in a forked child before any other code: forget the parent's per-process state."""
        self._lock = threading.Lock()
        self._reply = None
        self._retired = []
        self._sweep = None
        self._batcher = None  # its flusher threads stayed in the parent

    def _timeout(self, timeout: float | None) -> float:
        return self._default_timeout if timeout is None else check_timeout(timeout, "timeout")

    def _reply_address(self) -> tuple[PendingCalls, str]:
        """Return the pending map and reply queue URL, creating them on first use."""
        with self._lock:
            self._check_usable()
            if self._reply is None:
                self._reply = ReplyChannel.open(
                    self._sqs,
                    prefix=self._prefix,
                    codec=self._codec,
                    payloads=self._payloads,
                    batcher=self._batcher_locked(),
                    heartbeat_interval=self._heartbeat_interval,
                    idle_retention=self._idle_retention,
                    wait_time_seconds=self._reply_wait,
                    on_lost=self._lost,
                )
            return self._reply.pending, self._reply.url

    def _check_after_pause(self) -> None:
        """After a long pause, make sure the reply queue still exists before naming it ReplyTo.

        A process that was frozen (a warm AWS Lambda between invocations) or suspended did not
        beat its heartbeat meanwhile, so a sweeper may have deleted its queue; a request sent
        with that queue as ReplyTo would run, and its reply would be lost. When the last
        heartbeat is older than half the idle retention (the heartbeat thread keeps it within
        a third while running), one TagQueue tells, and refreshes the heartbeat; a queue that
        is gone is replaced here, before the request goes out.
        """
        reply = self._reply
        if reply is None or time.time() - reply.queue.last_heartbeat <= self._idle_retention / 2:
            return
        try:
            reply.queue.heartbeat()
        except QueueDoesNotExist:
            self._lost(reply)  # the next lines make a new queue
        except SqsError as exc:
            # Not conclusive: send the call; the heartbeat thread keeps trying.
            logger.info("could not check the reply queue after a pause: %s", exc)
        else:
            logger.debug("reply queue %s still exists after a pause", reply.queue.name)

    def _lost(self, reply: ReplyChannel) -> None:
        """The reply queue was deleted underneath; the next call makes a new one, lazily."""
        with self._lock:
            if self._reply is not reply:
                return  # already handled (the poller and the heartbeat may both notice)
            self._reply = None
            # Keep only channels whose poller still runs, for close() to join: a client that
            # loses many queues over its life does not accumulate them.
            self._retired = [old for old in self._retired if old.is_alive()]
            self._retired.append(reply)
        reply.lose()

    def _send_arguments(
        self,
        message: RequestMessage,
        body: str,
        correlation_id: str,
        reply_to: str | None,
        deadline_ms: int | None,
        *,
        upload: bool = True,
    ) -> dict[str, Any]:
        arguments = encode_request(
            body=body,
            content_type=self._codec.content_type,
            correlation_id=correlation_id,
            reply_to=reply_to,
            deadline_ms=deadline_ms,
            attributes=message.attributes,
            trace=current_trace_context(),  # set by trace_context(); see docs/tracing.md
        )
        if message.group_id is not None:
            arguments["MessageGroupId"] = message.group_id
        if message.deduplication_id is not None:
            arguments["MessageDeduplicationId"] = message.deduplication_id
        elif reply_to is not None and message.queue_url.endswith(".fifo"):
            # Every call is a request of its own: with content-based deduplication, two calls
            # with the same payload within 5 minutes would be one message, and one would time out.
            arguments["MessageDeduplicationId"] = correlation_id
        if message.delay_seconds:
            arguments["DelaySeconds"] = message.delay_seconds
        # The size check; a body over the offload threshold goes to S3 here (_offload.py), so
        # the batcher only ever sees, and sizes, the small pointer message.
        return self._payloads.outgoing(
            arguments, self._max_message_bytes, what="request", upload=upload
        )

    def _batcher_locked(self) -> Batcher:
        """The batcher, created on first use; the caller holds ``self._lock``."""
        if self._batcher is None:
            self._batcher = Batcher(
                self._sqs,
                name=f"sqs-rpc-client-{id(self):x}-batcher",
                delete_delay=REPLY_DELETE_DELAY,
                send_linger=SEND_LINGER,
                # Other calls in flight: their callers wake together when a batch of replies
                # arrives and send at once; a lone call (nothing else pending) never waits.
                busy=lambda: self.pending_calls > 1,
            )
        return self._batcher

    def _send(self, queue_url: str, arguments: dict[str, Any], timeout: float) -> str:
        # Concurrent sends to one queue share a SendMessageBatch; a lone send goes at once.
        with self._lock:
            self._check_usable()
            batcher = self._batcher_locked()
        sent = batcher.send(queue_url, arguments)
        try:
            # Bounded by the call's own timeout: a slow or retried send must not outlast it.
            return sent.result(timeout)
        except FutureTimeout:
            raise RpcTimeout(
                f"the request to {queue_url} could not be sent within {timeout:g}s (SQS is "
                "slow or unreachable); it may still be sent: raise timeout= or check the "
                "endpoint"
            ) from None
