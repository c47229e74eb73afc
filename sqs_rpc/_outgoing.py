"""OutgoingMessage: a message on its way to SQS, from the module that builds it to the one that
sends it.

The request encoder (``_client/request.py``) and the reply builder (``_server/replies.py``)
make one. The payload store may swap its body for an S3 pointer. The modules that talk to SQS
(the batcher, the server's outbox, the reply poller's wake message) turn it into boto3's
``SendMessage`` arguments with :meth:`OutgoingMessage.to_send_kwargs`. That method is the
one place the request dict is spelt.

One more boundary holds that dict: an :class:`~sqs_rpc.IdempotencyStore` keeps a reply as
``SendMessage`` arguments (its documented format), so a stored reply comes back through
:meth:`OutgoingMessage.from_send_kwargs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, cast

from ._attributes import attributes_size
from ._errors import PayloadTooLarge

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

__all__ = ["MessageAttributes", "OutgoingMessage", "SendKwargs"]

MessageAttributes = Mapping[str, Mapping[str, Any]]
"""SQS ``MessageAttributes``: name -> ``{"DataType": ..., "StringValue" or "BinaryValue"}``."""


class _SendKwargsBody(TypedDict):
    MessageBody: str


class SendKwargs(_SendKwargsBody, total=False):
    """``SendMessage`` arguments without ``QueueUrl`` (also a batch entry, less its ``Id``)."""

    MessageAttributes: dict[str, MessageAttributeValueTypeDef]
    MessageGroupId: str
    MessageDeduplicationId: str
    DelaySeconds: int


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A request, reply or control message ready to send, without its queue.

    Example::

        message = OutgoingMessage("hello", {"ContentType": string_value("text/plain")})
        sqs.send_message(QueueUrl=url, **message.to_send_kwargs())

    Attributes:
        body: the message body, text SQS accepts.
        attributes: every message attribute, the protocol's and the user's, in SQS's form.
        group_id: ``MessageGroupId`` (FIFO queues; fair standard queues).
        deduplication_id: ``MessageDeduplicationId`` (FIFO queues).
        delay_seconds: ``DelaySeconds``; 0 sends none.
    """

    body: str
    attributes: MessageAttributes = field(default_factory=dict)
    group_id: str | None = None
    deduplication_id: str | None = None
    delay_seconds: int = 0

    @property
    def size(self) -> int:
        """The message's size as SQS counts it against its limit, in bytes.

        That is the UTF-8 body plus every attribute's name, data type and value.
        """
        return len(self.body.encode()) + attributes_size(self.attributes)

    def check_size(self, limit: int, *, what: str = "message") -> None:
        """Raise :class:`~sqs_rpc.PayloadTooLarge` when the message is over ``limit`` bytes."""
        size = self.size
        if size > limit:
            raise PayloadTooLarge(
                f"the {what} is {size:,} bytes (body plus attributes), over the limit of "
                f"{limit:,} bytes: send a smaller payload (or a reference to it, such as an S3 "
                "key), or raise max_message_bytes if the queue allows more",
                size=size,
                limit=limit,
            )

    def attribute(self, name: str) -> str | None:
        """The ``StringValue`` of attribute ``name``; None when absent or binary."""
        value = self.attributes.get(name)
        text = None if value is None else value.get("StringValue")
        return text if isinstance(text, str) else None

    def with_attributes(self, extra: MessageAttributes) -> OutgoingMessage:
        """This message with ``extra`` attributes added (replacing any of the same name)."""
        return dataclasses.replace(self, attributes={**self.attributes, **extra})

    def to_send_kwargs(self) -> SendKwargs:
        """boto3's ``SendMessage`` arguments, without ``QueueUrl``; no field left at default.

        A batch entry is the same plus an ``Id``.
        """
        kwargs: SendKwargs = {"MessageBody": self.body}
        if self.attributes:
            # Built by encode_attributes() and the wire module, in SQS's own form.
            attributes = cast("dict[str, MessageAttributeValueTypeDef]", dict(self.attributes))
            kwargs["MessageAttributes"] = attributes
        if self.group_id is not None:
            kwargs["MessageGroupId"] = self.group_id
        if self.deduplication_id is not None:
            kwargs["MessageDeduplicationId"] = self.deduplication_id
        if self.delay_seconds:
            kwargs["DelaySeconds"] = self.delay_seconds
        return kwargs

    @classmethod
    def from_send_kwargs(cls, kwargs: Mapping[str, Any]) -> OutgoingMessage:
        """The message of ``SendMessage`` arguments, as an idempotency store keeps a reply."""
        group_id = kwargs.get("MessageGroupId")
        deduplication_id = kwargs.get("MessageDeduplicationId")
        return cls(
            body=str(kwargs.get("MessageBody", "")),
            attributes=dict(kwargs.get("MessageAttributes") or {}),
            group_id=None if group_id is None else str(group_id),
            deduplication_id=None if deduplication_id is None else str(deduplication_id),
            delay_seconds=int(kwargs.get("DelaySeconds", 0)),
        )
