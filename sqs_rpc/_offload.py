"""Large payloads in S3: the SQS extended client's pointer format, in both directions.

A message whose body goes to S3 keeps every attribute; its body becomes a pointer, exactly as
AWS's SQS extended clients (Java ``amazon-sqs-java-extended-client-lib``, Python
``amazon-sqs-extended-client``) write it, and it gains the ``ExtendedPayloadSize`` attribute
(Number: the body's size in UTF-8 bytes)::

    ["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]

Reading also accepts the older names (``SQSLargePayloadSize``,
``com.amazon.sqs.javamessaging.MessageS3Pointer``). ``docs/payloads.md`` is the prose form.

Whoever can send to a queue writes its pointers, so a pointer is checked before S3 is asked
anything: its bucket is on the allowlist; its key is one a peer wrote for *this* message and
its size within ``max_payload_bytes`` (``_s3_pointer.py`` has the key layout and those
checks). The object's size must then equal the pointer's, and the read stops there. Only an
object read (or, unread, found with that size) is ever deleted.

:class:`S3Offload` is the user's configuration; :class:`PayloadStore` applies it at the
places messages are built and read: :meth:`PayloadStore.outgoing` (after encoding, where the
size is checked), :meth:`PayloadStore.pointer` (the checks, no S3 request),
:meth:`PayloadStore.read` and :meth:`PayloadStore.load` (before decoding). A store without a
configuration passes messages through and refuses pointers with a clear error.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from ._aws import RequestCounter, merge_config
from ._errors import ConfigurationError, PayloadTooLarge, S3PayloadError, SqsError, aws_errors
from ._s3_pointer import (
    LEGACY_POINTER_CLASS,
    MAX_FOREIGN_PREFIX_LENGTH,
    MAX_PREFIX_LENGTH,
    POINTER_CLASS,
    Kind,
    Offloaded,
    S3Pointer,
    check_key,
    declared_size,
    object_key,
    size_attribute,
)
from ._wire import (
    CORRELATION_ID,
    EXTENDED_PAYLOAD_SIZE,
    MAX_MESSAGE_ATTRIBUTES,
    MAX_MESSAGE_BYTES,
    MAX_USER_ATTRIBUTES,
    RESERVED_ATTRIBUTES,
    check_message_size,
    correlation_id_of,
    message_size,
    within_attribute_budget,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_S3_PREFIX",
    "LEGACY_POINTER_CLASS",
    "POINTER_CLASS",
    "Offloaded",
    "PayloadStore",
    "S3Offload",
    "S3Pointer",
    "object_key",
]

logger = logging.getLogger(__name__)

DEFAULT_S3_PREFIX = "sqs-rpc/"
# Bodies are held in memory whole: a pointer to anything larger is refused unread.
DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
_MAX_PAYLOAD_BYTES_LIMIT = 5 * 1024**3  # S3's largest single PutObject
_PREFIX = re.compile(rf"[A-Za-z0-9./_-]{{0,{MAX_PREFIX_LENGTH}}}")
_FOREIGN_PREFIX = re.compile(rf"[A-Za-z0-9./_-]{{0,{MAX_FOREIGN_PREFIX_LENGTH}}}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# Objects that no longer exist, or a bucket that does not: retrying will not bring them back.
_GONE = frozenset({"NoSuchKey", "NoSuchBucket", "404"})

Threshold = int | Literal["always"] | None


@dataclass(frozen=True)
class S3Offload:
    """Send message bodies larger than SQS allows through S3, in the SQS extended client format.

    Give the same (or a compatible) configuration to the clients and the servers of a queue;
    either side may also be an AWS SQS extended client. Needs ``sqs-rpc[s3]`` (boto3's S3).

    Example::

        offload = S3Offload(bucket="my-payloads", allowed_buckets=("their-payloads",))
        client = RpcClient(offload=offload)
        poller = MessagePoller(queue_url, handler, offload=offload)

    Attributes:
        bucket: where this side writes payloads; always readable too.
        s3_client: a ready boto3 S3 client. Without it, one is built from the ``session`` and
            ``region_name`` given to the client or poller (not its ``endpoint_url``: pass an
            S3 client for a local endpoint).
        prefix: object keys start with this prefix, then ``requests/`` or ``replies/``, a
            digest of the message's correlation id and a UUID, such as
            ``sqs-rpc/requests/9f2c51d07a3e44b1/2f1c...``; letters, digits and ``./_-``
            only, at most 962 characters.
        allowed_buckets: further buckets this side reads pointers from. A pointer to any other
            bucket is never read (:class:`S3PayloadError`).
        threshold: ``None`` (default): offload a message only when it would exceed the
            sender's ``max_message_bytes``; an int: offload messages over this many bytes
            (body plus attributes); ``"always"``: offload every message.
        max_payload_bytes: the largest body this side reads from S3 or writes to it, in bytes
            (default 64 MiB, ``DEFAULT_MAX_PAYLOAD_BYTES``; at most 5 GiB). A pointer to a
            larger body is refused before S3 is asked for it; a larger outgoing body raises
            :class:`~sqs_rpc.PayloadTooLarge`.
        extended_client_prefixes: key prefixes under which AWS SQS extended-client peers
            write (``""`` for the Python client's bare ``str(uuid4())`` keys, the Java
            client's ``s3KeyPrefix`` otherwise). By default (``()``) this side reads only
            keys an sqs-rpc peer wrote for the very message; a pointer whose key is one of
            these prefixes followed by a UUID is read too, without that binding.
    """

    bucket: str
    s3_client: S3Client | None = field(default=None, repr=False, compare=False)
    prefix: str = DEFAULT_S3_PREFIX
    allowed_buckets: Collection[str] = ()
    threshold: Threshold = None
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    extended_client_prefixes: Collection[str] = ()

    def __post_init__(self) -> None:
        _check_bucket(self.bucket, "bucket")
        if isinstance(self.allowed_buckets, str):
            raise ConfigurationError(
                f"allowed_buckets={self.allowed_buckets!r} is one string; pass a tuple of "
                "bucket names, such as allowed_buckets=('other-bucket',)"
            )
        allowed = tuple(dict.fromkeys(self.allowed_buckets))  # deduplicated, in order
        for name in allowed:
            _check_bucket(name, "allowed_buckets entry")
        object.__setattr__(self, "allowed_buckets", allowed)  # a tuple: hashable, immutable
        if not isinstance(self.prefix, str) or not _PREFIX.fullmatch(self.prefix):
            raise ConfigurationError(
                f"prefix={self.prefix!r} must be at most {MAX_PREFIX_LENGTH} characters of "
                "letters, digits and ./_- (S3's 1,024-byte keys, less the folder, digest and "
                "UUID sqs-rpc adds), such as 'sqs-rpc/'"
            )
        if isinstance(self.extended_client_prefixes, str):
            raise ConfigurationError(
                f"extended_client_prefixes={self.extended_client_prefixes!r} is one string; "
                "pass a tuple, such as extended_client_prefixes=('',) for the Python extended "
                "client's bare UUID keys"
            )
        foreign = tuple(dict.fromkeys(self.extended_client_prefixes))
        for prefix in foreign:
            if not isinstance(prefix, str) or not _FOREIGN_PREFIX.fullmatch(prefix):
                raise ConfigurationError(
                    f"extended_client_prefixes entry {prefix!r} must be at most "
                    f"{MAX_FOREIGN_PREFIX_LENGTH} characters of letters, digits and ./_- (the "
                    "extended clients' rule for a key prefix), or '' for keys that are a bare "
                    "UUID"
                )
        object.__setattr__(self, "extended_client_prefixes", foreign)
        limit = self.max_payload_bytes
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= _MAX_PAYLOAD_BYTES_LIMIT
        ):
            raise ConfigurationError(
                f"max_payload_bytes={limit!r} must be whole bytes from 1 to "
                f"{_MAX_PAYLOAD_BYTES_LIMIT:,} (S3's largest PutObject), such as the default "
                f"{DEFAULT_MAX_PAYLOAD_BYTES:,}"
            )
        threshold = self.threshold
        if (
            threshold is not None
            and threshold != "always"
            and (
                isinstance(threshold, bool)
                or not isinstance(threshold, int)
                or not 0 <= threshold <= MAX_MESSAGE_BYTES
            )
        ):
            raise ConfigurationError(
                f"threshold={threshold!r} must be None (offload what would exceed "
                f"max_message_bytes), 'always', or whole bytes from 0 to {MAX_MESSAGE_BYTES:,}"
            )
        client = self.s3_client
        if client is not None and not all(
            callable(getattr(client, name, None))
            for name in ("put_object", "get_object", "delete_object")
        ):
            raise ConfigurationError(
                f"s3_client {client!r} is not a boto3 S3 client; pass boto3.client('s3')"
            )

    @property
    def readable_buckets(self) -> frozenset[str]:
        """The buckets pointers may name: ``bucket`` and ``allowed_buckets``."""
        return frozenset((self.bucket, *self.allowed_buckets))


def _check_bucket(name: object, what: str) -> None:
    if not isinstance(name, str) or not _BUCKET.fullmatch(name):
        raise ConfigurationError(
            f"{what} {name!r} is not an S3 bucket name (3 to 63 lowercase letters, digits, "
            "dots and hyphens); pass the bucket's name, not its ARN or URL"
        )


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

    @property
    def enabled(self) -> bool:
        return self.config is not None

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
        self, arguments: dict[str, Any], limit: int, *, what: Kind, upload: bool = True
    ) -> dict[str, Any]:
        """Return ``arguments`` ready to send within ``limit``: as they are, or via S3.

        Raises :class:`~sqs_rpc.PayloadTooLarge` when even the pointer message is over the
        limit, or the body over ``max_payload_bytes`` (checked before anything is uploaded),
        and :class:`~sqs_rpc.SqsError` when S3 refuses the upload. With ``upload=False`` only
        the checks run. The key is bound to the message's ``CorrelationId`` (:func:`object_key`).
        """
        config = self.config
        if config is None:
            check_message_size(arguments, limit, what=what)
            return arguments
        attributes: dict[str, Any] = arguments.get("MessageAttributes", {})
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
            offload = message_size(arguments) > threshold
        if not offload:
            check_message_size(arguments, limit, what=what)
            return arguments
        data = str(arguments["MessageBody"]).encode()
        if len(data) > config.max_payload_bytes:
            raise PayloadTooLarge(
                f"the {what}'s body is {len(data):,} bytes, over S3Offload's "
                f"max_payload_bytes of {config.max_payload_bytes:,} (the receiving side "
                "refuses larger ones): send less, or raise max_payload_bytes on both sides",
                size=len(data),
                limit=config.max_payload_bytes,
            )
        correlation_id = attributes.get(CORRELATION_ID, {}).get("StringValue")
        pointer = S3Pointer(config.bucket, object_key(config.prefix, what, correlation_id))
        size = {"DataType": "Number", "StringValue": str(len(data))}
        offloaded = {
            **arguments,
            "MessageBody": pointer.to_body(),
            # With 2 attributes of the caller's own and a tracestate, one over SQS's 10.
            "MessageAttributes": within_attribute_budget(
                {**attributes, EXTENDED_PAYLOAD_SIZE: size}
            ),
        }
        check_message_size(offloaded, limit, what=f"{what} (its body in S3)")
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
    factory: Any = session if session is not None else boto3.session.Session()
    try:
        client: S3Client = factory.client("s3", region_name=region_name, config=config)
    except BotoCoreError as exc:
        raise ConfigurationError(
            f"cannot build an S3 client for the offload ({exc}); pass "
            "S3Offload(s3_client=boto3.client('s3', region_name=...))"
        ) from exc
    return client
