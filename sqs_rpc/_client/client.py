"""RpcClient: send requests to a queue and wait for their replies.

A client owns one temporary reply queue, created on the first call that needs it. A client
that only publishes never makes one. Its transport (``transport.py``) holds the queue, the
reply poller, the timeout timer and the batcher. The process-wide heartbeat
(``heartbeat.py``) keeps the queue's tag fresh. Many threads may share one client.

No way out leaves a queue or a thread behind:

- ``close()`` deletes the queue at once.
- At interpreter exit, ``atexit`` closes clients still open (``process.py``).
- A client dropped without ``close()`` warns (``ResourceWarning``, like an unclosed file)
  when it is garbage-collected, and its queue and threads are released then. No thread
  holds the client itself: they hold its transport.
- A SIGKILLed client's queue is deleted by a sweeper after its idle retention.
- In a forked child, the client forgets the parent's queue and threads, and lazily makes its
  own. That needs a boto3 client sqs-rpc built: an injected one cannot cross a fork.
- A queue deleted underneath fails the waiting calls with :class:`ReplyQueueLost`, and the
  next call makes a new queue.
"""

from __future__ import annotations

import functools
import logging
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
from botocore.config import Config

from sqs_rpc._attributes import MAX_MESSAGE_BYTES, AttributeValue
from sqs_rpc._aws import make_sqs_client
from sqs_rpc._codecs import Codec
from sqs_rpc._hooks import Hooks, check_hooks
from sqs_rpc._loop import owner_id
from sqs_rpc._observe import CallObserver
from sqs_rpc._offload import S3Offload
from sqs_rpc._options import (
    DEFAULT_REPLY_QUEUE_PREFIX,
    check_codec,
    check_idle_retention,
    check_max_message_bytes,
    check_reply_wait,
    check_sweep_interval,
)
from sqs_rpc._payload_store import PayloadStore
from sqs_rpc._state import ClientState
from sqs_rpc._stats import ClientStats

from .caller import Caller
from .process import release_unclosed, track, untrack
from .proxy import sync_proxy
from .reply_poller import WAIT_TIME_SECONDS
from .reply_queue import validate_prefix
from .request import RequestEncoder, RequestMessage, check_timeout
from .transport import Transport

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "CLOSE_TIMEOUT",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_IDLE_RETENTION",
    "DEFAULT_TIMEOUT",
    "RequestMessage",
    "RpcClient",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
DEFAULT_HEARTBEAT_INTERVAL = 60.0
DEFAULT_IDLE_RETENTION = 600
DEFAULT_MAX_CONNECTIONS = 50
# The bound of close(): the threads it stops and the final DeleteQueue share it. A healthy
# close takes well under a second: the poller is woken by a message. Against an SQS that does
# not answer, each request of the close gives up after 5 s, and the threads are not waited for.
CLOSE_TIMEOUT = 30.0


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
        reply_queue_prefix: reply queue names are this prefix plus a 32-character id.
        default_timeout: seconds a call waits for its reply when it is given no ``timeout``.
        codec: encodes payloads and decodes replies. JSON by default.
        heartbeat_interval: seconds between refreshes of the reply queue's heartbeat tag.
            Every queue is refreshed within its interval, by one thread per process
            (see docs/operations.md).
        idle_retention: seconds without a heartbeat after which a sweeper may delete the
            reply queue. At least three heartbeat intervals.
        max_connections: HTTP connection pool size of the SQS client built here (ignored with
            ``sqs_client=``). Make it at least the number of threads calling concurrently.
        max_message_bytes: the largest request (body plus attributes) this client sends.
            Larger ones raise :class:`~sqs_rpc.PayloadTooLarge`. SQS's limit by default.
        reply_wait_time_seconds: long-poll wait of the reply poller, 1 to 20.
        sweep_interval: seconds (jittered) between sweeps of orphaned reply queues under
            ``reply_queue_prefix``, run by this client in the background. Off by default.
        offload: an :class:`~sqs_rpc.S3Offload`. Requests too large for SQS go through S3,
            and replies offloaded by servers are read from S3 (see docs/payloads.md).
        hooks: callbacks on every call's start and end (:class:`~sqs_rpc.Hooks`), for
            metrics. None by default. See docs/observability.md.
        botocore_config: a ``botocore.config.Config`` for the boto3 clients built here (SQS,
            and S3 with ``offload``), merged over sqs-rpc's pool size, timeouts and retries:
            the options it sets win. Its ``read_timeout`` must be longer than
            ``reply_wait_time_seconds``. Not with ``sqs_client=``. See docs/client.md.
    """

    def __init__(
        self,
        *,
        sqs_client: SQSClient | None = None,
        session: boto3.session.Session | None = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        reply_queue_prefix: str = DEFAULT_REPLY_QUEUE_PREFIX,
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
        botocore_config: Config | None = None,
    ) -> None:
        prefix = validate_prefix(reply_queue_prefix)
        default = check_timeout(default_timeout, "default_timeout")
        heartbeat = check_timeout(
            heartbeat_interval, "heartbeat_interval", maximum=threading.TIMEOUT_MAX
        )
        check_idle_retention(idle_retention, heartbeat_interval)
        max_bytes = check_max_message_bytes(max_message_bytes)
        check_reply_wait(reply_wait_time_seconds)
        sweep_every = check_sweep_interval(sweep_interval)
        self._codec = check_codec(codec)
        self._observer = CallObserver(check_hooks(hooks))
        build = functools.partial(
            make_sqs_client,
            sqs_client=None,
            session=session,
            endpoint_url=endpoint_url,
            region_name=region_name,
            max_pool_connections=max_connections,
            botocore_config=botocore_config,
            long_poll_seconds=reply_wait_time_seconds,
        )
        sqs = build(sqs_client=sqs_client)
        payloads = PayloadStore(
            offload, session=session, region_name=region_name, botocore_config=botocore_config
        )
        payloads.watch(self._observer.s3_requests)  # S3 requests, in stats().s3_requests
        self._caller = Caller(
            RequestEncoder(self._codec, payloads, max_bytes),
            self._observer,
            default_timeout=default,
        )
        self._transport = Transport(
            sqs,
            # Only a boto3 client built here can be rebuilt in a forked child: its
            # connections cannot be shared across processes.
            rebuild=build if sqs_client is None else None,
            requests=self._observer.requests,
            owner=owner_id(self),
            prefix=prefix,
            codec=self._codec,
            payloads=payloads,
            heartbeat_interval=heartbeat,
            idle_retention=idle_retention,
            reply_wait=reply_wait_time_seconds,
            sweep_interval=sweep_every,
        )
        # Guards the state. Every change of state is in _open() or close().
        self._lock = threading.Lock()
        self._state = ClientState.UNOPENED
        track(self)

    # -- context manager ------------------------------------------------------------------

    def __enter__(self) -> RpcClient:
        self._open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RpcClient {self._state.value} reply_queue={self.reply_queue_url!r}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # Like an unclosed file or socket: warn, then release what close() would have. Only
        # an opened client owns anything (threads, a queue). getattr: __init__ may have failed.
        if getattr(self, "_state", None) is not ClientState.OPENED:
            return
        self._state = ClientState.CLOSED
        _warn(
            f"unclosed RpcClient (reply queue {self.reply_queue_url}); call close(), or use "
            "'with RpcClient() as client:'",
            ResourceWarning,
            source=self,
        )
        release_unclosed(
            self._transport.stop, self._observer.requests.detach, owner_id(self), CLOSE_TIMEOUT
        )

    @property
    def reply_queue_url(self) -> str | None:
        """The reply queue's URL, or None before the first call (and after close)."""
        return self._transport.reply_queue_url

    @property
    def closed(self) -> bool:
        return self._state is ClientState.CLOSED

    @property
    def pending_calls(self) -> int:
        """How many calls are waiting for a reply."""
        return self._transport.pending_calls()

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
            RpcTimeout: no reply within ``timeout`` (default: the client's ``default_timeout``;
                inside a handler, the inbound request's remaining time, which also caps it).
            RemoteError: the handler raised; the remote type and message are attached.
            EncodeError: the payload cannot be encoded.
            SqsError: SQS refused the request (for example :class:`QueueDoesNotExist`).
        """
        message = RequestMessage(
            queue_url,
            payload,
            attributes=attributes or {},
            correlation_id=uuid.uuid4().hex,
            group_id=group_id,
            deduplication_id=deduplication_id,
        )
        return self._caller.call(message, timeout, self._open)

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
        chosen_id = bool(message.correlation_id)
        future, _ = self._caller.send(message, timeout, self._open, chosen_id=chosen_id)
        return future

    def proxy(
        self,
        service: Callable[..., T],
        queue_url: str,
        *,
        timeout: float | None = None,
        errors: Iterable[type[Exception]] = (),
    ) -> T:
        """A typed stand-in for the :class:`~sqs_rpc.Service` behind ``queue_url``.

        ``service`` is the service's class or a ``typing.Protocol`` of it; the proxy has its
        methods, and type checkers check calls against their signatures. A ``def`` method
        blocks and returns the validated result (:class:`~sqs_rpc.ValidationError` if the
        reply does not fit); an ``async def`` one returns an awaitable. A remote error whose
        code (or type name) is the ``code`` attribute (or name) of a class in ``errors`` is
        raised as that class; others as :class:`RemoteError`.

        Example::

            pricing = client.proxy(Pricing, queue_url, errors=[OutOfStock])
            quote = pricing.quote("A-1", qty=3)                 # a Quote
            later = sqs_rpc.future(pricing.quote)("B-2")        # Future[Quote]
        """
        # Callable[..., T], not type[T]: mypy refuses a Protocol where type[T] is expected.
        return cast(
            T,
            sync_proxy(self, cast(type, service), queue_url, timeout=timeout, errors=errors),
        )

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
        message = RequestMessage(
            queue_url,
            payload,
            attributes=attributes or {},
            group_id=group_id,
            deduplication_id=deduplication_id,
            delay_seconds=delay_seconds,
        )
        return self._caller.publish(message, self._open)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Fail pending calls, stop every thread, delete the reply queue. Idempotent.

        Returns within :data:`CLOSE_TIMEOUT` seconds whatever SQS does: about 10 s when SQS
        does not answer at all (5 s to wake the reply poller, 5 s for ``DeleteQueue``). What
        it gives up on is logged at WARNING: threads still running (daemon threads) and a
        queue not deleted (left for a sweeper).
        """
        with self._lock:
            if self._state is ClientState.CLOSED:
                return
            # (1) of the shutdown order: new calls are refused. Transport.stop does the rest.
            self._state = ClientState.CLOSED
        untrack(self)
        if not self._transport.stop(CLOSE_TIMEOUT):
            owner = owner_id(self)
            left = sorted(t.name for t in threading.enumerate() if owner in t.name)
            logger.warning(
                "RpcClient.close(): threads still running, not waited for: %s; they are "
                "daemon threads, which end when their SQS request returns, or with the process",
                ", ".join(left) or "none by now",
            )
        self._observer.requests.detach()  # last: the requests of the steps above count
        self._observer.s3_requests.detach()

    # -- internals ---------------------------------------------------------------------------

    def _open(self) -> Transport:
        """Open the client on first use and return its transport.

        Raises :class:`ClientClosedError` once closed.
        """
        with self._lock:
            state = self._state.open("RpcClient")
            self._transport.start()  # adopts the client in a forked child, or raises
            self._state = state
        return self._transport

    def _after_fork_in_child(self) -> None:
        """Run in a forked child before any other code: forget the parent's per-process state."""
        self._lock = threading.Lock()
        self._transport.after_fork_in_child()

    def _timeout(self, timeout: float | None) -> float:
        return self._caller.timeout(timeout)  # for the proxies
