"""The server side: MessageHandler (your code) and MessagePoller (the loop that runs it).

The poller long-polls the request queue, runs the handler on a bounded thread pool, sends the
return value (or a structured error) to the request's ``ReplyTo`` queue, and deletes the request
only after its reply was sent: execution is at-least-once, and nothing is lost.

What happens to each kind of message:

=======================================  =================================================
message                                  outcome
=======================================  =================================================
request, handler returns                 ``ok`` reply, then request deleted
request, handler raises                  ``error`` reply (type, message), request deleted:
                                         the caller has its answer
request, return value not encodable      ``error`` reply (``EncodeError``), request deleted
one-way, handler returns                 deleted
one-way, handler raises                  left in the queue for retry / redrive (DLQ)
undecodable (bad body, attributes,       ``error`` reply on first receipt when it names a
unknown protocol version)                ``ReplyTo``; always left for redrive (DLQ)
reply cannot be sent (SQS error)         left in the queue: redelivered after the
                                         visibility timeout
reply queue no longer exists             request deleted: the caller is gone
=======================================  =================================================
"""

from __future__ import annotations

import contextvars
import logging
import signal
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

import boto3

from ._aws import make_sqs_client
from ._codecs import JSON_CONTENT_TYPE, Codec, JsonCodec
from ._errors import (
    ClientClosedError,
    ConfigurationError,
    DecodeError,
    EncodeError,
    PayloadTooLarge,
    QueueDoesNotExist,
    SqsError,
    aws_errors,
)
from ._loop import BackgroundLoop
from ._reply_queue import DEFAULT_PREFIX
from ._sweeper import PeriodicSweep, check_sweep_interval
from ._trace import TraceContext, set_trace_context
from ._wire import (
    MAX_MESSAGE_BYTES,
    AttributeValue,
    ErrorInfo,
    Request,
    Status,
    check_max_message_bytes,
    check_message_size,
    decode_request,
    encode_reply,
    reply_address,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["IncomingMessage", "MessageHandler", "MessagePoller"]

logger = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 8
DEFAULT_WAIT_TIME_SECONDS = 20
DEFAULT_SHUTDOWN_TIMEOUT = 30.0
MAX_BATCH = 10


@dataclass(frozen=True)
class IncomingMessage:
    """A request (or one-way message) as a handler sees it.

    Attributes:
        body: the decoded payload.
        attributes: the sender's own message attributes.
        correlation_id: the call's id (None for some foreign one-way messages).
        reply_to: the reply queue URL; None for a one-way message.
        deadline: the caller's deadline (epoch seconds), or None.
        message_id: the SQS message id.
        receive_count: how many times SQS has delivered this message (1 the first time).
        queue_url: the request queue.
        traceparent, tracestate: the caller's W3C trace context, or None.
    """

    body: Any
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    correlation_id: str | None = None
    reply_to: str | None = None
    deadline: float | None = None
    message_id: str = ""
    receive_count: int = 1
    queue_url: str = ""
    traceparent: str | None = None
    tracestate: str | None = None

    @property
    def trace_headers(self) -> dict[str, str]:
        """The trace context as headers (empty without one): ``propagate.extract``'s carrier."""
        headers = {"traceparent": self.traceparent, "tracestate": self.tracestate}
        return {name: value for name, value in headers.items() if value}

    @property
    def one_way(self) -> bool:
        """True when no reply is expected."""
        return self.reply_to is None

    def remaining_time(self) -> float | None:
        """Seconds left before the caller gives up (may be negative), or None without deadline."""
        return None if self.deadline is None else self.deadline - time.time()


class MessageHandler(ABC):
    """Subclass and implement :meth:`handle`; its return value becomes the reply.

    Example::

        class Echo(MessageHandler):
            def handle(self, message: IncomingMessage) -> Any:
                return {"echo": message.body}

    An exception raised by ``handle`` is sent to the caller as an error reply and raised there
    as :class:`~sqs_rpc.RemoteError`. ``handle`` runs on worker threads, concurrently.
    """

    @abstractmethod
    def handle(self, message: IncomingMessage) -> Any:
        """Handle one message; return the reply payload (ignored for one-way messages)."""


class MessagePoller:
    """Consumes a request queue, runs a :class:`MessageHandler`, and replies.

    Example::

        poller = MessagePoller(queue_url, Echo(), concurrency=8)
        poller.start()      # background threads; or poller.run() to block until SIGTERM/SIGINT
        ...
        poller.stop()

    Args:
        queue_url: the request queue.
        handler: your :class:`MessageHandler`.
        concurrency: handler threads; also the most messages held at once.
        sqs_client, session, endpoint_url, region_name: as for :class:`~sqs_rpc.RpcClient`.
        codec: decodes requests and encodes replies; JSON by default.
        wait_time_seconds: long-poll wait, 1 to 20. :meth:`stop` may wait this long for the
            receive in progress.
        shutdown_timeout: seconds :meth:`stop` waits for running handlers.
        include_traceback: send the handler's traceback in error replies' details.
        max_message_bytes: the largest reply sent; a larger one is replaced by an error
            reply (``PayloadTooLarge``) so the caller learns why. SQS's limit by default.
        sweep_interval: when set, seconds (jittered) between sweeps of orphaned reply queues
            under ``sweep_prefix``, run in the background while started; off by default.
        sweep_prefix: the reply queue prefix to sweep.
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
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        sweep_interval: float | None = None,
        sweep_prefix: str = DEFAULT_PREFIX,
    ) -> None:
        if not isinstance(queue_url, str) or not queue_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"queue_url {queue_url!r} is not a queue URL")
        if not callable(getattr(handler, "handle", None)):
            raise ConfigurationError(
                f"handler {handler!r} has no handle() method; subclass sqs_rpc.MessageHandler"
            )
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency={concurrency!r} must be an int >= 1")
        if (
            isinstance(wait_time_seconds, bool)
            or not isinstance(wait_time_seconds, int)
            or not 1 <= wait_time_seconds <= 20
        ):
            raise ConfigurationError(
                f"wait_time_seconds={wait_time_seconds!r} must be whole seconds from 1 to 20 "
                "(SQS's long-poll range; 0 would busy-poll)"
            )
        if (
            isinstance(shutdown_timeout, bool)
            or not isinstance(shutdown_timeout, int | float)
            or not 0 <= shutdown_timeout < 86400
        ):
            raise ConfigurationError(
                f"shutdown_timeout={shutdown_timeout!r} must be seconds from 0 to 86400"
            )
        if codec is not None and not isinstance(codec, Codec):
            raise ConfigurationError(
                f"codec {codec!r} lacks content_type/encode/decode; see sqs_rpc.Codec"
            )
        self.queue_url = queue_url
        self._handler = handler
        self._concurrency = concurrency
        self._codec: Codec = codec if codec is not None else JsonCodec()
        self._wait_time = wait_time_seconds
        self._shutdown_timeout = float(shutdown_timeout)
        self._include_traceback = include_traceback
        self._max_message_bytes = check_max_message_bytes(max_message_bytes)
        self._sqs = make_sqs_client(
            sqs_client=sqs_client,
            session=session,
            endpoint_url=endpoint_url,
            region_name=region_name,
            max_pool_connections=concurrency + 2,
        )
        name = "sqs-rpc-server-" + queue_url.rstrip("/").rsplit("/", 1)[-1][:40]
        self._slots = threading.Condition()
        self._free = concurrency
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix=f"{name}-worker")
        self._receiver = BackgroundLoop(f"{name}-receiver", self._receive_once)
        self._state_lock = threading.Lock()
        self._started = False
        self._stopped = False
        interval = check_sweep_interval(sweep_interval)
        self._sweep = (
            None
            if interval is None
            else PeriodicSweep(self._sqs, prefix=sweep_prefix, interval=interval)
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

    def start(self) -> None:
        """Check the queue exists, then start receiving. Idempotent."""
        with self._state_lock:
            if self._stopped:
                raise ClientClosedError("this MessagePoller was stopped; create a new one")
            if self._started:
                return
            # Fail here, not in a background loop, when the URL is wrong.
            with aws_errors("GetQueueAttributes", self.queue_url):
                self._sqs.get_queue_attributes(
                    QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"]
                )
            self._started = True
            self._receiver.start()
            if self._sweep is not None:
                self._sweep.start()
        logger.info("polling %s with %d workers", self.queue_url, self._concurrency)

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
        # started finish, bounded by the budget; (3) stop the worker pool.
        self._receiver.signal_stop()
        with self._slots:
            self._slots.notify_all()
        receiver_done = self._receiver.stop(self._wait_time + 10)
        with self._slots:
            drained = self._slots.wait_for(lambda: self._free == self._concurrency, budget)
        if not drained:
            logger.warning(
                "%d handlers still running after %.0fs; their messages will be redelivered",
                self._concurrency - self._free,
                budget,
            )
        self._executor.shutdown(wait=drained, cancel_futures=True)
        if self._sweep is not None:
            self._sweep.stop()
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

    # -- receiving ---------------------------------------------------------------------------

    def _receive_once(self) -> float:
        with self._slots:
            # Receive only what a free worker can start at once: a message held but not
            # started would sit out its visibility timeout for nothing.
            self._slots.wait_for(lambda: self._free > 0 or self._receiver.stopping)
            if self._receiver.stopping:
                return 0
            count = min(MAX_BATCH, self._free)
        with aws_errors("ReceiveMessage", self.queue_url):
            response = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=count,
                WaitTimeSeconds=self._wait_time,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        messages = response.get("Messages", [])
        if self._receiver.stopping:
            self._release(messages)
            return 0
        for message in messages:
            with self._slots:
                self._free -= 1
            self._executor.submit(self._process, message)
        return 0

    def _release(self, messages: list[Any]) -> None:
        """Make received-but-unstarted messages visible again at once."""
        if not messages:
            return
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages)
        ]
        try:
            with aws_errors("ChangeMessageVisibilityBatch", self.queue_url):
                self._sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=entries,  # type: ignore[arg-type]
                )
            logger.info("released %d unstarted messages", len(entries))
        except SqsError as exc:
            logger.warning(
                "could not release %d messages (%s); they return after their visibility timeout",
                len(entries),
                exc,
            )

    # -- handling ----------------------------------------------------------------------------

    def _process(self, message: Mapping[str, Any]) -> None:
        try:
            # A fresh context per message: the trace context set for it never leaks into the
            # next message this worker thread handles.
            contextvars.Context().run(self._handle, message)
        except Exception:
            # Never let a failure kill a worker silently; the message stays for redelivery.
            logger.exception("unexpected error handling message %s", message.get("MessageId"))
        finally:
            with self._slots:
                self._free += 1
                self._slots.notify_all()

    def _handle(self, message: Mapping[str, Any]) -> None:
        try:
            request = decode_request(message)
            body = self._decode_body(request)
        except DecodeError as exc:
            self._reject(message, exc)
            return
        set_trace_context(request.trace)  # the handler's own calls and the reply carry it
        incoming = IncomingMessage(
            body=body,
            attributes=request.attributes,
            correlation_id=request.correlation_id,
            reply_to=request.reply_to,
            deadline=None if request.deadline_ms is None else request.deadline_ms / 1000,
            message_id=request.message_id,
            receive_count=request.receive_count,
            queue_url=self.queue_url,
            traceparent=request.trace.traceparent if request.trace else None,
            tracestate=request.trace.tracestate if request.trace else None,
        )
        try:
            result = self._handler.handle(incoming)
        except Exception as exc:
            if request.reply_to is None:
                logger.warning(
                    "handler failed on one-way message %s; left for retry/redrive",
                    request.message_id,
                    exc_info=True,
                )
                return
            logger.info("handler failed on call %s: %r", request.correlation_id, exc)
            self._reply_and_delete(request, "error", self._error_body(exc), JSON_CONTENT_TYPE)
            return
        if request.reply_to is None:
            self._delete(request)
            return
        try:
            reply_body = self._codec.encode(result)
        except EncodeError as exc:
            # Checked before sending: the caller gets an error, not an undecodable reply.
            error = ErrorInfo("EncodeError", f"the handler's return value: {exc}")
            self._reply_and_delete(request, "error", error.to_body(), JSON_CONTENT_TYPE)
            return
        self._reply_and_delete(request, "ok", reply_body, self._codec.content_type)

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

    def _reject(self, message: Mapping[str, Any], exc: DecodeError) -> None:
        """An undecodable message: tell the caller once, leave the message for redrive."""
        message_id = message.get("MessageId")
        address = reply_address(message)
        first = str(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")) == "1"
        if address is not None and address[1] and first:
            reply_to, correlation_id = address
            assert correlation_id is not None
            error = ErrorInfo("DecodeError", f"the server could not decode the request: {exc}")
            try:
                self._send_reply(
                    reply_to, correlation_id, "error", error.to_body(), JSON_CONTENT_TYPE
                )
            except SqsError as send_exc:
                logger.warning("could not send the error reply for %s: %s", message_id, send_exc)
        logger.warning(
            "undecodable message %s left for redrive (configure a dead-letter queue): %s",
            message_id,
            exc,
        )

    def _reply_and_delete(
        self, request: Request, status: Status, body: str, content_type: str
    ) -> None:
        assert request.reply_to is not None
        assert request.correlation_id is not None
        try:
            self._send_reply(
                request.reply_to,
                request.correlation_id,
                status,
                body,
                content_type,
                trace=request.trace,  # the caller's trace context goes back with the reply
            )
        except QueueDoesNotExist:
            # The caller closed or died and its queue is gone: nobody can use this reply,
            # and running the handler again would not change that.
            logger.info(
                "reply queue for call %s is gone; dropping the reply", request.correlation_id
            )
        except SqsError as exc:
            logger.warning(
                "could not reply to call %s (%s); the request will be redelivered",
                request.correlation_id,
                exc,
            )
            return
        self._delete(request)

    def _send_reply(
        self,
        reply_to: str,
        correlation_id: str,
        status: Status,
        body: str,
        content_type: str,
        *,
        trace: TraceContext | None = None,
    ) -> None:
        arguments = encode_reply(
            correlation_id=correlation_id,
            status=status,
            body=body,
            content_type=content_type,
            trace=trace,
        )
        try:
            check_message_size(arguments, self._max_message_bytes, what="reply")
        except PayloadTooLarge as exc:
            # SQS would refuse it, and redelivery would not make it smaller: tell the caller.
            logger.warning("reply to call %s is too large: %s", correlation_id, exc)
            error = ErrorInfo("PayloadTooLarge", str(exc), {"size": exc.size, "limit": exc.limit})
            arguments = encode_reply(
                correlation_id=correlation_id,
                status="error",
                body=error.to_body(),
                content_type=JSON_CONTENT_TYPE,
                trace=trace,
            )
        with aws_errors("SendMessage", reply_to):
            self._sqs.send_message(QueueUrl=reply_to, **arguments)
        logger.debug("replied %s to call %s", status, correlation_id)

    def _delete(self, request: Request) -> None:
        try:
            with aws_errors("DeleteMessage", self.queue_url):
                self._sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=request.receipt_handle
                )
        except SqsError as exc:
            logger.warning(
                "could not delete message %s (%s); it will be redelivered", request.message_id, exc
            )
