"""The running parts of one MessagePoller: built from the queue's attributes, started and
stopped in order.

:class:`Runtime` owns the outbox, the event loop, the visibility heartbeat, the worker pool,
the dispatcher, the receiver and the optional sweeper. ``MessagePoller`` (``poller.py``) is
the public face: options, lifecycle state, ``run()``, stats and health.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqs_rpc._errors import aws_errors
from sqs_rpc._hooks import Hooks
from sqs_rpc._loop import stop_all, thread_name
from sqs_rpc._observe import MessageObserver
from sqs_rpc._options import PollerSettings, ResponderOptions, check_handler
from sqs_rpc._payload_store import PayloadStore
from sqs_rpc._sweeper import PeriodicSweep

from .backoff import max_receive_count
from .dispatcher import Dispatcher
from .event_loop import EventLoopThread
from .handler import MessageHandler
from .outbox import Outbox
from .receiver import MAX_BATCH, Receiver
from .reply_policy import ReplyPolicy
from .visibility import VisibilityHeartbeat
from .workers import Workers

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["STOP_TIMEOUT", "Runtime"]

logger = logging.getLogger(__name__)

# The budget shared by the background threads once the handlers are done (see stop()).
STOP_TIMEOUT = 30.0


class Runtime:
    """A poller's parts. Nothing runs before :meth:`start`; :meth:`stop` ends everything."""

    def __init__(
        self,
        queue_url: str,
        handler: MessageHandler,
        *,
        settings: PollerSettings,
        options: ResponderOptions,
        sqs: SQSClient,
        payloads: PayloadStore,
        hooks: Hooks | None,
        owner: str,
    ) -> None:
        check_handler(handler)
        self.queue_url = queue_url
        self._handler = handler
        self._settings = settings
        self._options = options
        self._sqs = sqs
        self._payloads = payloads
        self.observer = observer = MessageObserver(queue_url, hooks)
        self._observer = observer
        self._owner = owner  # in every thread name: sqs-rpc-<role>-<owner>
        prefix = options.reply_queue_prefix
        self._policy = ReplyPolicy(queue_url, prefix=prefix, allowed=options.reply_to_allowed)
        # Other requests being handled: their replies are about to join this one.
        self._outbox = Outbox(
            sqs, queue_url, owner=owner, counters=observer.counters, busy=self._busy
        )
        self._event_loop = EventLoopThread(thread_name("asyncio", owner))
        interval = settings.sweep_interval
        self._sweep = (
            None
            if interval is None
            else PeriodicSweep(
                sqs,
                prefixes=(prefix,) if isinstance(prefix, str) else prefix,
                interval=interval,
                name=thread_name("sweeper", owner),
            )
        )
        # Built by start(), from what the queue's attributes say.
        self._heartbeat: VisibilityHeartbeat | None = None
        self.receiver: Receiver | None = None
        self.started_at: float | None = None  # time.monotonic() of start()

    def start(self) -> None:
        """Check the queue, build what depends on it, start the background parts."""
        # Counted from here to the end of stop(): a poller that is never started holds
        # no handler on an injected boto3 client.
        self._observer.requests.watch(self._sqs)
        self._payloads.watch(self._observer.s3_requests)
        # Fail here, not in a background loop, when the URL is wrong.
        try:
            with aws_errors("GetQueueAttributes", self.queue_url):
                attributes = self._sqs.get_queue_attributes(
                    QueueUrl=self.queue_url,
                    AttributeNames=["VisibilityTimeout", "RedrivePolicy"],
                ).get("Attributes", {})
            receiver = self._build(attributes)
        except BaseException:
            self._observer.requests.detach()
            self._observer.s3_requests.detach()
            raise
        self._outbox.start()
        if self._heartbeat is not None:
            self._heartbeat.start()
        receiver.start()
        if self._sweep is not None:
            self._sweep.start()
        self.started_at = time.monotonic()

    def _build(self, attributes: Mapping[Any, str]) -> Receiver:
        """The parts that depend on the queue: its visibility timeout and redrive policy."""
        settings = self._settings
        queue_timeout = int(attributes.get("VisibilityTimeout", "30"))
        extension = settings.visibility.resolve(queue_timeout)
        # How long a worker may hold a request, so how long its claim lasts: a crashed
        # server's requests run elsewhere once it is over.
        lease = float(queue_timeout)
        if extension is None:
            logger.info("visibility extension off for %s", self.queue_url)
        else:
            lease = settings.visibility.max_extension + extension[1]
            interval, timeout = extension
            self._heartbeat = VisibilityHeartbeat(
                self._sqs,
                self.queue_url,
                owner=self._owner,
                interval=interval,
                timeout=timeout,
                max_extension=settings.visibility.max_extension,
            )
        # As many threads as sync handlers need; async ones run on the event loop.
        workers = Workers(settings.concurrency, thread_name("worker", self._owner), spare=MAX_BATCH)
        dispatcher = Dispatcher(
            sqs=self._sqs,
            queue_url=self.queue_url,
            handler=self._handler,
            options=self._options,
            policy=self._policy,
            outbox=self._outbox,
            observer=self._observer,
            payloads=self._payloads,
            heartbeat=self._heartbeat,
            max_receive_count=max_receive_count(attributes.get("RedrivePolicy"), self.queue_url),
            exact_receive_time=True,  # the receiver passes the moment of each receive
            lease=max(lease, 1.0),
            blocking=workers.blocking,
        )
        self.receiver = Receiver(
            self._sqs,
            self.queue_url,
            owner=self._owner,
            concurrency=settings.concurrency,
            wait_time=settings.wait_time,
            process=dispatcher.work,
            counters=self._observer.counters,
            workers=workers,
            loop=self._event_loop,
            heartbeat=self._heartbeat,
        )
        return self.receiver

    def _busy(self) -> bool:
        receiver = self.receiver
        return receiver is not None and receiver.in_flight > 1

    def stop(self, budget: float) -> bool:
        """Stop everything; wait up to ``budget`` for handlers. True if all stopped in time."""
        # Shutdown order: (1) stop receiving: the receive in progress is not waited for beyond
        # a second; when it returns (within the long-poll wait) it releases what it got
        # (visibility 0); (2) drain: handlers that started finish, bounded by the budget, and
        # their replies and deletes go out through the outbox, which is still running; past
        # the budget, async handlers are cancelled (their messages left, not deleted); (3)
        # stop the outbox, flushing what is left (a late handler sends its own); (4) stop
        # visibility extension (a late handler's message is no longer extended); (5) stop the
        # event loop; (6) stop the in-process sweeper, if any; (7) stop counting SQS requests.
        # Steps 3 to 6 share one budget.
        receiver = self.receiver
        if receiver is not None:
            receiver.stop_receiving()
        drained = receiver is None or receiver.drain(budget, self._event_loop.cancel_all)
        if not drained:
            # A handler outlived the budget: its event loop is not waited for either.
            self._event_loop.stop(0)
        released = stop_all(
            [self._outbox, self._heartbeat, self._event_loop, self._sweep], STOP_TIMEOUT
        )
        self._observer.requests.detach()
        self._observer.s3_requests.detach()
        if drained and released:
            logger.info("stopped polling %s", self.queue_url)
        else:
            logger.warning(
                "stopped polling %s; left running: %s",
                self.queue_url,
                ", ".join(
                    what
                    for what, done in (
                        ("handlers past shutdown_timeout (daemon threads)", drained),
                        ("the outbox, extension, event loop or sweeper threads", released),
                    )
                    if not done
                ),
            )
        return drained and released
