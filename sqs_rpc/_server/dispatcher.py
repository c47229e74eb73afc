"""Handling one received message, start to finish: the server's decision table.

In order: decode the attributes and check an S3 pointer without following it
(``_offload.py``); refuse a ``ReplyTo`` the reply policy does not allow (left in the queue);
drop a request whose caller's deadline has passed (deleted); only then read the body from S3,
when it is there; decode the body; answer a redelivered request from the reply cache (no
second run); run the handler under the visibility heartbeat; encode the reply (a large one
goes to S3); send it; delete the request only after SQS accepted the reply, and only then its
S3 object, if it had one.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqs_rpc._codecs import JSON_CONTENT_TYPE, Codec
from sqs_rpc._errors import (
    DecodeError,
    EncodeError,
    PayloadTooLarge,
    QueueDoesNotExist,
    SqsError,
    aws_errors,
    is_message_too_long,
)
from sqs_rpc._interop import Attributes, adapt_request, reply_destination
from sqs_rpc._observe import MessageObserver
from sqs_rpc._offload import Offloaded, PayloadStore
from sqs_rpc._trace import TraceContext, set_trace_context
from sqs_rpc._wire import ErrorInfo, Request, Status, decode_request, encode_reply, reply_address

from .handler import IncomingMessage, MessageHandler, Retry
from .reply_cache import Key, ReplyCache, key_of
from .reply_policy import ReplyPolicy
from .visibility import VisibilityHeartbeat

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["AwaitableRunner", "Dispatcher", "Sender"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Sender(Protocol):
    """Where a Dispatcher's replies and deletes go.

    The MessagePoller's :class:`~sqs_rpc._outbox.Outbox` batches them on a background thread;
    the Lambda responder sends replies on the calling thread and leaves deletes to Lambda.
    """

    def send_reply(self, reply_to: str, arguments: dict[str, Any]) -> None:
        """Return once SQS accepted the reply; raise :class:`SqsError` if it did not."""

    def delete(self, receipt_handle: str, then: Callable[[], object] | None = None) -> bool:
        """Finish a request: True once it is (or will be) deleted, False if it will come back.

        ``then`` runs once the request is deleted for good (not at all if it is not).
        """


class AwaitableRunner(Protocol):
    """Runs what an ``async def handle`` returns, to completion, from a worker thread."""

    def run(self, awaitable: Awaitable[T]) -> T: ...


class Dispatcher:
    """Runs one message through the decision table; owns the reply cache."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        handler: MessageHandler,
        codec: Codec,
        policy: ReplyPolicy,
        outbox: Sender,
        observer: MessageObserver,
        event_loop: AwaitableRunner,
        include_traceback: bool,
        max_message_bytes: int,
        reply_cache_ttl: float,
        reply_cache_bytes: int,
        payloads: PayloadStore | None = None,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._codec = codec
        self._policy = policy
        self._outbox = outbox
        self._observer = observer
        self._event_loop = event_loop
        self._include_traceback = include_traceback
        self._max_message_bytes = max_message_bytes
        self._payloads = payloads if payloads is not None else PayloadStore(None)
        self.heartbeat: VisibilityHeartbeat | None = None  # set at start
        self.max_receive_count: int | None = None  # from the queue's redrive policy, at start
        self._replies = ReplyCache(ttl=reply_cache_ttl, max_bytes=reply_cache_bytes)
        # Receipt handle -> what to do once SQS deleted that request (its S3 body, if any).
        self._after_delete: dict[str, Callable[[], object]] = {}

    # -- the decision table ------------------------------------------------------------------

    def process(self, message: Mapping[str, Any], received: float) -> bool:
        """Handle one message; True when it is finished (deleted), False when left in the queue."""
        # A fresh context per message: the trace context (and the outcome the observer notes)
        # set for it never leaks into the next message this worker thread handles.
        return contextvars.Context().run(self._observer.observe, self._process, message, received)

    def _process(self, message: Mapping[str, Any], received: float) -> bool:
        # Requests from other libraries (Java temporary queues, python-sqs-client) take
        # sqs-rpc's form here; `extra` is what their replies must carry in addition.
        message, extra = adapt_request(message)
        try:
            # An S3 pointer is checked here, but followed only once the reply policy and the
            # deadline let the request through: a refused or expired request costs no read.
            offloaded = self._payloads.pointer(message, kind="request")
            request = decode_request(message)
            admitted = self._admit(request, offloaded)
            if admitted is not None:
                return admitted
            if offloaded is not None:
                request = dataclasses.replace(request, body=self._payloads.read(offloaded))
            body = self._decode_body(request)
        except DecodeError as exc:  # S3PayloadError too: a pointer that cannot be followed
            self._observer.count("undecodable")
            self._reject(message, exc, extra)
            return False
        except SqsError as exc:
            # S3 failed (throttled, unreachable, access denied): the request is fine, and a
            # later delivery may read it. No error reply: the caller may still get an answer.
            logger.warning(
                "could not read the body of message %s from S3 (%s); left for retry",
                message.get("MessageId"),
                exc,
            )
            return False
        if offloaded is None:
            return self._handle(request, body, received, extra)
        # Once SQS has deleted the request, its body in S3 has no other reader; not before:
        # a delete that fails brings the request back, and it must still be readable.
        self._after_delete[request.receipt_handle] = functools.partial(
            self._payloads.discard, offloaded
        )
        try:
            return self._handle(request, body, received, extra)
        finally:
            self._after_delete.pop(request.receipt_handle, None)

    def _delete(self, receipt_handle: str) -> bool:
        then = self._after_delete.pop(receipt_handle, None)
        return self._outbox.delete(receipt_handle, then=then)

    def _admit(self, request: Request, offloaded: Offloaded | None) -> bool | None:
        """None when the request may run; else it was refused or expired, and the outcome."""
        if request.reply_to is not None and not self._allowed(request.reply_to):
            self._observer.count("rejected")
            logger.warning(
                "request %s names ReplyTo %r, which this server may not reply to (allowed: %s);"
                " not run, left for redrive",
                request.message_id,
                request.reply_to,
                self._policy.description,
            )
            return False
        if request.deadline_ms is not None and request.deadline_ms < time.time() * 1000:
            self._observer.count("expired")
            logger.info(
                "request %s arrived after its caller's deadline; deleted without running",
                request.correlation_id or request.message_id,
            )
            # Its S3 body, unread, goes too: once its size is checked against the pointer.
            then = (
                None
                if offloaded is None
                else functools.partial(self._payloads.discard, offloaded, unread=True)
            )
            return self._outbox.delete(request.receipt_handle, then=then)
        return None

    def _handle(self, request: Request, body: Any, received: float, extra: Attributes) -> bool:
        """The decision table after decoding; True when the request was deleted."""
        key = key_of(request)
        state, cached = self._replies.begin(key)
        if state == "running":
            # The same request is running on another worker (its visibility ran out):
            # leave this copy; once the first finishes, a redelivery hits the cache.
            self._observer.note("duplicate")
            logger.info("request %s is already running; copy left in queue", key[1])
            return False
        if state == "finished":
            self._observer.count("duplicates")
            logger.info("request %s was already handled; resending its reply", key[1])
            if cached is not None and request.reply_to is not None:
                return self._reply_and_delete(request, cached)
            return self._delete(request.receipt_handle)
        try:
            return self._run(request, body, key, received, extra)
        finally:
            self._replies.done(key)  # done on every normal path already; this is for the rest

    def _run(
        self, request: Request, body: Any, key: Key, received: float, extra: Attributes
    ) -> bool:
        set_trace_context(request.trace)  # the handler's own calls carry it on
        incoming = IncomingMessage(
            body=body,
            attributes=request.attributes,
            correlation_id=request.correlation_id,
            reply_to=request.reply_to,
            deadline=None if request.deadline_ms is None else request.deadline_ms / 1000,
            message_id=request.message_id,
            receive_count=request.receive_count,
            queue_url=self._queue_url,
            group_id=request.group_id,
            max_receive_count=self.max_receive_count,
            traceparent=request.trace.traceparent if request.trace else None,
            tracestate=request.trace.tracestate if request.trace else None,
        )
        heartbeat = self.heartbeat
        token = heartbeat.track(request.receipt_handle, received) if heartbeat else None
        failure: Exception | None = None
        try:
            result = self._call_handler(incoming)
        except Exception as exc:
            failure = exc
        finally:
            # Stop extending before anything is sent, deleted or made visible again.
            if heartbeat is not None and token is not None:
                heartbeat.untrack(token)
        # Each branch below leaves the running set before the message can come back (Retry's
        # visibility change, a failed reply), and only after the reply cache has the answer,
        # so a redelivery either finds the cache or runs the handler: never neither.
        if isinstance(failure, Retry):
            self._observer.count("failed")
            self._observer.count("retried")
            self._replies.done(key)
            return self._retry(request, incoming, failure, extra)
        if failure is not None:
            self._observer.count("failed")
            if request.reply_to is None:
                self._replies.done(key)
                logger.warning(
                    "handler failed on one-way message %s; left for retry/redrive",
                    request.message_id,
                    exc_info=failure,
                )
                return False
            logger.info("handler failed on call %s: %r", request.correlation_id, failure)
            error_body = self._error_body(failure)
            return self._finish(request, key, "error", error_body, JSON_CONTENT_TYPE, extra=extra)
        self._observer.count("handled")
        if request.reply_to is None:
            self._replies.remember(key, None)
            self._replies.done(key)
            return self._delete(request.receipt_handle)
        try:
            reply_body = self._codec.encode(result)
        except EncodeError as exc:
            # Checked before sending: the caller gets an error, not an undecodable reply.
            error = ErrorInfo("EncodeError", f"the handler's return value: {exc}").to_body()
            return self._finish(request, key, "error", error, JSON_CONTENT_TYPE, extra=extra)
        return self._finish(request, key, "ok", reply_body, self._codec.content_type, extra=extra)

    def _call_handler(self, incoming: IncomingMessage) -> Any:
        result = self._handler.handle(incoming)
        if inspect.isawaitable(result):
            result = self._event_loop.run(result)
        return result

    def _retry(
        self, request: Request, incoming: IncomingMessage, exc: Retry, extra: Attributes
    ) -> bool:
        if incoming.last_attempt and request.reply_to is not None:
            # The redrive policy moves the request to the dead-letter queue at its next
            # receive: tell the caller now instead of letting it time out.
            logger.warning(
                "call %s asked for a retry on its last delivery (%d of %d); sending an error "
                "reply and leaving it for the dead-letter queue",
                request.correlation_id,
                request.receive_count,
                self.max_receive_count,
            )
            error = ErrorInfo("Retry", f"gave up after {request.receive_count} attempts: {exc}")
            self._send_only(request, error.to_body(), extra)
            return False
        logger.info(
            "handler asked to retry %s (delivery %d)",
            request.correlation_id or request.message_id,
            request.receive_count,
        )
        if exc.delay is not None:
            self._set_visibility(request.receipt_handle, exc.delay)
        return False

    # -- replies -----------------------------------------------------------------------------

    def _finish(
        self,
        request: Request,
        key: Key,
        status: Status,
        body: str,
        content_type: str,
        *,
        extra: Attributes,
    ) -> bool:
        assert request.correlation_id is not None
        arguments = _reply_arguments(
            request.correlation_id, status, body, content_type, extra, trace=request.trace
        )
        try:
            # The size check; over the offload threshold the body goes to S3 first, and the
            # reply cache and the outbox see only the pointer message.
            arguments = self._payloads.outgoing(arguments, self._max_message_bytes, what="reply")
        except SqsError as exc:
            logger.warning(
                "could not store the reply to call %s in S3 (%s); the request will be redelivered",
                request.correlation_id,
                exc,
            )
            return False
        except PayloadTooLarge as exc:
            # SQS would refuse it, and running the handler again would not make it smaller:
            # tell the caller.
            logger.warning("reply to call %s is too large: %s", request.correlation_id, exc)
            error = ErrorInfo("PayloadTooLarge", str(exc), {"size": exc.size, "limit": exc.limit})
            arguments = _reply_arguments(
                request.correlation_id,
                "error",
                error.to_body(),
                JSON_CONTENT_TYPE,
                extra,
                trace=request.trace,
            )
        self._replies.remember(key, arguments)
        self._replies.done(key)
        return self._reply_and_delete(request, arguments)

    def _reply_and_delete(self, request: Request, arguments: dict[str, Any]) -> bool:
        assert request.reply_to is not None
        try:
            self._deliver(request.reply_to, arguments)
        except QueueDoesNotExist:
            # The caller closed or died and its queue is gone: nobody can use this reply,
            # and running the handler again would not change that.
            logger.info(
                "reply queue for call %s is gone; dropping the reply", request.correlation_id
            )
        except SqsError as exc:
            if is_message_too_long(exc) and _status(arguments) == "ok":
                # Running the handler again cannot make its answer smaller: tell the caller.
                return self._reply_and_delete(request, _too_long(request, arguments, exc))
            logger.warning(
                "could not reply to call %s (%s); the request will be redelivered",
                request.correlation_id,
                exc,
            )
            return False
        except TimeoutError as exc:
            logger.warning("no answer from the outbox for call %s: %s", request.correlation_id, exc)
            return False
        return self._delete(request.receipt_handle)

    def _send_only(self, request: Request, body: str, extra: Attributes) -> None:
        """Send an error reply without deleting the request."""
        assert request.reply_to is not None
        assert request.correlation_id is not None
        correlation_id = request.correlation_id
        arguments = _reply_arguments(
            correlation_id, "error", body, JSON_CONTENT_TYPE, extra, trace=request.trace
        )
        try:
            self._deliver(request.reply_to, arguments)
        except (SqsError, TimeoutError) as exc:
            logger.warning("could not send the error reply for %s: %s", request.message_id, exc)

    def _allowed(self, reply_to: str) -> bool:
        destination = reply_destination(reply_to)
        # The policy gets the raw URL (a Java virtual queue's HOST#NAME whole), as documented.
        return destination is not None and self._policy.allows(reply_to)

    def _deliver(self, reply_to: str, arguments: dict[str, Any]) -> None:
        """Send a reply to ``reply_to`` (a Java virtual queue goes through its host queue)."""
        destination = reply_destination(reply_to)
        if destination is None:  # checked by _allowed before anything runs
            raise DecodeError(f"reply address {reply_to!r} is not a queue URL")
        queue_url, routing = destination
        if routing:
            attributes = {**arguments["MessageAttributes"], **routing}
            arguments = {**arguments, "MessageAttributes": attributes}
        self._outbox.send_reply(queue_url, arguments)

    def _set_visibility(self, receipt_handle: str, seconds: int) -> None:
        try:
            with aws_errors("ChangeMessageVisibility", self._queue_url):
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url,
                    ReceiptHandle=receipt_handle,
                    VisibilityTimeout=seconds,
                )
        except SqsError as exc:
            logger.warning("could not delay the retry: %s", exc)

    # -- bad input ---------------------------------------------------------------------------

    def _decode_body(self, request: Request) -> Any:
        if request.content_type != self._codec.content_type:
            raise DecodeError(
                f"content type {request.content_type!r} is not this server's "
                f"{self._codec.content_type!r}; use the same codec on both sides"
            )
        return self._codec.decode(request.body)

    def _error_body(self, exc: Exception) -> str:
        details: dict[str, Any] | None = None
        if self._include_traceback:
            details = {"traceback": "".join(traceback.format_exception(exc))}
        return ErrorInfo(type(exc).__name__, str(exc), details).to_body()

    def _reject(self, message: Mapping[str, Any], exc: DecodeError, extra: Attributes) -> None:
        """An undecodable message: tell the caller once, leave the message for redrive."""
        message_id = message.get("MessageId")
        address = reply_address(message)
        first = str(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")) == "1"
        if address is not None and address[1] and first:
            reply_to, correlation_id = address
            if not self._allowed(reply_to):
                self._observer.counters.add("rejected")  # the outcome stays "undecodable"
                logger.warning(
                    "undecodable message %s names ReplyTo %r, which this server may not reply "
                    "to; no error reply",
                    message_id,
                    reply_to,
                )
            else:
                error = ErrorInfo("DecodeError", f"the server could not decode the request: {exc}")
                arguments = _reply_arguments(
                    correlation_id or "", "error", error.to_body(), JSON_CONTENT_TYPE, extra
                )
                try:
                    self._deliver(reply_to, arguments)
                except (SqsError, TimeoutError) as send_exc:
                    logger.warning(
                        "could not send the error reply for %s: %s", message_id, send_exc
                    )
        logger.warning(
            "undecodable message %s left for redrive (configure a dead-letter queue): %s",
            message_id,
            exc,
        )


def _reply_arguments(
    correlation_id: str,
    status: Status,
    body: str,
    content_type: str,
    extra: Attributes,
    *,
    trace: TraceContext | None = None,
) -> dict[str, Any]:
    arguments = encode_reply(
        correlation_id=correlation_id,
        status=status,
        body=body,
        content_type=content_type,
        trace=trace,  # the caller's trace context goes back with the reply
    )
    arguments["MessageAttributes"].update(extra)
    return arguments


def _status(arguments: dict[str, Any]) -> str | None:
    value = arguments["MessageAttributes"].get("Status", {})
    return value.get("StringValue") if isinstance(value, dict) else None


def _too_long(request: Request, arguments: dict[str, Any], exc: SqsError) -> dict[str, Any]:
    """The error reply that replaces a reply SQS refused as too large."""
    assert request.correlation_id is not None
    size = len(str(arguments["MessageBody"]).encode())
    error = ErrorInfo(
        "EncodeError",
        f"the handler's return value encodes to {size} bytes, more than SQS accepts in one "
        f"message ({exc.code}); return less, or store the data elsewhere and return a reference",
    )
    extra = {
        name: value
        for name, value in arguments["MessageAttributes"].items()
        if name not in {"CorrelationId", "ContentType", "SqsRpcVersion", "Status"}
    }
    return _reply_arguments(
        request.correlation_id, "error", error.to_body(), JSON_CONTENT_TYPE, extra
    )
