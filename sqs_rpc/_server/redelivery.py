"""Requests left for redelivery on purpose: a handler's ``Retry``, and poison.

Poison is a request that will fail the same way at every delivery: undecodable, refused by
the reply policy, or one-way with a failing handler. Its caller (if any) is told once, on
the first delivery; the request is hidden for longer at each delivery (``backoff.py``).
A ``Retry`` on the last delivery before the dead-letter queue gets an error reply instead,
so its caller does not wait in vain.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqs_rpc._error_info import ErrorInfo
from sqs_rpc._errors import DecodeError, SqsError
from sqs_rpc._interop import Attributes
from sqs_rpc._stats import Counters
from sqs_rpc._wire import Request, nonce_of, reply_address, valid_nonce

from .backoff import poison_delay
from .handler import IncomingMessage, Retry
from .outbox import change_visibility
from .replies import Replies, Sender

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["Redelivery"]

logger = logging.getLogger(__name__)


class Redelivery:
    """Leaves requests in the queue: tells their callers once, hides them for a backoff."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        replies: Replies,
        outbox: Sender,
        counters: Counters,
        max_receive_count: int | None,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._replies = replies
        self._outbox = outbox
        self._counters = counters
        self._max_receive_count = max_receive_count  # from the queue's redrive policy

    def retry(
        self, request: Request, incoming: IncomingMessage, exc: Retry, extra: Attributes
    ) -> None:
        """A handler raised ``Retry``: leave the request, after its delay if it has one."""
        if incoming.last_attempt and request.reply_to is not None:
            assert request.correlation_id is not None
            # The redrive policy moves the request to the dead-letter queue at its next
            # receive: tell the caller now instead of letting it time out.
            logger.warning(
                "call %s asked for a retry on its last delivery (%d of %d); sending an error "
                "reply and leaving it for the dead-letter queue",
                request.correlation_id,
                request.receive_count,
                self._max_receive_count,
            )
            error = ErrorInfo("Retry", f"gave up after {request.receive_count} attempts: {exc}")
            self._replies.send_error(
                request.reply_to,
                request.correlation_id,
                error,
                extra,
                trace=request.trace,
                nonce=request.nonce,
            )
            return
        logger.info(
            "handler asked to retry %s (delivery %d)",
            request.correlation_id or request.message_id,
            request.receive_count,
        )
        if exc.delay is not None:
            self._set_visibility(request.receipt_handle, exc.delay)

    def reject(self, message: Mapping[str, Any], exc: DecodeError, extra: Attributes) -> None:
        """An undecodable message: tell the caller once, leave the message for redrive."""
        message_id = message.get("MessageId")
        address = reply_address(message)
        first = str(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")) == "1"
        if address is not None and address[1] and first:
            reply_to, correlation_id = address
            if not self._replies.allowed(reply_to):
                self._counters.add("rejected")  # the outcome stays "undecodable"
                logger.warning(
                    "undecodable message %s names ReplyTo %r, which this server may not reply "
                    "to; no error reply",
                    message_id,
                    reply_to,
                )
            else:
                error = ErrorInfo("DecodeError", f"the server could not decode the request: {exc}")
                nonce = valid_nonce(nonce_of(message))  # so that only its call takes it
                self._replies.send_error(reply_to, correlation_id or "", error, extra, nonce=nonce)
        # Once per message: a flood of poison must not become a flood of warnings too.
        logger.log(
            logging.WARNING if first else logging.DEBUG,
            "undecodable message %s left for redrive (configure a dead-letter queue): %s",
            message_id,
            exc,
        )

    def back_off(self, receipt_handle: object, receive_count: int, *, first: int = 1) -> None:
        """Hide a request that will fail again for longer at each delivery (``backoff.py``)."""
        delay = poison_delay(receive_count, self._max_receive_count, first=first)
        if delay and isinstance(receipt_handle, str):
            # Batched and off this worker: a flood of poison costs a tenth of a request each.
            self._outbox.hide(receipt_handle, delay)

    def _set_visibility(self, receipt_handle: str, seconds: int) -> None:
        try:
            change_visibility(self._sqs, self._queue_url, receipt_handle, seconds)
        except SqsError as exc:
            logger.warning("could not delay the retry: %s", exc)
