"""MessagePoller: the server's public face: options, lifecycle, ``run()``, stats and health.

The parts, one module each: :mod:`~sqs_rpc._server.runtime` builds, starts and stops the
rest; :mod:`~sqs_rpc._server.receiver` long-polls and starts messages (FIFO groups in
order); :mod:`~sqs_rpc._server.work` and :mod:`~sqs_rpc._server.workers` run a message's
work on worker threads and its async handler on the event loop
(:mod:`~sqs_rpc._server.event_loop`); :mod:`~sqs_rpc._server.dispatcher` decides what
happens to one message (decode, reply policy, deadline, idempotency, handler, reply, delete);
:mod:`~sqs_rpc._server.outbox` sends replies and deletes in batches;
:mod:`~sqs_rpc._server.visibility` keeps long handlers' messages hidden. ``docs/server.md``
has the full table of outcomes and every option.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from sqs_rpc._attributes import MAX_MESSAGE_BYTES
from sqs_rpc._aws import make_sqs_client
from sqs_rpc._client.process import close_all
from sqs_rpc._codecs import Codec
from sqs_rpc._errors import ConfigurationError
from sqs_rpc._hooks import Hooks, check_hooks
from sqs_rpc._loop import owner_id
from sqs_rpc._offload import S3Offload
from sqs_rpc._options import (
    DEFAULT_CLOCK_SKEW_TOLERANCE,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_VISIBILITY_EXTENSION,
    DEFAULT_REPLY_CACHE_BYTES,
    DEFAULT_REPLY_CACHE_TTL,
    DEFAULT_REPLY_QUEUE_PREFIX,
    DEFAULT_SHUTDOWN_TIMEOUT,
    DEFAULT_WAIT_TIME_SECONDS,
    PollerSettings,
    ResponderOptions,
    Visibility,
    check_queue_url,
)
from sqs_rpc._payload_store import PayloadStore
from sqs_rpc._signals import StopSignals
from sqs_rpc._state import ClientState
from sqs_rpc._stats import PollerHealth, PollerStats

from .handler import IncomingMessage, MessageHandler, Retry
from .idempotency import IdempotencyStore
from .reply_policy import ReplyToAllowed
from .runtime import STOP_TIMEOUT, Runtime

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RECEIVE_AGE",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_WAIT_TIME_SECONDS",
    "STOP_TIMEOUT",
    "IncomingMessage",
    "MessageHandler",
    "MessagePoller",
    "Retry",
    "close_clients",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_RECEIVE_AGE = 120.0


def close_clients() -> None:
    """Close every client of this process that is still open, for a process that is ending.

    ``run()`` and ``sqs-rpc serve`` call it once stopped: a handler's client is closed (its
    reply queue deleted) even if a call of it still waits, and even if the process is then
    killed before ``atexit`` runs.
    """
    closed = close_all()
    if closed:
        logger.info("closed %d RpcClient(s) still open in this process", closed)


def _aws_clients(
    settings: PollerSettings,
    offload: S3Offload | None,
    *,
    sqs_client: SQSClient | None,
    session: boto3.session.Session | None,
    endpoint_url: str | None,
    region_name: str | None,
    botocore_config: Config | None,
) -> tuple[SQSClient, PayloadStore]:
    """The poller's SQS client (built, unless injected) and its S3 side for ``offload``."""
    sqs = make_sqs_client(
        sqs_client=sqs_client,
        session=session,
        endpoint_url=endpoint_url,
        region_name=region_name,
        max_pool_connections=settings.concurrency + 4,
        botocore_config=botocore_config,
        long_poll_seconds=settings.wait_time,
    )
    payloads = PayloadStore(
        offload, session=session, region_name=region_name, botocore_config=botocore_config
    )
    return sqs, payloads


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
        concurrency: the most messages handled at once, sync or async (FIFO messages waiting
            behind their group's running one are held besides); a sync handler holds a worker
            thread, an async one none (it runs on the poller's event loop).
        sqs_client, session, endpoint_url, region_name: as for :class:`~sqs_rpc.RpcClient`.
        codec: decodes requests and encodes replies; JSON by default.
        wait_time_seconds: long-poll wait, 1 to 20. :meth:`stop` does not wait for the receive
            in progress beyond a second: it ends within this wait and releases what it got.
        shutdown_timeout: seconds :meth:`stop` waits for running handlers; it gives up on
            those still running then (daemon threads: they cannot keep the process alive).
        include_traceback: send the handler's traceback in error replies' details.
        reply_queue_prefix: the reply queue name prefix the default reply policy allows (or a
            list of them); also what ``sweep_interval`` sweeps.
        reply_to_allowed: URL patterns or a callable replacing the default reply policy.
        visibility_timeout: seconds each extension hides a running message for (None: the
            queue's own visibility timeout).
        visibility_extension_interval: seconds between extensions (None: a third of the
            visibility timeout); must be shorter than the visibility timeout.
        max_visibility_extension: seconds after its receive past which a running message is no
            longer extended; 0 turns extension off.
        reply_cache_ttl: seconds a finished request's reply is kept in this process to answer
            a redelivery without running the handler again; 0 keeps none.
        reply_cache_bytes: the reply cache's memory bound, in bytes (each entry counts every
            string it holds, plus about 1.2 KiB of bookkeeping).
        idempotency_store: where requests are claimed and replies kept, shared by every
            server of the queue (a :class:`~sqs_rpc.DynamoDBIdempotencyStore`), so that a
            redelivery to another server does not run again either. None (the default):
            this process's memory, bounded by ``reply_cache_ttl`` and ``reply_cache_bytes``.
        max_message_bytes: the largest reply sent; a larger one is replaced by an error
            reply (``PayloadTooLarge``) so the caller learns why. SQS's limit by default.
        sweep_interval: when set, seconds (jittered) between sweeps of orphaned reply queues
            under ``reply_queue_prefix``, run in the background while started; off by default.
        offload: an :class:`~sqs_rpc.S3Offload`: requests whose body is in S3 are read from
            there (only the object the caller wrote for the request, in an allowed bucket)
            and replies too large for SQS go through S3.
        hooks: ``on_message_handled`` runs for every message (:class:`~sqs_rpc.Hooks`);
            none by default. See docs/observability.md.
        clock_skew_tolerance: seconds a request may be past its caller's deadline and still
            run, for clocks that disagree; an expiry that looks like skew is logged at WARNING
            and counted in ``stats().expired_skewed``.
        botocore_config: a ``botocore.config.Config`` for the boto3 clients built here (SQS,
            and S3 with ``offload``), merged over sqs-rpc's: the options it sets win. Its
            ``read_timeout`` must be longer than ``wait_time_seconds``. See docs/server.md.
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
        reply_queue_prefix: str | Sequence[str] = DEFAULT_REPLY_QUEUE_PREFIX,
        reply_to_allowed: ReplyToAllowed | None = None,
        visibility_timeout: int | None = None,
        visibility_extension_interval: float | None = None,
        max_visibility_extension: float = DEFAULT_MAX_VISIBILITY_EXTENSION,
        reply_cache_ttl: float = DEFAULT_REPLY_CACHE_TTL,
        reply_cache_bytes: int = DEFAULT_REPLY_CACHE_BYTES,
        idempotency_store: IdempotencyStore | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        sweep_interval: float | None = None,
        offload: S3Offload | None = None,
        hooks: Hooks | None = None,
        clock_skew_tolerance: float = DEFAULT_CLOCK_SKEW_TOLERANCE,
        botocore_config: Config | None = None,
    ) -> None:
        self.queue_url = check_queue_url(queue_url)
        self._settings = settings = PollerSettings.create(
            concurrency=concurrency,
            wait_time_seconds=wait_time_seconds,
            shutdown_timeout=shutdown_timeout,
            visibility=Visibility(
                visibility_timeout, visibility_extension_interval, max_visibility_extension
            ),
            sweep_interval=sweep_interval,
        )
        options = ResponderOptions.create(
            codec=codec,
            include_traceback=include_traceback,
            reply_queue_prefix=reply_queue_prefix,
            reply_to_allowed=reply_to_allowed,
            reply_cache_ttl=reply_cache_ttl,
            reply_cache_bytes=reply_cache_bytes,
            max_message_bytes=max_message_bytes,
            offload=offload,
            clock_skew_tolerance=clock_skew_tolerance,
            idempotency_store=idempotency_store,
        )
        sqs, payloads = _aws_clients(
            settings,
            offload,
            sqs_client=sqs_client,
            session=session,
            endpoint_url=endpoint_url,
            region_name=region_name,
            botocore_config=botocore_config,
        )
        self._runtime = Runtime(
            queue_url,
            handler,
            settings=settings,
            options=options,
            sqs=sqs,
            payloads=payloads,
            hooks=check_hooks(hooks),
            owner=owner_id(self),
        )
        self._state_lock = threading.Lock()
        self._state = ClientState.UNOPENED  # opened by start(), closed by stop()

    def __repr__(self) -> str:
        return f"<MessagePoller {self._state.value} queue_url={self.queue_url!r}>"

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
        """True between :meth:`start` and :meth:`stop`."""
        return self._state is ClientState.OPENED

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Check the queue and the configuration against it, then start receiving. Idempotent."""
        with self._state_lock:
            if self._state.open("MessagePoller", closed_by="stopped") is self._state:
                return  # started already
            self._runtime.start()
            self._state = ClientState.OPENED
        logger.info("polling %s with %d workers", self.queue_url, self._settings.concurrency)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop receiving, let running handlers finish, release what was not started.

        Waits up to ``timeout`` (default: ``shutdown_timeout``) for handlers; async ones still
        running then are cancelled, their messages left for redelivery. Returns True when
        everything stopped in time. Idempotent.
        """
        with self._state_lock:
            if self._state is ClientState.CLOSED:
                return True
            self._state = ClientState.CLOSED
        budget = self._settings.shutdown_timeout if timeout is None else timeout
        return self._runtime.stop(budget)

    def run(self) -> None:
        """Start, block until SIGTERM or SIGINT, :meth:`stop` gracefully, close the clients.

        Once stopped, every :class:`~sqs_rpc.RpcClient` of the process still open is closed
        (its reply queue deleted), handler code's clients included: the process is ending.
        Must be called from the main thread (signal handlers can only be installed there);
        the previous handlers are restored before the stop, so a second signal acts as it
        did before ``run()``: a second SIGTERM kills the process, and a second Ctrl-C raises
        ``KeyboardInterrupt`` (at once, unless another thread took the signal: then when the
        stop's bounded waits end, as for any Python handler).
        """
        if threading.current_thread() is not threading.main_thread():
            raise ConfigurationError("run() must be called from the main thread; use start()")
        stop_requested = threading.Event()
        received: list[int] = []

        def on_signal(signum: int) -> None:
            received.append(signum)
            stop_requested.set()

        timeout = self._settings.shutdown_timeout
        try:
            with StopSignals(on_signal) as signals:
                self.start()
                signals.wait(stop_requested)
                logger.info(
                    "%s received: stopping; waiting up to %g s for %d in-flight messages "
                    "(running handlers finish, unstarted messages are released); a second "
                    "Ctrl-C or SIGTERM ends the process at once",
                    signal.Signals(received[0]).name,
                    timeout,
                    self.stats().in_flight,
                )
        finally:
            # The previous handlers are back (the with block ended) before the stop begins.
            if not self.stop():
                logger.warning("stopped with handlers still running after %g s", timeout)
            close_clients()

    # -- observing ---------------------------------------------------------------------------

    def stats(self) -> PollerStats:
        """Counters, latency and SQS requests since creation; ``in_flight`` is held right now."""
        receiver = self._runtime.receiver
        return self._runtime.observer.snapshot(0 if receiver is None else receiver.in_flight)

    def health(self, max_receive_age: float = DEFAULT_MAX_RECEIVE_AGE) -> PollerHealth:
        """Is this poller working? For a process manager's liveness check.

        Healthy means: running, the receiver thread alive, and a ``ReceiveMessage`` succeeded
        within ``max_receive_age`` seconds (or all workers are busy, so none was due).
        """
        now = time.monotonic()
        receiver = self._runtime.receiver
        running = self.running
        if receiver is None:
            return PollerHealth(False, running, False, None, 0, 0)
        last = receiver.last_receive
        age = None if last is None else now - last
        alive = receiver.is_alive()
        recent = (
            receiver.waiting_for_workers
            or (age is not None and age <= max_receive_age)
            or (
                age is None
                and self._runtime.started_at is not None
                and now - self._runtime.started_at <= max_receive_age
            )
        )
        return PollerHealth(
            healthy=running and alive and recent,
            running=running,
            receiver_alive=alive,
            last_receive_age=age,
            consecutive_receive_errors=receiver.errors_in_a_row,
            in_flight=receiver.in_flight,
        )
