"""Handling one received message, start to finish: the server's decision table.

In order: decode the attributes and check an S3 pointer without following it
(``_offload.py``); refuse a ``ReplyTo`` the reply policy does not allow (left in the queue);
drop a request whose caller's deadline has passed (deleted); only then read the body from S3,
when it is there; decode the body; claim the request in the idempotency store
(``idempotency.py``): a redelivery is answered from there, a copy running elsewhere is left
(no second run); run the handler under the visibility heartbeat; encode the reply (a large one
goes to S3); send it; delete the request only after SQS accepted the reply, and only then its
S3 object, if it had one. Requests left in the queue on purpose (``Retry``, poison) go
through ``redelivery.py``. The handling is a ``work.py`` coroutine: an async handler is
awaited on the event loop, holding no worker thread meanwhile.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import logging
import traceback
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqs_rpc._codecs import JSON_CONTENT_TYPE, encode_body
from sqs_rpc._deadline_context import set_inbound_deadline
from sqs_rpc._error_info import ErrorInfo
from sqs_rpc._errors import DecodeError, EncodeError, ServiceError, SqsError
from sqs_rpc._interop import Attributes, adapt_request
from sqs_rpc._observe import MessageObserver, Outcome
from sqs_rpc._offload import Offloaded
from sqs_rpc._options import ResponderOptions
from sqs_rpc._payload_store import PayloadStore
from sqs_rpc._trace import set_trace_context
from sqs_rpc._wire import (
    Request,
    decode_request,
)

from .backoff import receive_count_of
from .deadline import expiry_of, log_expiry
from .handler import IncomingMessage, MessageHandler, Retry
from .idempotency import Claim, InMemoryIdempotencyStore, request_key
from .redelivery import Redelivery
from .replies import Replies, Sender
from .reply_cache import key_of
from .reply_policy import ReplyPolicy
from .service import runs_async
from .visibility import VisibilityHeartbeat
from .work import AwaitableRunner, OnLoop, run_inline

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["Dispatcher"]

logger = logging.getLogger(__name__)


class Dispatcher:
    """Runs one message through the decision table; claims requests in the idempotency store.

    ``lease`` is how long a claim may last: the longest a worker may hold a request (its
    visibility extension bound). A server that crashed holds its requests no longer.
    :meth:`work` is the message's handling as a :mod:`~sqs_rpc._server.work` coroutine (a
    poller's); :meth:`process` runs it on the calling thread (the Lambda responder's).
    ``blocking`` marks the worker while a sync handler runs (see ``workers.py``).
    """

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        handler: MessageHandler,
        options: ResponderOptions,
        policy: ReplyPolicy,
        outbox: Sender,
        observer: MessageObserver,
        payloads: PayloadStore,
        heartbeat: VisibilityHeartbeat | None,
        max_receive_count: int | None,
        lease: float,
        exact_receive_time: bool = False,
        blocking: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
    ) -> None:
        self._queue_url = queue_url
        self._handler = handler
        self._codec = options.codec
        self._include_traceback = options.include_traceback
        self._policy = policy
        self._outbox = outbox
        self._observer = observer
        self._blocking = blocking
        # Known before the call: an async handle() holds no worker while it runs.
        self._async_handle = inspect.iscoroutinefunction(handler.handle)
        self._payloads = payloads
        self._heartbeat = heartbeat
        self._max_receive_count = max_receive_count  # from the queue's redrive policy
        self._skew_tolerance = options.clock_skew_tolerance
        # True when process() gets the moment SQS handed the message out (a poller): a first
        # delivery then tells SQS's clock. A Lambda record is handed over later.
        self._exact_receive_time = exact_receive_time
        self._store = options.idempotency_store or InMemoryIdempotencyStore(
            ttl=options.reply_cache_ttl, max_bytes=options.reply_cache_bytes
        )
        self._lease = lease
        self._replies = Replies(
            policy=policy,
            outbox=outbox,
            payloads=payloads,
            max_message_bytes=options.max_message_bytes,
            delete=self._delete,
        )
        self._redelivery = Redelivery(
            sqs=sqs,
            queue_url=queue_url,
            replies=self._replies,
            outbox=outbox,
            counters=observer.counters,
            max_receive_count=max_receive_count,
        )
        # Receipt handle -> what to do once SQS deleted that request (its S3 body, if any).
        self._after_delete: dict[str, Callable[[], object]] = {}

    # -- the decision table ------------------------------------------------------------------

    def process(
        self, message: Mapping[str, Any], received: float, runner: AwaitableRunner
    ) -> Outcome:
        """Handle one message on this thread, an async handler through ``runner``."""
        # A fresh context per message: the trace context set for it never leaks into the next
        # message this thread handles.
        context = contextvars.Context()
        return context.run(run_inline, self.work(message, received), runner)

    async def work(self, message: Mapping[str, Any], received: float) -> Outcome:
        """Handle one message, record its outcome (stats, hooks), and return it.

        Run it in a context of its own: the message's tracing span is current there.
        """
        outcome: Outcome | None = None
        span = self._observer.begin(message)
        try:
            outcome = await self._process(message, received)
            return outcome
        finally:
            self._observer.end(span, message, received, outcome)

    async def _process(self, message: Mapping[str, Any], received: float) -> Outcome:
        # Requests from other libraries (Java temporary queues, python-sqs-client) take
        # sqs-rpc's form here; `extra` is what their replies must carry in addition.
        message, extra = adapt_request(message)
        try:
            # An S3 pointer is checked here, but followed only once the reply policy and the
            # deadline let the request through: a refused or expired request costs no read.
            offloaded = self._payloads.pointer(message, kind="request")
            request = decode_request(message)
            admitted = self._admit(request, offloaded, received)
            if admitted is not None:
                return admitted
            if offloaded is not None:
                request = dataclasses.replace(request, body=self._payloads.read(offloaded))
            body = self._decode_body(request)
        except DecodeError as exc:  # S3PayloadError too: a pointer that cannot be followed
            self._redelivery.reject(message, exc, extra)
            self._redelivery.back_off(message.get("ReceiptHandle"), receive_count_of(message))
            return Outcome("undecodable", finished=False)
        except SqsError as exc:
            # S3 failed (throttled, unreachable, access denied): the request is fine, and a
            # later delivery may read it. No error reply: the caller may still get an answer.
            logger.warning(
                "could not read the body of message %s from S3 (%s); left for retry",
                message.get("MessageId"),
                exc,
            )
            return Outcome("error", finished=False, counted=False)
        if offloaded is None:
            return await self._handle(request, body, received, extra)
        # Once SQS has deleted the request, its body in S3 has no other reader; not before:
        # a delete that fails brings the request back, and it must still be readable.
        self._after_delete[request.receipt_handle] = functools.partial(
            self._payloads.discard, offloaded
        )
        try:
            return await self._handle(request, body, received, extra)
        finally:
            self._after_delete.pop(request.receipt_handle, None)

    def _delete(self, receipt_handle: str) -> bool:
        then = self._after_delete.pop(receipt_handle, None)
        return self._outbox.delete(receipt_handle, then=then)

    def _admit(
        self, request: Request, offloaded: Offloaded | None, received: float
    ) -> Outcome | None:
        """None when the request may run; else the outcome of refusing it."""
        if request.reply_to is not None and not self._replies.allowed(request.reply_to):
            logger.warning(
                "request %s names ReplyTo %r, which this server may not reply to (allowed: %s);"
                " not run, left for redrive",
                request.message_id,
                request.reply_to,
                self._policy.description,
            )
            self._redelivery.back_off(request.receipt_handle, request.receive_count)
            return Outcome("rejected", finished=False)
        expired = expiry_of(
            request, received if self._exact_receive_time else None, self._skew_tolerance
        )
        if expired is not None:
            if log_expiry(request, expired, self._skew_tolerance):
                self._observer.counters.add("expired_skewed")
            # Its S3 body, unread, goes too: once its size is checked against the pointer.
            then = (
                None
                if offloaded is None
                else functools.partial(self._payloads.discard, offloaded, unread=True)
            )
            return Outcome("expired", self._outbox.delete(request.receipt_handle, then=then))
        return None

    async def _handle(
        self, request: Request, body: Any, received: float, extra: Attributes
    ) -> Outcome:
        """The decision table after decoding and admission."""
        key = request_key(self._queue_url, key_of(request))
        name = request.correlation_id or request.message_id
        try:
            state, stored = self._store.begin(key, self._lease)
        except SqsError as exc:
            # Running it unclaimed could run it twice; a later delivery may reach the store.
            logger.warning("could not claim request %s (%s); left for retry", name, exc)
            return Outcome("error", finished=False, counted=False)
        if state == "in_progress":
            # The same request runs on another worker or server (its visibility ran out, or
            # SQS delivered a second copy): leave this copy; once the first finishes, its
            # next delivery is answered from the store.
            logger.info("request %s is already running; copy left in queue", name)
            return Outcome("duplicate", finished=False, counted=False)
        if state == "done":
            logger.info("request %s was already handled; resending its reply", name)
            if stored is not None and request.reply_to is not None:
                return Outcome("duplicate", self._replies.reply_and_delete(request, stored))
            return Outcome("duplicate", self._delete(request.receipt_handle))
        claim = Claim(self._store, key)
        try:
            return await self._run(request, body, claim, received, extra)
        finally:
            _end_quietly(claim.release, name)  # ended on every normal path; this is for the rest

    async def _run(
        self, request: Request, body: Any, claim: Claim, received: float, extra: Attributes
    ) -> Outcome:
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
            max_receive_count=self._max_receive_count,
            traceparent=request.trace.traceparent if request.trace else None,
            tracestate=request.trace.tracestate if request.trace else None,
            operation=request.operation,
        )
        # The handler's own calls default to, and never outlive, this request's deadline.
        set_inbound_deadline(incoming.deadline)
        heartbeat = self._heartbeat
        token = heartbeat.track(request.receipt_handle, received) if heartbeat else None
        failure: Exception | None = None
        try:
            result = await self._call_handler(incoming)
        except Exception as exc:
            failure = exc
        finally:
            # Stop extending before anything is sent, deleted or made visible again.
            if heartbeat is not None and token is not None:
                heartbeat.untrack(token)
        # Each branch below ends the claim before the message can come back (Retry's
        # visibility change, a failed reply), and only after the store has the answer, so a
        # redelivery either finds the answer or runs the handler: never neither.
        name = request.correlation_id or request.message_id
        if isinstance(failure, Retry):
            _end_quietly(claim.release, name)
            self._redelivery.retry(request, incoming, failure, extra)
            return Outcome("retry", finished=False)
        if failure is not None:
            if request.reply_to is None:
                _end_quietly(claim.release, name)
                logger.warning(
                    "handler failed on one-way message %s; left for retry/redrive",
                    request.message_id,
                    exc_info=failure,
                )
                if self._max_receive_count is None:  # nothing else ends its cycle
                    self._redelivery.back_off(
                        request.receipt_handle, request.receive_count, first=2
                    )
                return Outcome("error", finished=False)
            logger.info("handler failed on call %s: %r", request.correlation_id, failure)
            error_body = self._error_body(failure)
            finished = self._replies.finish(
                request, claim, "error", error_body, JSON_CONTENT_TYPE, extra=extra
            )
            return Outcome("error", finished)
        if request.reply_to is None:
            _end_quietly(functools.partial(claim.complete, None), name)
            return Outcome("ok", self._delete(request.receipt_handle))
        try:
            reply_body = encode_body(self._codec, result)  # a body SQS accepts, or EncodeError
        except EncodeError as exc:
            # Checked before sending: the caller gets an error, not an undecodable reply.
            error = ErrorInfo("EncodeError", f"the handler's return value: {exc}").to_body()
            finished = self._replies.finish(
                request, claim, "error", error, JSON_CONTENT_TYPE, extra=extra
            )
            return Outcome("ok", finished)
        finished = self._replies.finish(
            request, claim, "ok", reply_body, self._codec.content_type, extra=extra
        )
        return Outcome("ok", finished)

    async def _call_handler(self, incoming: IncomingMessage) -> Any:
        if self._async_handle or runs_async(self._handler, incoming.operation):
            result = self._handler.handle(incoming)
        else:
            with self._blocking():  # a sync handler holds its worker: the pool may grow
                result = self._handler.handle(incoming)
        if inspect.isawaitable(result):
            # A task on the event loop; this work resumes on a worker when it is done, and
            # holds no thread meanwhile. Cancelled (a stop that gave up): raised from here.
            result = await OnLoop(result)
        return result

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
        code: str | None = None
        if isinstance(exc, ServiceError):  # raised on purpose: its code and details go too
            code, details = exc.code, exc.details
        if self._include_traceback:
            details = {**(details or {}), "traceback": "".join(traceback.format_exception(exc))}
        return ErrorInfo(type(exc).__name__, str(exc), details, code=code).to_body()


def _end_quietly(end: Callable[[], None], name: str) -> None:
    """End a claim; a store that fails here only delays a redelivery until the lease ends."""
    try:
        end()
    except SqsError as exc:
        logger.warning(
            "could not record the end of request %s in the idempotency store (%s); a "
            "redelivery waits for its claim to expire",
            name,
            exc,
        )
