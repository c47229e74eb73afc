"""LambdaResponder: a MessageHandler as the handler of an AWS Lambda SQS event source.

Lambda receives from the request queue itself and invokes the function with a batch of
records. The responder runs each record through the same
:class:`~sqs_rpc._server.dispatcher.Dispatcher` as a :class:`~sqs_rpc.MessagePoller`: decode,
reply policy, deadline, reply cache, handler, reply size check, reply. Then it returns
Lambda's partial batch response. Only three things differ from the poller, and they are all
here:

- Nothing is deleted by the responder. Lambda deletes a record reported as successful. One
  listed in ``batchItemFailures`` comes back after the visibility timeout.
- Replies are sent on the invoking thread. There is no outbox thread: Lambda freezes threads
  between invocations. Async handlers run on an event loop on that thread.
- No visibility heartbeat. The function's timeout bounds a handler, and the event source
  mapping's queue visibility timeout must exceed it (``docs/lambda.md``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config

from sqs_rpc._attributes import MAX_MESSAGE_BYTES
from sqs_rpc._aws import make_sqs_client
from sqs_rpc._codecs import Codec
from sqs_rpc._errors import ClientClosedError, ConfigurationError, SqsError, aws_errors
from sqs_rpc._loop import owner_id
from sqs_rpc._observe import MessageObserver
from sqs_rpc._offload import S3Offload
from sqs_rpc._options import (
    DEFAULT_CLOCK_SKEW_TOLERANCE,
    DEFAULT_REPLY_CACHE_BYTES,
    DEFAULT_REPLY_CACHE_TTL,
    DEFAULT_REPLY_QUEUE_PREFIX,
    ResponderOptions,
    check_handler,
    check_queue_url,
    seconds,
)
from sqs_rpc._outgoing import OutgoingMessage
from sqs_rpc._payload_store import PayloadStore
from sqs_rpc._stats import Counters, PollerStats

from .backoff import max_receive_count
from .dispatcher import Dispatcher
from .handler import MessageHandler
from .idempotency import IdempotencyStore
from .lambda_event import QueueArn, message_from_record, parse_queue_arn, records_of
from .outbox import Outbox
from .reply_policy import ReplyPolicy, ReplyToAllowed

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["DEFAULT_MIN_REMAINING_TIME", "LambdaResponder"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MIN_REMAINING_TIME = 1.0
# A claim's lease when the queue's visibility timeout cannot be read: Lambda's longest timeout.
DEFAULT_LEASE = 900.0
BatchResponse = dict[str, list[dict[str, str]]]


class _LambdaSender:
    """Replies go out at once on this thread; deletes are Lambda's job.

    What must follow a delete (a request's S3 body) is queued in ``after_batch``. The
    responder runs it once the batch is done, just before Lambda deletes the records.
    """

    def __init__(
        self, outbox: Outbox, counters: Counters, after_batch: list[Callable[[], object]]
    ) -> None:
        self._outbox = outbox
        self._counters = counters
        self._after_batch = after_batch

    def send_reply(self, reply_to: str, reply: OutgoingMessage) -> None:
        self._outbox.send_reply(reply_to, reply)

    def hide(self, receipt_handle: str, seconds: int) -> None:
        # Lambda leaves a failed record's visibility alone: the backoff holds.
        self._outbox.hide(receipt_handle, seconds)

    def delete(self, receipt_handle: str, then: Callable[[], object] | None = None) -> bool:
        # Not in batchItemFailures: Lambda deletes the record when the invocation returns.
        self._counters.add("deleted")
        if then is not None:
            self._after_batch.append(then)
        return True


class _InlineLoop:
    """Runs async handlers on the invoking thread, on one event loop kept while warm."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, awaitable: Awaitable[T]) -> T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()

        async def wrapper() -> T:
            return await awaitable

        return self._loop.run_until_complete(wrapper())

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


class LambdaResponder:
    """Runs a :class:`~sqs_rpc.MessageHandler` as an AWS Lambda function fed by an SQS queue.

    Build it once, at module level, so a warm function reuses it (and its reply cache).
    Lambda calls it with each batch, and deletes the records it does not report as failed.

    Example::

        # orders_function.py; the function's handler setting is "orders_function.handler"
        from sqs_rpc import MessageHandler
        from sqs_rpc.aws_lambda import LambdaResponder

        class Orders(MessageHandler):
            def handle(self, message):
                return {"order": message.body["id"], "status": "shipped"}

        handler = LambdaResponder(Orders())

    The event source mapping must have ``ReportBatchItemFailures`` turned on
    (``FunctionResponseTypes``), or Lambda ignores the response and deletes the whole batch.
    ``docs/lambda.md`` has the settings and the IAM permissions.

    Args:
        handler: your :class:`~sqs_rpc.MessageHandler` (``handle`` may be ``async def``).
        sqs_client, session, endpoint_url, region_name, botocore_config: as for
            :class:`~sqs_rpc.RpcClient`;
            by default boto3's chain, which in Lambda is the function's role and region.
        queue_url: the request queue's URL. By default it is built from the records'
            ``eventSourceARN`` and the SQS client's endpoint, which is right on AWS.
        codec, include_traceback, reply_queue_prefix, reply_to_allowed, reply_cache_ttl,
            reply_cache_bytes, idempotency_store, max_message_bytes, offload,
            clock_skew_tolerance: as for :class:`~sqs_rpc.MessagePoller`. A claim in the
            ``idempotency_store`` lasts the queue's visibility timeout, which must exceed the
            function's timeout anyway. With ``offload``, a request's S3 object is deleted when
            its batch is done, just before Lambda deletes the record.
        min_remaining_time: seconds; a record is started only while the invocation has more
            time left than this (``context.get_remaining_time_in_millis()``). The records not
            started are reported as failures, so they come back.
    """

    def __init__(
        self,
        handler: MessageHandler,
        *,
        sqs_client: SQSClient | None = None,
        session: boto3.session.Session | None = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        queue_url: str | None = None,
        codec: Codec | None = None,
        include_traceback: bool = False,
        reply_queue_prefix: str | Sequence[str] = DEFAULT_REPLY_QUEUE_PREFIX,
        reply_to_allowed: ReplyToAllowed | None = None,
        reply_cache_ttl: float = DEFAULT_REPLY_CACHE_TTL,
        reply_cache_bytes: int = DEFAULT_REPLY_CACHE_BYTES,
        idempotency_store: IdempotencyStore | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        min_remaining_time: float = DEFAULT_MIN_REMAINING_TIME,
        offload: S3Offload | None = None,
        clock_skew_tolerance: float = DEFAULT_CLOCK_SKEW_TOLERANCE,
        botocore_config: Config | None = None,
    ) -> None:
        check_handler(handler)
        if queue_url is not None:
            check_queue_url(queue_url)
        self._options = ResponderOptions.from_arguments(locals())
        self._min_remaining_ms = 1000 * seconds(
            min_remaining_time,
            "min_remaining_time",
            low=0,
            high=900,
            rule="seconds from 0 to 900 (Lambda's longest timeout)",
        )
        self._handler = handler
        self._queue_url = queue_url
        # Fail at import time (the cold start), not on the first record, on a bad policy.
        self._policy(queue_url or "https://sqs.us-east-1.amazonaws.com/000000000000/check")
        self._sqs = make_sqs_client(
            sqs_client=sqs_client,
            session=session,
            endpoint_url=endpoint_url,
            region_name=region_name,
            botocore_config=botocore_config,
            long_poll_seconds=0,  # a responder never long-polls
        )
        self._payloads = PayloadStore(
            offload, session=session, region_name=region_name, botocore_config=botocore_config
        )
        self._observer = MessageObserver(queue_url or "", None)
        self._counters = self._observer.counters
        self._after_batch: list[Callable[[], object]] = []  # see _LambdaSender
        self._loop = _InlineLoop()
        self._lock = threading.Lock()
        self._dispatchers: dict[str | None, Dispatcher] = {}  # by eventSourceARN
        self._closed = False

    def __enter__(self) -> LambdaResponder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the event loop of async handlers. Idempotent; Lambda never needs it."""
        with self._lock:
            self._closed = True
        self._loop.close()

    def stats(self) -> PollerStats:
        """Counters since creation, as for a MessagePoller (``in_flight`` is always 0)."""
        return self._observer.snapshot(0)

    # -- an invocation -----------------------------------------------------------------------

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> BatchResponse:
        """Handle one batch; return ``{"batchItemFailures": [...]}`` for Lambda."""
        with self._lock:
            if self._closed:
                raise ClientClosedError("this LambdaResponder is closed; create a new one")
        records = records_of(event)
        failures: list[str] = []
        stop: str | None = None
        unstarted = 0
        for record in records:
            message_id = str(record.get("messageId", ""))
            if stop is None and self._out_of_time(context):
                stop = "the invocation is about to time out"
            if stop is not None:
                failures.append(message_id)
                unstarted += 1
                continue
            if not self._process(record):
                failures.append(message_id)
                if _fifo(record):
                    # AWS's rule for FIFO queues: stop at the first failure and report the
                    # rest too, so that the group is redelivered in order.
                    stop = "an earlier message of this FIFO batch failed"
        if unstarted:
            logger.warning("%d records reported as failed, not started: %s", unstarted, stop)
        while self._after_batch:
            try:
                self._after_batch.pop()()
            except Exception:
                logger.exception("after a record")
        return {"batchItemFailures": [{"itemIdentifier": mid} for mid in failures]}

    def _out_of_time(self, context: Any) -> bool:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        return callable(remaining) and float(remaining()) < self._min_remaining_ms

    def _process(self, record: Mapping[str, Any]) -> bool:
        self._counters.add("received")
        try:
            dispatcher = self._dispatcher(record.get("eventSourceARN"))
            outcome = dispatcher.process(message_from_record(record), time.monotonic(), self._loop)
            return outcome.finished
        except ConfigurationError:
            raise  # the function is misconfigured: fail the invocation, loudly
        except Exception:
            # Never fail the other records of the batch for one record's surprise.
            logger.exception("record %s failed unexpectedly", record.get("messageId"))
            return False

    def _dispatcher(self, arn: object) -> Dispatcher:
        key = arn if isinstance(arn, str) else None
        with self._lock:
            dispatcher = self._dispatchers.get(key)
            if dispatcher is None:
                dispatcher = self._dispatchers[key] = self._make_dispatcher(key)
            return dispatcher

    def _make_dispatcher(self, arn: str | None) -> Dispatcher:
        queue_url = self._queue_url or self._url_of(arn)
        max_receive_count, lease = self._queue_settings(queue_url)
        dispatcher = Dispatcher(
            sqs=self._sqs,
            queue_url=queue_url,
            handler=self._handler,
            options=self._options,
            policy=self._policy(queue_url),
            outbox=_LambdaSender(
                Outbox(
                    self._sqs,
                    queue_url,
                    owner=owner_id(self),
                    counters=self._counters,
                    background=False,
                ),
                self._counters,
                self._after_batch,
            ),
            observer=self._observer,
            payloads=self._payloads,
            heartbeat=None,  # the function's timeout bounds a handler (see the module doc)
            max_receive_count=max_receive_count,
            lease=lease,
        )
        logger.info("responding to requests from %s", queue_url)
        return dispatcher

    def _policy(self, queue_url: str) -> ReplyPolicy:
        options = self._options
        return ReplyPolicy(
            queue_url, prefix=options.reply_queue_prefix, allowed=options.reply_to_allowed
        )

    def _url_of(self, arn: str | None) -> str:
        parsed = parse_queue_arn(arn)
        if parsed is None:
            raise ConfigurationError(
                f"cannot tell the request queue from the record's eventSourceARN {arn!r}; "
                "pass queue_url= to LambdaResponder"
            )
        region = self._sqs.meta.region_name
        if region and region != parsed.region:
            raise ConfigurationError(
                f"the request queue {parsed.name} is in {parsed.region} but the SQS client is "
                f"for {region}; pass region_name={parsed.region!r} (or queue_url=)"
            )
        return _queue_url(self._sqs.meta.endpoint_url, parsed)

    def _queue_settings(self, queue_url: str) -> tuple[int | None, float]:
        """The queue's ``maxReceiveCount`` (None: no redrive policy) and a claim's lease."""
        # Best effort: the first lets a handler see its last attempt, and poison back off
        # until then; the second bounds how long a crashed invocation's claim lasts.
        try:
            with aws_errors("GetQueueAttributes", queue_url):
                attributes = self._sqs.get_queue_attributes(
                    QueueUrl=queue_url, AttributeNames=["RedrivePolicy", "VisibilityTimeout"]
                ).get("Attributes", {})
        except SqsError as exc:
            logger.warning("cannot read the redrive policy of %s: %s", queue_url, exc)
            return None, DEFAULT_LEASE
        lease = float(attributes.get("VisibilityTimeout", DEFAULT_LEASE)) or DEFAULT_LEASE
        return max_receive_count(attributes.get("RedrivePolicy"), queue_url), lease


def _queue_url(endpoint_url: str, queue: QueueArn) -> str:
    # SQS queue URLs are ENDPOINT/ACCOUNT/NAME, and AWS's SQS endpoints accept that form.
    return f"{endpoint_url.rstrip('/')}/{queue.account}/{queue.name}"


def _fifo(record: Mapping[str, Any]) -> bool:
    # By the queue's name (".fifo" is mandatory), not by MessageGroupId: standard queues
    # accept group ids too (fair queues), without FIFO's ordering.
    queue = parse_queue_arn(record.get("eventSourceARN"))
    return queue is not None and queue.fifo
