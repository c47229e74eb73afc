"""RpcClient: send requests to a queue and wait for their replies; RequestMessage.

A client owns one temporary reply queue (created on the first call that needs it, never for a
client that only publishes), one reply poller, one heartbeat and one timeout timer. Many
threads may share one client.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3

from ._aws import make_sqs_client
from ._batcher import Batcher
from ._codecs import Codec, JsonCodec
from ._errors import ClientClosedError, ConfigurationError, RpcTimeout
from ._loop import BackgroundLoop
from ._pending import PendingCalls
from ._reply_poller import ReplyPoller
from ._reply_queue import DEFAULT_PREFIX, ReplyQueue, validate_prefix
from ._trace import current_trace_context
from ._wire import (
    MAX_MESSAGE_BYTES,
    AttributeValue,
    check_max_message_bytes,
    check_message_size,
    encode_attributes,
    encode_request,
)

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
MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds


@dataclass(frozen=True)
class RequestMessage:
    """A request for :meth:`RpcClient.send`: the lower-level form of :meth:`RpcClient.call`.

    Example::

        msg = RequestMessage("https://sqs.../orders", {"id": 7}, group_id="customer-42")
        future = client.send(msg, timeout=5)

    Attributes:
        queue_url: the request queue.
        body: the payload, encoded by the client's codec.
        attributes: your own message attributes (str or bytes values; at most 3).
        correlation_id: a unique id for the call; generated when None.
        group_id: ``MessageGroupId``, required by FIFO queues.
        deduplication_id: ``MessageDeduplicationId`` for FIFO queues without
            content-based deduplication.
        delay_seconds: ``DelaySeconds``, 0 to 900 (standard queues only).
    """

    queue_url: str
    body: Any = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    correlation_id: str | None = None
    group_id: str | None = None
    deduplication_id: str | None = None
    delay_seconds: int = 0


def _check_timeout(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number of seconds, not {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ConfigurationError(f"{name} must be a finite number of seconds > 0, not {value!r}")
    return float(value)


def _check_queue_url(queue_url: str) -> str:
    if not isinstance(queue_url, str) or not queue_url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"queue URL {queue_url!r} is not a URL; pass the queue's URL (get_queue_url "
            "returns it), not its name"
        )
    return queue_url


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
        heartbeat_interval: seconds between refreshes of the reply queue's heartbeat tag.
        idle_retention: seconds without a heartbeat after which a sweeper may delete the
            reply queue; at least three heartbeat intervals.
        max_connections: HTTP connection pool size of the SQS client built here (ignored with
            ``sqs_client=``); make it at least the number of threads calling concurrently.
        max_message_bytes: the largest request (body plus attributes) this client sends;
            larger ones raise :class:`~sqs_rpc.PayloadTooLarge`. SQS's limit by default.
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
    ) -> None:
        self._prefix = validate_prefix(queue_prefix)
        self._default_timeout = _check_timeout(default_timeout, "default_timeout")
        self._heartbeat_interval = _check_timeout(heartbeat_interval, "heartbeat_interval")
        if not isinstance(idle_retention, int) or idle_retention < 3 * heartbeat_interval:
            raise ConfigurationError(
                f"idle_retention={idle_retention!r} must be whole seconds, at least three "
                f"heartbeat intervals ({3 * heartbeat_interval:g}s), so that a sweeper never "
                "deletes the queue of a live client whose heartbeat is a little late"
            )
        self._idle_retention = idle_retention
        self._max_message_bytes = check_max_message_bytes(max_message_bytes)
        if codec is not None and not isinstance(codec, Codec):
            raise ConfigurationError(
                f"codec {codec!r} lacks content_type/encode/decode; see sqs_rpc.Codec"
            )
        self._codec: Codec = codec if codec is not None else JsonCodec()
        self._sqs = make_sqs_client(
            sqs_client=sqs_client,
            session=session,
            endpoint_url=endpoint_url,
            region_name=region_name,
            max_pool_connections=max_connections,
        )
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._closed = False
        # Created together, lazily, by _reply_address(); torn down by close().
        self._reply_queue: ReplyQueue | None = None
        self._pending: PendingCalls | None = None
        self._poller: ReplyPoller | None = None
        self._heartbeat: BackgroundLoop | None = None
        self._batcher: Batcher | None = None  # created by the first send

    # -- context manager ------------------------------------------------------------------

    def __enter__(self) -> RpcClient:
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
        queue = self._reply_queue
        return queue.url if queue is not None else None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending_calls(self) -> int:
        """How many calls are waiting for a reply."""
        pending = self._pending
        return len(pending) if pending is not None else 0

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
            # Only reached if this wait ends a hair before the timer fails the future.
            future.cancel()
            raise RpcTimeout(
                f"no reply within {seconds:g}s (correlation id {correlation_id}); raise "
                "timeout= or check the server",
                correlation_id=correlation_id,
            ) from None

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
        self._check_message(message)
        body = self._codec.encode(message.body)
        # Size check without ReplyTo (a lower bound): an oversized payload creates no queue.
        self._send_arguments(message, body, correlation_id, None, None)
        pending, reply_to = self._reply_address()
        deadline_ms = int((time.time() + seconds) * 1000)
        arguments = self._send_arguments(message, body, correlation_id, reply_to, deadline_ms)
        future: Future[Any] = Future()
        pending.add(correlation_id, future, seconds)
        try:
            self._send(message.queue_url, arguments)
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
        self._check_usable()
        message = RequestMessage(
            queue_url,
            payload,
            attributes=attributes or {},
            group_id=group_id,
            deduplication_id=deduplication_id,
            delay_seconds=delay_seconds,
        )
        self._check_message(message)
        body = self._codec.encode(payload)
        arguments = self._send_arguments(message, body, uuid.uuid4().hex, None, None)
        return self._send(queue_url, arguments)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Fail pending calls, stop every thread, delete the reply queue. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            queue, pending = self._reply_queue, self._pending
            poller, heartbeat, batcher = self._poller, self._heartbeat, self._batcher
        if os.getpid() != self._pid:
            # A copy inherited across fork(): the threads and the queue belong to the parent.
            return
        # Shutdown order: (1) new calls are refused (above); (2) waiting callers are failed,
        # so no one waits on a closing client; (3) the timer and heartbeat stop; (4) the
        # poller is woken and joined; (5) the batcher flushes the last reply deletes and
        # stops; (6) the queue is deleted last, so the poller never receives from a queue
        # that is gone.
        if pending is not None:
            failed = pending.fail_all(
                lambda cid: ClientClosedError(f"the client was closed while call {cid} waited")
            )
            if failed:
                logger.info("closing client: failed %d pending calls", failed)
            pending.stop()
        if heartbeat is not None:
            heartbeat.stop()
        if poller is not None:
            poller.stop()
        if batcher is not None:
            batcher.close()
        if queue is not None:
            queue.delete()

    # -- internals ---------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise ClientClosedError("this RpcClient is closed; create a new one")
        if os.getpid() != self._pid:
            raise ClientClosedError(
                f"this RpcClient was created in process {self._pid} and cannot be used after "
                "fork(); create a new RpcClient in the child process"
            )

    def _timeout(self, timeout: float | None) -> float:
        return self._default_timeout if timeout is None else _check_timeout(timeout, "timeout")

    def _reply_address(self) -> tuple[PendingCalls, str]:
        """Return the pending map and reply queue URL, creating them on first use."""
        with self._lock:
            self._check_usable()
            if self._pending is not None and self._reply_queue is not None:
                assert self._reply_queue.url is not None
                return self._pending, self._reply_queue.url
            queue = ReplyQueue(
                self._sqs, prefix=self._prefix, retention_seconds=self._idle_retention
            )
            url = queue.create()
            tag = queue.name[-8:]
            pending = PendingCalls(f"sqs-rpc-client-{tag}")
            poller = ReplyPoller(
                self._sqs,
                url,
                pending,
                self._codec,
                self._batcher_locked(),
                name=f"sqs-rpc-client-{tag}-replies",
            )
            interval = self._heartbeat_interval

            def beat() -> float:
                queue.heartbeat()
                return interval * random.uniform(0.9, 1.1)  # jitter: clients do not beat in step

            heartbeat = BackgroundLoop(
                f"sqs-rpc-client-{tag}-heartbeat", beat, initial_delay=interval
            )
            pending.start()
            poller.start()
            heartbeat.start()
            self._reply_queue, self._pending = queue, pending
            self._poller, self._heartbeat = poller, heartbeat
            return pending, url

    @staticmethod
    def _check_message(message: RequestMessage) -> None:
        _check_queue_url(message.queue_url)
        encode_attributes(message.attributes)
        delay = message.delay_seconds
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int)
            or not (0 <= delay <= MAX_DELAY_SECONDS)
        ):
            raise ConfigurationError(
                f"delay_seconds={delay!r} must be whole seconds from 0 to {MAX_DELAY_SECONDS}"
            )

    def _send_arguments(
        self,
        message: RequestMessage,
        body: str,
        correlation_id: str,
        reply_to: str | None,
        deadline_ms: int | None,
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
        if message.delay_seconds:
            arguments["DelaySeconds"] = message.delay_seconds
        check_message_size(arguments, self._max_message_bytes, what="request")
        return arguments

    def _batcher_locked(self) -> Batcher:
        """The batcher, created on first use; the caller holds ``self._lock``."""
        if self._batcher is None:
            self._batcher = Batcher(self._sqs, name=f"sqs-rpc-client-{id(self):x}")
        return self._batcher

    def _send(self, queue_url: str, arguments: dict[str, Any]) -> str:
        # Concurrent sends to one queue share a SendMessageBatch; a lone send goes at once.
        with self._lock:
            self._check_usable()
            batcher = self._batcher_locked()
        return batcher.send(queue_url, arguments).result()
