"""MessagePoller: the server's options, lifecycle, stats and health.

The parts, one module each: :mod:`sqs_rpc._receiver` long-polls and hands messages to workers
(FIFO groups in order); :mod:`sqs_rpc._processing` decides what happens to one message
(decode, reply policy, deadline, reply cache, handler, reply, delete);
:mod:`sqs_rpc._reply_cache` answers redeliveries; :mod:`sqs_rpc._outbox` sends replies and
deletes in batches; :mod:`sqs_rpc._visibility` keeps long handlers' messages hidden;
:mod:`sqs_rpc._event_loop` runs async handlers. ``docs/server.md`` has the full table of
outcomes and every option.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

import boto3

from sqs_rpc._aws import make_sqs_client
from sqs_rpc._client.reply_queue import DEFAULT_PREFIX
from sqs_rpc._codecs import Codec, JsonCodec
from sqs_rpc._errors import ClientClosedError, ConfigurationError, aws_errors
from sqs_rpc._hooks import Hooks, check_hooks
from sqs_rpc._observe import MessageObserver
from sqs_rpc._offload import PayloadStore, S3Offload
from sqs_rpc._stats import PollerHealth, PollerStats
from sqs_rpc._sweeper import PeriodicSweep, check_sweep_interval
from sqs_rpc._wire import MAX_MESSAGE_BYTES, check_max_message_bytes

from .dispatcher import Dispatcher
from .event_loop import EventLoopThread
from .handler import IncomingMessage, MessageHandler, Retry
from .outbox import Outbox
from .receiver import Receiver
from .reply_policy import ReplyPolicy, ReplyToAllowed
from .visibility import VisibilityHeartbeat

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["IncomingMessage", "MessageHandler", "MessagePoller", "Retry"]

logger = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 10  # one full receive (SQS returns at most 10 messages) at once
DEFAULT_WAIT_TIME_SECONDS = 20
DEFAULT_SHUTDOWN_TIMEOUT = 30.0
DEFAULT_MAX_VISIBILITY_EXTENSION = 3600.0
MAX_VISIBILITY_SECONDS = 43200  # SQS: a message is hidden at most 12 hours after its receive
DEFAULT_REPLY_CACHE_TTL = 300.0
DEFAULT_REPLY_CACHE_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_RECEIVE_AGE = 120.0


def _seconds(value: object, name: str, *, low: float, high: float, rule: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ConfigurationError(f"{name}={value!r} must be {rule}")
    return float(value)


def _whole(value: object, name: str, *, low: int, high: int, rule: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{name}={value!r} must be {rule}")
    return value


def max_receive_count(redrive_policy: str | None, queue_url: str) -> int | None:
    """The ``maxReceiveCount`` of a queue's ``RedrivePolicy`` attribute; None (warned) if none."""
    count: int | None = None
    if redrive_policy:
        try:
            count = int(json.loads(redrive_policy)["maxReceiveCount"])
        except (ValueError, KeyError, TypeError):
            logger.warning("cannot read the RedrivePolicy of %s", queue_url)
    if count is None:
        logger.warning(
            "request queue %s has no redrive policy: a message that keeps failing comes "
            "back until its retention period ends; give it a dead-letter queue",
            queue_url,
        )
    return count


class MessagePoller:
    """Consumes a request queue, runs a :class:`MessageHandler`, and replies.

    Example::

        poller = MessagePoller(queue_url, Echo(), concurrency=8)
        poller.start()      # background threads; or poller.run() to block until SIGTERM/SIGINT
        ...
        poller.stats(), poller.health()
        poller.stop()

    Every option, with its default, is described in ``docs/server.md``.

    Args:
        queue_url: the request queue.
        handler: your :class:`MessageHandler` (``handle`` may be ``async def``).
        concurrency: handler threads; also the most messages held at once.
        sqs_client, session, endpoint_url, region_name: as for :class:`~sqs_rpc.RpcClient`.
        codec: decodes requests and encodes replies; JSON by default.
        wait_time_seconds: long-poll wait, 1 to 20. :meth:`stop` may wait this long for the
            receive in progress.
        shutdown_timeout: seconds :meth:`stop` waits for running handlers.
        include_traceback: send the handler's traceback in error replies' details.
        reply_prefix: the default reply policy's queue name prefix (or a list of prefixes).
        reply_to_allowed: URL patterns or a callable replacing the default reply policy.
        visibility_timeout: seconds each heartbeat hides a running message for (None: the
            queue's own visibility timeout).
        heartbeat_interval: seconds between heartbeats (None: a third of the visibility
            timeout); must be shorter than the visibility timeout.
        max_visibility_extension: seconds after its receive past which a running message is no
            longer extended; 0 turns the heartbeat off.
        reply_cache_ttl: seconds a finished request's reply is kept to answer a redelivery
            without running the handler again; 0 turns the cache off.
        reply_cache_bytes: the reply cache's memory bound, in bytes (each entry counts every
            string it holds, the sender's ReplyTo and CorrelationId included, plus about
            1.2 KiB of bookkeeping).
        max_message_bytes: the largest reply sent; a larger one is replaced by an error
            reply (``PayloadTooLarge``) so the caller learns why. SQS's limit by default.
        sweep_interval: when set, seconds (jittered) between sweeps of orphaned reply queues
            under ``sweep_prefix``, run in the background while started; off by default.
        sweep_prefix: the reply queue prefix to sweep.
        offload: an :class:`~sqs_rpc.S3Offload`: requests whose body is in S3 are read from
            there (only the object the caller wrote for the request, in an allowed bucket)
            and replies too large for SQS go through S3.
        hooks: ``on_message_handled`` runs for every message (:class:`~sqs_rpc.Hooks`);
            none by default. See docs/observability.md.
    """

    def __init__(
        self,
        queue_url: str,
        handler: MessageHandler,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        sqs_client: SQSClient | None = None,
        session: boto3.session.Session | None = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        codec: Codec | None = None,
        wait_time_seconds: int = DEFAULT_WAIT_TIME_SECONDS,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        include_traceback: bool = False,
        reply_prefix: str | Sequence[str] = DEFAULT_PREFIX,
        reply_to_allowed: ReplyToAllowed | None = None,
        visibility_timeout: int | None = None,
        heartbeat_interval: float | None = None,
        max_visibility_extension: float = DEFAULT_MAX_VISIBILITY_EXTENSION,
        reply_cache_ttl: float = DEFAULT_REPLY_CACHE_TTL,
        reply_cache_bytes: int = DEFAULT_REPLY_CACHE_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        sweep_interval: float | None = None,
        sweep_prefix: str = DEFAULT_PREFIX,
        offload: S3Offload | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        if not isinstance(queue_url, str) or not queue_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"queue_url {queue_url!r} is not a queue URL")
        if not callable(getattr(handler, "handle", None)):
            raise ConfigurationError(
                f"handler {handler!r} has no handle() method; subclass sqs_rpc.MessageHandler"
            )
        _whole(concurrency, "concurrency", low=1, high=10**6, rule="an int >= 1")
        _whole(
            wait_time_seconds,
            "wait_time_seconds",
            low=1,
            high=20,
            rule="whole seconds from 1 to 20 (SQS's long-poll range; 0 would busy-poll)",
        )
        _seconds(
            shutdown_timeout, "shutdown_timeout", low=0, high=86400, rule="seconds from 0 to 86400"
        )
        if codec is not None and not isinstance(codec, Codec):
            raise ConfigurationError(
                f"codec {codec!r} lacks content_type/encode/decode; see sqs_rpc.Codec"
            )
        if visibility_timeout is not None:
            _whole(
                visibility_timeout,
                "visibility_timeout",
                low=1,
                high=MAX_VISIBILITY_SECONDS,
                rule=f"whole seconds from 1 to {MAX_VISIBILITY_SECONDS}, or None",
            )
        if heartbeat_interval is not None:
            _seconds(
                heartbeat_interval,
                "heartbeat_interval",
                low=0.001,
                high=MAX_VISIBILITY_SECONDS,
                rule="seconds > 0, or None for a third of the visibility timeout",
            )
        _seconds(
            max_visibility_extension,
            "max_visibility_extension",
            low=0,
            high=MAX_VISIBILITY_SECONDS,
            rule=f"seconds from 0 (no heartbeat) to {MAX_VISIBILITY_SECONDS} (SQS's limit)",
        )
        if visibility_timeout is not None and heartbeat_interval is not None:
            self._check_heartbeat(heartbeat_interval, visibility_timeout)
        _seconds(
            reply_cache_ttl,
            "reply_cache_ttl",
            low=0,
            high=86400,
            rule="seconds from 0 (no cache) to 86400",
        )
        _whole(reply_cache_bytes, "reply_cache_bytes", low=1, high=2**40, rule="bytes >= 1")
        self.queue_url = queue_url
        self._handler = handler
        self._concurrency = concurrency
        self._shutdown_timeout = float(shutdown_timeout)
        self._visibility_timeout = visibility_timeout
        self._heartbeat_interval = heartbeat_interval
        self._max_extension = float(max_visibility_extension)
        self._sqs = make_sqs_client(
            sqs_client=sqs_client,
            session=session,
            endpoint_url=endpoint_url,
            region_name=region_name,
            max_pool_connections=concurrency + 4,
        )
        policy = ReplyPolicy(queue_url, prefix=reply_prefix, allowed=reply_to_allowed)
        name = "sqs-rpc-server-" + queue_url.rstrip("/").rsplit("/", 1)[-1][:40]
        self._name = name
        self._observer = MessageObserver(queue_url, check_hooks(hooks))
        self._outbox = Outbox(
            self._sqs,
            queue_url,
            name=name,
            counters=self._observer.counters,
            # Other requests being handled: their replies are about to join this one.
            busy=lambda: self._receiver.in_flight > 1,
        )
        self._event_loop = EventLoopThread(f"{name}-asyncio")
        self._dispatcher = Dispatcher(
            sqs=self._sqs,
            queue_url=queue_url,
            handler=handler,
            codec=codec if codec is not None else JsonCodec(),
            policy=policy,
            outbox=self._outbox,
            observer=self._observer,
            event_loop=self._event_loop,
            include_traceback=include_traceback,
            max_message_bytes=check_max_message_bytes(max_message_bytes),
            reply_cache_ttl=float(reply_cache_ttl),
            reply_cache_bytes=reply_cache_bytes,
            payloads=PayloadStore(offload, session=session, region_name=region_name),
        )
        self._heartbeat: VisibilityHeartbeat | None = None
        self._receiver = Receiver(
            self._sqs,
            queue_url,
            name=name,
            concurrency=concurrency,
            wait_time=wait_time_seconds,
            process=self._dispatcher.process,
            counters=self._observer.counters,
        )
        self._started_at: float | None = None
        self._state_lock = threading.Lock()
        self._started = False
        self._stopped = False
        interval = check_sweep_interval(sweep_interval)
        self._sweep = (
            None
            if interval is None
            else PeriodicSweep(self._sqs, prefix=sweep_prefix, interval=interval)
        )

    @staticmethod
    def _check_heartbeat(interval: float, visibility_timeout: int) -> None:
        if interval >= visibility_timeout:
            raise ConfigurationError(
                f"heartbeat_interval={interval:g} must be shorter than the visibility timeout "
                f"({visibility_timeout}s), or the message reappears between two heartbeats; "
                "lower heartbeat_interval or raise visibility_timeout"
            )

    def __enter__(self) -> MessagePoller:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._started and not self._stopped

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Check the queue and the configuration against it, then start receiving. Idempotent."""
        with self._state_lock:
            if self._stopped:
                raise ClientClosedError("this MessagePoller was stopped; create a new one")
            if self._started:
                return
            # Counted from here to the end of stop(): a poller that is never started holds
            # no handler on an injected boto3 client.
            self._observer.requests.watch(self._sqs)
            # Fail here, not in a background loop, when the URL is wrong.
            try:
                with aws_errors("GetQueueAttributes", self.queue_url):
                    attributes = self._sqs.get_queue_attributes(
                        QueueUrl=self.queue_url,
                        AttributeNames=["VisibilityTimeout", "RedrivePolicy"],
                    ).get("Attributes", {})
                self._configure_heartbeat(int(attributes.get("VisibilityTimeout", "30")))
                self._configure_redrive(attributes.get("RedrivePolicy"))
            except BaseException:
                self._observer.requests.detach()
                raise
            self._started = True
            self._started_at = time.monotonic()
            self._outbox.start()
            if self._heartbeat is not None:
                self._heartbeat.start()
            self._receiver.start()
            if self._sweep is not None:
                self._sweep.start()
        logger.info("polling %s with %d workers", self.queue_url, self._concurrency)

    def _configure_heartbeat(self, queue_visibility: int) -> None:
        timeout = self._visibility_timeout or queue_visibility
        if self._max_extension <= 0 or timeout <= 0:
            logger.info("visibility heartbeat off for %s", self.queue_url)
            return
        interval = self._heartbeat_interval
        if interval is None:
            interval = timeout / 3
        self._check_heartbeat(interval, timeout)
        self._heartbeat = VisibilityHeartbeat(
            self._sqs,
            self.queue_url,
            name=self._name,
            interval=interval,
            timeout=timeout,
            max_extension=self._max_extension,
        )
        self._dispatcher.heartbeat = self._heartbeat

    def _configure_redrive(self, redrive_policy: str | None) -> None:
        self._dispatcher.max_receive_count = max_receive_count(redrive_policy, self.queue_url)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop receiving, let running handlers finish, release what was not started.

        Waits up to ``timeout`` (default: ``shutdown_timeout``) for handlers. Returns True when
        everything stopped in time. Idempotent.
        """
        with self._state_lock:
            if self._stopped:
                return True
            self._stopped = True
        budget = self._shutdown_timeout if timeout is None else timeout
        # Shutdown order: (1) stop receiving: a receive in progress returns within the
        # long-poll wait and releases what it got (visibility 0); (2) drain: handlers that
        # started finish, bounded by the budget, and their replies and deletes go out through
        # the outbox, which is still running; (3) stop the worker pool; (4) stop the outbox,
        # flushing what is left (a late handler flushes its own); (5) stop the heartbeat
        # (a late handler's message is no longer extended); (6) stop the event loop; (7) stop
        # the in-process sweeper, if any; (8) stop counting SQS requests.
        receiver_done = self._receiver.stop_receiving()
        drained = self._receiver.drain(budget)
        self._outbox.stop(30)
        if self._heartbeat is not None:
            self._heartbeat.stop(30)
        self._event_loop.stop(30 if drained else 0)
        if self._sweep is not None:
            self._sweep.stop()
        self._observer.requests.detach()
        logger.info("stopped polling %s", self.queue_url)
        return receiver_done and drained

    def run(self) -> None:
        """Start, block until SIGTERM or SIGINT, then :meth:`stop` gracefully.

        Must be called from the main thread (signal handlers can only be installed there);
        the previous handlers are restored on return.
        """
        if threading.current_thread() is not threading.main_thread():
            raise ConfigurationError("run() must be called from the main thread; use start()")
        stop_requested = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            logger.info("received %s; shutting down", signal.Signals(signum).name)
            stop_requested.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            stop_requested.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    # -- observing ---------------------------------------------------------------------------

    def stats(self) -> PollerStats:
        """Counters, latency and SQS requests since creation; ``in_flight`` is held right now."""
        return self._observer.snapshot(self._receiver.in_flight)

    def health(self, max_receive_age: float = DEFAULT_MAX_RECEIVE_AGE) -> PollerHealth:
        """Is this poller working? For a process manager's liveness check.

        Healthy means: running, the receiver thread alive, and a ``ReceiveMessage`` succeeded
        within ``max_receive_age`` seconds (or all workers are busy, so none was due).
        """
        now = time.monotonic()
        last = self._receiver.last_receive
        age = None if last is None else now - last
        running = self.running
        alive = self._receiver.is_alive()
        recent = (
            self._receiver.waiting_for_workers
            or (age is not None and age <= max_receive_age)
            or (
                age is None
                and self._started_at is not None
                and now - self._started_at <= max_receive_age
            )
        )
        return PollerHealth(
            healthy=running and alive and recent,
            running=running,
            receiver_alive=alive,
            last_receive_age=age,
            consecutive_receive_errors=self._receiver.errors_in_a_row,
            in_flight=self._receiver.in_flight,
        )
