"""RequestMessage, the checks on what a caller passes, and the encoding of a request.

:class:`RequestEncoder` turns a :class:`RequestMessage` into an
:class:`~sqs_rpc._outgoing.OutgoingMessage`. It applies the codec, the wire envelope, FIFO ids,
the size limit and the S3 offload.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqs_rpc._attributes import (
    MAX_SERVICE_USER_ATTRIBUTES,
    MAX_USER_ATTRIBUTES,
    AttributeValue,
    encode_attributes,
)
from sqs_rpc._codecs import Codec, encode_body, sqs_text_problem
from sqs_rpc._errors import ConfigurationError
from sqs_rpc._outgoing import OutgoingMessage
from sqs_rpc._payload_store import PayloadStore
from sqs_rpc._trace import current_trace_context
from sqs_rpc._wire import MAX_CORRELATION_ID_LENGTH, encode_request

__all__ = [
    "MAX_DELAY_SECONDS",
    "MAX_TIMEOUT",
    "RequestEncoder",
    "RequestMessage",
    "check_message",
    "check_timeout",
]

MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds
# The longest a call may wait for its reply: 12 hours, the longest SQS hides a request from
# other servers (its maximum visibility timeout), so the longest one run can hold it. Bounded
# so that a timeout is checked before anything is sent: 1e13 seconds passed every check and
# then overflowed the wait, after the request was on its way.
MAX_TIMEOUT = 43_200.0
_LONGEST_CALL = (
    " (12 hours, SQS's longest visibility timeout); for longer work, publish a one-way "
    "message and have the result sent back as a message of its own"
)


@dataclass(frozen=True)
class RequestMessage:
    """A request for :meth:`RpcClient.send`: the lower-level form of :meth:`RpcClient.call`.

    Example::

        msg = RequestMessage("https://sqs.../orders", {"id": 7}, group_id="customer-42")
        future = client.send(msg, timeout=5)

    Attributes:
        queue_url: the request queue.
        body: the payload, encoded by the client's codec.
        attributes: your own message attributes (str or bytes values; at most 3).
        correlation_id: the call's id (at most 128 characters); generated when None. One
            call per id waits at a time; an id may be reused after. A call with an id of your
            own takes only replies that echo its random nonce (servers of this version on).
        group_id: ``MessageGroupId``, required by FIFO queues.
        deduplication_id: ``MessageDeduplicationId`` for FIFO queues without
            content-based deduplication.
        delay_seconds: ``DelaySeconds``, 0 to 900 (standard queues only).
        operation: the :class:`~sqs_rpc.Service` operation to call (``SqsRpcOperation``);
            set by proxies. A service call leaves 2 attributes of your own.
    """

    queue_url: str
    body: Any = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    correlation_id: str | None = None
    group_id: str | None = None
    deduplication_id: str | None = None
    delay_seconds: int = 0
    operation: str | None = None


def check_timeout(value: float, name: str, *, maximum: float = MAX_TIMEOUT) -> float:
    """Seconds > 0 and at most ``maximum``; else :class:`ConfigurationError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number of seconds, not {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ConfigurationError(f"{name} must be a finite number of seconds > 0, not {value!r}")
    if value > maximum:
        raise ConfigurationError(
            f"{name}={value!r} is over its maximum of {maximum:g} seconds"
            + (_LONGEST_CALL if maximum == MAX_TIMEOUT else "")
        )
    return float(value)


def check_queue_url(queue_url: str) -> str:
    if not isinstance(queue_url, str) or not queue_url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"queue URL {queue_url!r} is not a URL; pass the queue's URL (get_queue_url "
            "returns it), not its name"
        )
    return queue_url


def check_message(message: RequestMessage) -> None:
    """Raise :class:`ConfigurationError` when ``message`` cannot be sent as it is."""
    check_queue_url(message.queue_url)
    encode_attributes(
        message.attributes,
        limit=MAX_USER_ATTRIBUTES if message.operation is None else MAX_SERVICE_USER_ATTRIBUTES,
    )
    correlation_id = message.correlation_id
    if correlation_id is not None and (
        not isinstance(correlation_id, str)
        or len(correlation_id) > MAX_CORRELATION_ID_LENGTH
        or sqs_text_problem(correlation_id) is not None
    ):
        raise ConfigurationError(
            f"correlation_id={str(correlation_id)[:200]!r} must be a string of at most "
            f"{MAX_CORRELATION_ID_LENGTH} characters of text SQS accepts (servers refuse "
            "longer ids), or None for a generated one"
        )
    delay = message.delay_seconds
    if (
        isinstance(delay, bool)
        or not isinstance(delay, int)
        or not (0 <= delay <= MAX_DELAY_SECONDS)
    ):
        raise ConfigurationError(
            f"delay_seconds={delay!r} must be whole seconds from 0 to {MAX_DELAY_SECONDS}"
        )


class RequestEncoder:
    """Builds the outgoing messages of a client's requests.

    Example::

        encoder = RequestEncoder(JsonCodec(), PayloadStore(None), MAX_MESSAGE_BYTES)
        body = encoder.body(message)
        outgoing = encoder.outgoing(message, body, correlation_id, reply_to=url)
    """

    def __init__(self, codec: Codec, payloads: PayloadStore, max_message_bytes: int) -> None:
        self.codec = codec
        self._payloads = payloads
        self._max_message_bytes = max_message_bytes

    def body(self, message: RequestMessage) -> str:
        """Check ``message`` and encode its payload with the codec (:class:`EncodeError`
        for a payload it cannot encode, or a body SQS would refuse)."""
        check_message(message)
        return encode_body(self.codec, message.body)

    def outgoing(
        self,
        message: RequestMessage,
        body: str,
        correlation_id: str,
        *,
        reply_to: str | None = None,
        deadline_ms: int | None = None,
        nonce: str | None = None,
        upload: bool = True,
    ) -> OutgoingMessage:
        """The outgoing message of an encoded request.

        ``nonce`` is the call's random ``SqsRpcNonce`` (calls only). Raises
        :class:`~sqs_rpc.PayloadTooLarge` when the request is over the size limit. With
        ``upload=False``, only the size is checked: nothing goes to S3 yet.
        """
        outgoing = encode_request(
            body=body,
            content_type=self.codec.content_type,
            correlation_id=correlation_id,
            reply_to=reply_to,
            deadline_ms=deadline_ms,
            attributes=message.attributes,
            trace=current_trace_context(),  # set by trace_context(); see docs/tracing.md
            nonce=nonce,
            operation=message.operation,
        )
        deduplication_id = message.deduplication_id
        if (
            deduplication_id is None
            and reply_to is not None
            and message.queue_url.endswith(".fifo")
        ):
            # Every call is a request of its own. With content-based deduplication, two calls
            # with the same payload within 5 minutes would be one message, and one would time
            # out. The nonce, not the correlation id: a caller may reuse an id it chose.
            deduplication_id = nonce or correlation_id
        outgoing = dataclasses.replace(
            outgoing,
            group_id=message.group_id,
            deduplication_id=deduplication_id,
            delay_seconds=message.delay_seconds,
        )
        # The size check. A body over the offload threshold goes to S3 here (_offload.py), so
        # the batcher only ever sees, and sizes, the small pointer message.
        return self._payloads.outgoing(
            outgoing, self._max_message_bytes, what="request", upload=upload
        )
