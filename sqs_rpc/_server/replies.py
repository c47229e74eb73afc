"""Replies: encode, size-check and send a request's answer, then delete the request.

The dispatcher decides *what* to answer. This module makes the answer an SQS message; a large
body goes to S3. It records the reply in the idempotency store and sends it to the caller's
reply queue (a Java virtual queue through its host queue). It deletes the request only once
SQS accepted the reply. A reply SQS refuses as too large becomes an error reply, so the
caller learns why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sqs_rpc._attributes import CONTENT_TYPE, CORRELATION_ID, STATUS, VERSION
from sqs_rpc._codecs import JSON_CONTENT_TYPE
from sqs_rpc._error_info import ErrorInfo
from sqs_rpc._errors import (
    DecodeError,
    PayloadTooLarge,
    QueueDoesNotExist,
    SqsError,
    is_message_too_long,
)
from sqs_rpc._interop import Attributes, reply_destination
from sqs_rpc._outgoing import MessageAttributes, OutgoingMessage
from sqs_rpc._payload_store import PayloadStore
from sqs_rpc._trace import TraceContext
from sqs_rpc._wire import Request, Status, encode_reply

from .idempotency import Claim
from .reply_policy import ReplyPolicy

__all__ = ["Replies", "Sender"]

logger = logging.getLogger(__name__)


class Sender(Protocol):
    """Where replies and deletes go.

    The MessagePoller's :class:`~sqs_rpc._server.outbox.Outbox` batches them on a background
    thread; the Lambda responder sends replies on the calling thread and leaves deletes to
    Lambda.
    """

    def send_reply(self, reply_to: str, reply: OutgoingMessage) -> None:
        """Return once SQS accepted the reply; raise :class:`SqsError` if it did not."""

    def delete(self, receipt_handle: str, then: Callable[[], object] | None = None) -> bool:
        """Finish a request: True once it is (or will be) deleted, False if it will come back.

        ``then`` runs once the request is deleted for good (not at all if it is not).
        """

    def hide(self, receipt_handle: str, seconds: int) -> None:
        """Hide a request left in the queue for ``seconds`` (a backoff); never raises."""


class Replies:
    """Sends replies through a :class:`Sender`; ``delete`` finishes a request once answered."""

    def __init__(
        self,
        *,
        policy: ReplyPolicy,
        outbox: Sender,
        payloads: PayloadStore,
        max_message_bytes: int,
        delete: Callable[[str], bool],
    ) -> None:
        self._policy = policy
        self._outbox = outbox
        self._payloads = payloads
        self._max_message_bytes = max_message_bytes
        self._delete = delete

    def finish(
        self,
        request: Request,
        claim: Claim,
        status: Status,
        body: str,
        content_type: str,
        *,
        extra: Attributes,
    ) -> bool:
        """Answer a request that ran: record the reply, send it, delete the request."""
        assert request.correlation_id is not None
        reply = reply_message(
            request.correlation_id,
            status,
            body,
            content_type,
            extra,
            trace=request.trace,
            nonce=request.nonce,
        )
        try:
            # The size check; over the offload threshold the body goes to S3 first, and the
            # store and the outbox see only the pointer message.
            reply = self._payloads.outgoing(reply, self._max_message_bytes, what="reply")
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
            reply = reply_message(
                request.correlation_id,
                "error",
                error.to_body(),
                JSON_CONTENT_TYPE,
                extra,
                trace=request.trace,
                nonce=request.nonce,
            )
        try:
            claim.complete(reply)
        except SqsError as exc:
            # The handler ran: its caller gets the answer all the same. A redelivery waits
            # for the claim to expire, then runs again.
            logger.warning(
                "could not record the reply to call %s in the idempotency store: %s",
                request.correlation_id,
                exc,
            )
        return self._send_and_delete(request, reply)

    def reply_and_delete(self, request: Request, stored: Mapping[str, Any]) -> bool:
        """Send a reply the idempotency store kept; True once the request is deleted.

        ``stored`` holds ``SendMessage`` arguments, the store's format. False: the request
        will come back.
        """
        return self._send_and_delete(request, OutgoingMessage.from_send_kwargs(stored))

    def _send_and_delete(self, request: Request, reply: OutgoingMessage) -> bool:
        """Send a reply; True once the request is deleted, False if it will come back."""
        assert request.reply_to is not None
        try:
            self.deliver(request.reply_to, reply)
        except QueueDoesNotExist:
            # The caller closed or died and its queue is gone: nobody can use this reply,
            # and running the handler again would not change that.
            logger.info(
                "reply queue for call %s is gone; dropping the reply", request.correlation_id
            )
        except SqsError as exc:
            if is_message_too_long(exc) and reply.attribute(STATUS) == "ok":
                # Running the handler again cannot make its answer smaller: tell the caller.
                return self._send_and_delete(request, _too_long(request, reply, exc))
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

    def allowed(self, reply_to: str) -> bool:
        """May this server send to ``reply_to``? (The reply policy, on its queue URL.)"""
        destination = reply_destination(reply_to)
        # The policy gets the raw URL (a Java virtual queue's HOST#NAME whole), as documented.
        return destination is not None and self._policy.allows(reply_to)

    def deliver(self, reply_to: str, reply: OutgoingMessage) -> None:
        """Send a reply to ``reply_to`` (a Java virtual queue goes through its host queue)."""
        destination = reply_destination(reply_to)
        if destination is None:  # checked by allowed() before anything runs
            raise DecodeError(f"reply address {reply_to!r} is not a queue URL")
        queue_url, routing = destination
        if routing:
            reply = reply.with_attributes(routing)
        self._outbox.send_reply(queue_url, reply)

    def send_error(
        self,
        reply_to: str,
        correlation_id: str,
        error: ErrorInfo,
        extra: Attributes,
        *,
        trace: TraceContext | None = None,
        nonce: str | None = None,
    ) -> None:
        """Send an error reply and leave the request where it is (no delete)."""
        reply = reply_message(
            correlation_id,
            "error",
            error.to_body(),
            JSON_CONTENT_TYPE,
            extra,
            trace=trace,
            nonce=nonce,
        )
        try:
            self.deliver(reply_to, reply)
        except (SqsError, TimeoutError) as exc:
            logger.warning("could not send the error reply for %s: %s", correlation_id, exc)


def reply_message(
    correlation_id: str,
    status: Status,
    body: str,
    content_type: str,
    extra: MessageAttributes,
    *,
    trace: TraceContext | None = None,
    nonce: str | None = None,
) -> OutgoingMessage:
    """A reply with ``extra`` attributes: those a peer's protocol asks to be echoed."""
    reply = encode_reply(
        correlation_id=correlation_id,
        status=status,
        body=body,
        content_type=content_type,
        trace=trace,  # the caller's trace context goes back with the reply
        nonce=nonce,  # and its nonce: only that call takes the reply
    )
    return reply.with_attributes(extra)


def _too_long(request: Request, reply: OutgoingMessage, exc: SqsError) -> OutgoingMessage:
    """The error reply that replaces a reply SQS refused as too large."""
    assert request.correlation_id is not None
    size = len(reply.body.encode())
    error = ErrorInfo(
        "EncodeError",
        f"the handler's return value encodes to {size} bytes, more than SQS accepts in one "
        f"message ({exc.code}); return less, or store the data elsewhere and return a reference",
    )
    extra = {
        name: value
        for name, value in reply.attributes.items()
        if name not in {CORRELATION_ID, CONTENT_TYPE, VERSION, STATUS}
    }
    return reply_message(request.correlation_id, "error", error.to_body(), JSON_CONTENT_TYPE, extra)
