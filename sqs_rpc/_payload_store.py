"""Applying an :class:`~sqs_rpc.S3Offload` where messages are built and read.

:meth:`PayloadStore.outgoing` runs after encoding, where the size is checked;
:meth:`PayloadStore.pointer` checks a pointer without asking S3; :meth:`PayloadStore.read`
and :meth:`PayloadStore.load` run before decoding; :meth:`PayloadStore.discard` deletes a
consumed body. A store without a configuration passes messages through and refuses pointers
with a clear error. ``_offload.py`` has the configuration and the threat model.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from ._attributes import (
    CORRELATION_ID,
    EXTENDED_PAYLOAD_SIZE,
    MAX_MESSAGE_ATTRIBUTES,
    MAX_USER_ATTRIBUTES,
    RESERVED_ATTRIBUTES,
    within_attribute_budget,
)
from ._aws import RequestCounter, build_client, merge_config
from ._errors import ConfigurationError, PayloadTooLarge, S3PayloadError, SqsError, aws_errors
from ._offload import S3Offload
from ._outgoing import OutgoingMessage
from ._s3_pointer import (
    Kind,
    Offloaded,
    S3Pointer,
    check_key,
    declared_size,
    object_key,
    size_attribute,
)
from ._wire import correlation_id_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["PayloadStore"]

logger = logging.getLogger(__name__)

# Objects that no longer exist, or a bucket that does not: retrying will not bring them back.
_GONE = frozenset({"NoSuchKey", "NoSuchBucket", "404"})


class PayloadStore:
    """Applies an :class:`S3Offload` (or none) to outgoing and incoming messages."""

    def __init__(
        self,
        config: S3Offload | None,
        *,
        session: boto3.session.Session | None = None,
        region_name: str | None = None,
        botocore_config: Config | None = None,
    ) -> None:
        if config is not None and not isinstance(config, S3Offload):
            raise ConfigurationError(f"offload={config!r} must be an sqs_rpc.S3Offload or None")
        self.config = config
        self._s3_client: S3Client | None = config.s3_client if config is not None else None
        self._build: Callable[[], S3Client] | None = None
        if config is not None and config.s3_client is None:
            # Built now, so that a configuration error shows at construction, not at the
            # first large message.
            self._build = functools.partial(_make_s3_client, session, region_name, botocore_config)
            self._s3_client = self._build()
        self._pid = os.getpid()

    def watch(self, counter: RequestCounter) -> None:
        """Let ``counter`` count the S3 requests of this store's client (if any)."""
        if self._s3_client is not None:
            counter.watch(self._s3_client)

    def _s3(self) -> S3Client:
        # Built again in a forked child: a boto3 client's connections cannot be shared
        # across processes. An injected client is the caller's to manage.
        if self._build is not None and self._pid != os.getpid():
            self._s3_client = self._build()
            self._pid = os.getpid()
        assert self._s3_client is not None
        return self._s3_client

    # -- sending -----------------------------------------------------------------------------

    def outgoing(
        self, message: OutgoingMessage, limit: int, *, what: Kind, upload: bool = True
    ) -> OutgoingMessage:
        """Return ``message`` ready to send within ``limit``: as it is, or via S3.

        Raises :class:`~sqs_rpc.PayloadTooLarge` when even the pointer message is over the
        limit, or the body over ``max_payload_bytes`` (checked before anything is uploaded),
        and :class:`~sqs_rpc.SqsError` when S3 refuses the upload. With ``upload=False`` only
        the checks run. The key is bound to the message's ``CorrelationId`` (:func:`object_key`).
        """
        config = self.config
        if config is None:
            message.check_size(limit, what=what)
            return message
        attributes = message.attributes
        own = [name for name in attributes if name not in RESERVED_ATTRIBUTES]
        if len(own) > MAX_USER_ATTRIBUTES - 1:
            # Checked on every message, not only on offloaded ones, so that a caller learns
            # it from the first small message rather than the first large one.
            raise ConfigurationError(
                f"{len(own)} message attributes of your own; with S3 offload at most "
                f"{MAX_USER_ATTRIBUTES - 1} (the {EXTENDED_PAYLOAD_SIZE} attribute takes one "
                f"of SQS's {MAX_MESSAGE_ATTRIBUTES}): put further data in the payload"
            )
        if config.threshold == "always":
            offload = True
        else:
            threshold = limit if config.threshold is None else min(config.threshold, limit)
            offload = message.size > threshold
        if not offload:
            message.check_size(limit, what=what)
            return message
        data = message.body.encode()
        if len(data) > config.max_payload_bytes:
            raise PayloadTooLarge(
                f"the {what}'s body is {len(data):,} bytes, over S3Offload's "
                f"max_payload_bytes of {config.max_payload_bytes:,} (the receiving side "
                "refuses larger ones): send less, or raise max_payload_bytes on both sides",
                size=len(data),
                limit=config.max_payload_bytes,
            )
        correlation_id = message.attribute(CORRELATION_ID)
        pointer = S3Pointer(config.bucket, object_key(config.prefix, what, correlation_id))
        size = {"DataType": "Number", "StringValue": str(len(data))}
        offloaded = dataclasses.replace(
            message,
            body=pointer.to_body(),
            # With 2 attributes of the caller's own and a tracestate, one over SQS's 10.
            attributes=within_attribute_budget({**attributes, EXTENDED_PAYLOAD_SIZE: size}),
        )
        offloaded.check_size(limit, what=f"{what} (its body in S3)")
        if upload:
            with aws_errors("PutObject", f"s3://{pointer.bucket}/{pointer.key}"):
                self._s3().put_object(Bucket=pointer.bucket, Key=pointer.key, Body=data)
            logger.debug("%s body of %d bytes stored at %s", what, len(data), pointer.key)
        return offloaded

    # -- receiving ---------------------------------------------------------------------------

    def pointer(self, message: Mapping[str, Any], *, kind: Kind) -> Offloaded | None:
        """The checked pointer in ``message`` (a ``kind`` received), or None if it has none.

        No S3 request is made. Raises :class:`S3PayloadError` when the pointer may not be
        followed: malformed, this side has no offload, a bucket off the allowlist, a key that
        is not the object a peer wrote for this message, or a size over
        ``max_payload_bytes``.
        """
        name = size_attribute(message)
        if name is None:
            return None
        pointer = S3Pointer.from_body(message.get("Body"))
        config = self.config
        if config is None:
            raise S3PayloadError(
                f"the message's body is in S3 (s3://{pointer.bucket}/{pointer.key}, the SQS "
                "extended client format) and this side has no S3 offload: pass "
                f"offload=S3Offload(bucket=..., allowed_buckets=({pointer.bucket!r},))",
                bucket=pointer.bucket,
                key=pointer.key,
            )
        if pointer.bucket not in config.readable_buckets:
            raise S3PayloadError(
                f"the message's body is in bucket {pointer.bucket!r}, which is not on this "
                f"side's allowlist ({', '.join(sorted(config.readable_buckets))}); not read. "
                "If the bucket is trusted, add it to S3Offload(allowed_buckets=...)",
                bucket=pointer.bucket,
                key=pointer.key,
            )
        check_key(pointer, kind, correlation_id_of(message), config.extended_client_prefixes)
        size = declared_size(message, name, pointer, config.max_payload_bytes)
        return Offloaded(pointer, size, name)

    def read(self, offloaded: Offloaded) -> str:
        """The body ``offloaded`` points to: exactly its declared size, read no further.

        Raises :class:`S3PayloadError` when the object is gone, has another size, or is not
        UTF-8, and :class:`~sqs_rpc.SqsError` when S3 fails otherwise (retrying may help).
        """
        pointer, size = offloaded.pointer, offloaded.size
        try:
            with aws_errors("GetObject", offloaded.where):
                response = self._s3().get_object(Bucket=pointer.bucket, Key=pointer.key)
        except SqsError as exc:
            if exc.code not in _GONE:
                raise
            raise S3PayloadError(
                f"the message's body {offloaded.where} does not exist "
                f"({exc.code}): it was already consumed (a duplicate delivery), or removed by "
                "a lifecycle rule before the message was read (make the rule's expiry longer "
                "than the queue's retention period)",
                bucket=pointer.bucket,
                key=pointer.key,
            ) from exc
        stream = response["Body"]
        try:
            length = response.get("ContentLength")
            data = b""
            if length == size:
                # One byte more than declared: an object that grew shows, and no more is read.
                with aws_errors("GetObject", offloaded.where):
                    data = stream.read(size + 1)
        finally:
            stream.close()
        if length != size or len(data) != size:
            raise S3PayloadError(
                f"{offloaded.where} holds {length if length != size else len(data)} bytes but "
                f"the message's {offloaded.attribute} says {size:,}: not the object written "
                "for this message; not read, not deleted",
                bucket=pointer.bucket,
                key=pointer.key,
            )
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise S3PayloadError(
                f"{offloaded.where} is not UTF-8 text: {exc}",
                bucket=pointer.bucket,
                key=pointer.key,
            ) from exc

    def load(
        self, message: Mapping[str, Any], *, kind: Kind
    ) -> tuple[Mapping[str, Any], Offloaded | None]:
        """Return ``message`` with its body read from S3 when it is a pointer, and the pointer.

        :meth:`pointer`'s checks, then :meth:`read`; their errors.
        """
        offloaded = self.pointer(message, kind=kind)
        if offloaded is None:
            return message, None
        body = self.read(offloaded)
        attributes = {
            k: v for k, v in message["MessageAttributes"].items() if k != offloaded.attribute
        }
        return {**message, "Body": body, "MessageAttributes": attributes}, offloaded

    def discard(self, offloaded: Offloaded, *, unread: bool = False) -> bool:
        """Delete a consumed payload; on failure log and return False (never raises).

        Its message was handled already: a failure here leaves an orphan object for the
        bucket's lifecycle rule, and loses nothing. With ``unread=True`` (a request dropped
        unread, such as an expired one) the object is deleted only if it has the pointer's
        size: nothing is deleted that was not checked.
        """
        pointer = offloaded.pointer
        try:
            if unread:
                with aws_errors("HeadObject", offloaded.where):
                    head = self._s3().head_object(Bucket=pointer.bucket, Key=pointer.key)
                if head.get("ContentLength") != offloaded.size:
                    logger.warning(
                        "not deleting %s: it holds %s bytes, its pointer said %d",
                        offloaded.where,
                        head.get("ContentLength"),
                        offloaded.size,
                    )
                    return False
            with aws_errors("DeleteObject", offloaded.where):
                self._s3().delete_object(Bucket=pointer.bucket, Key=pointer.key)
        except SqsError as exc:
            logger.warning(
                "could not delete consumed payload %s (%s); the bucket's lifecycle "
                "rule will remove it",
                offloaded.where,
                exc,
            )
            return False
        logger.debug("deleted consumed payload %s", offloaded.where)
        return True


def _make_s3_client(
    session: boto3.session.Session | None,
    region_name: str | None,
    botocore_config: Config | None = None,
) -> S3Client:
    # The user's options win, as for SQS (_aws.merge_config); S3 never long-polls.
    config = Config(
        max_pool_connections=50,
        connect_timeout=10.0,
        read_timeout=60.0,
        retries={"mode": "standard", "max_attempts": 5},
    )
    config = merge_config(config, botocore_config, long_poll_seconds=0)
    try:
        client: S3Client = build_client("s3", session, region_name=region_name, config=config)
    except BotoCoreError as exc:
        raise ConfigurationError(
            f"cannot build an S3 client for the offload ({exc}); pass "
            "S3Offload(s3_client=boto3.client('s3', region_name=...))"
        ) from exc
    return client
