"""Large payloads in S3: the SQS extended client's pointer format, in both directions.

A message whose body goes to S3 keeps every attribute; its body becomes a pointer, exactly as
AWS's SQS extended clients (Java ``amazon-sqs-java-extended-client-lib``, Python
``amazon-sqs-extended-client``) write it, and it gains the ``ExtendedPayloadSize`` attribute
(Number: the body's size in UTF-8 bytes)::

    ["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]

Reading also accepts the older names (``SQSLargePayloadSize``,
``com.amazon.sqs.javamessaging.MessageS3Pointer``). ``docs/payloads.md`` is the prose form.

:class:`S3Offload` is the user's configuration; :class:`PayloadStore` applies it at the two
places messages are built and read: :meth:`PayloadStore.outgoing` (after encoding, where the
size is checked) and :meth:`PayloadStore.load` (before decoding). A store without a
configuration passes messages through and refuses pointers with a clear error.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from ._errors import ConfigurationError, S3PayloadError, SqsError, aws_errors
from ._wire import (
    EXTENDED_PAYLOAD_SIZE,
    LEGACY_EXTENDED_PAYLOAD_SIZE,
    MAX_MESSAGE_ATTRIBUTES,
    MAX_MESSAGE_BYTES,
    MAX_USER_ATTRIBUTES,
    RESERVED_ATTRIBUTES,
    check_message_size,
    message_size,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "DEFAULT_S3_PREFIX",
    "LEGACY_POINTER_CLASS",
    "POINTER_CLASS",
    "PayloadStore",
    "S3Offload",
    "S3Pointer",
]

logger = logging.getLogger(__name__)

POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
LEGACY_POINTER_CLASS = "com.amazon.sqs.javamessaging.MessageS3Pointer"
DEFAULT_S3_PREFIX = "sqs-rpc/"
# The extended clients' own rules for a key prefix: a key is at most 1,024 bytes, and the
# 36-character UUID after the prefix must fit.
_PREFIX = re.compile(r"[A-Za-z0-9./_-]{0,988}")
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
        prefix: object keys are this prefix followed by a UUID, such as
            ``sqs-rpc/2f1c...``; letters, digits and ``./_-`` only.
        allowed_buckets: further buckets this side reads pointers from. A pointer to any other
            bucket is never read (:class:`S3PayloadError`).
        threshold: ``None`` (default): offload a message only when it would exceed the
            sender's ``max_message_bytes``; an int: offload messages over this many bytes
            (body plus attributes); ``"always"``: offload every message.
    """

    bucket: str
    s3_client: S3Client | None = field(default=None, repr=False, compare=False)
    prefix: str = DEFAULT_S3_PREFIX
    allowed_buckets: Collection[str] = ()
    threshold: Threshold = None

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
                f"prefix={self.prefix!r} must be at most 988 characters of letters, digits "
                "and ./_- (the extended clients' rule), such as 'sqs-rpc/'"
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


@dataclass(frozen=True)
class S3Pointer:
    """Where an offloaded body is: the extended clients' ``PayloadS3Pointer``."""

    bucket: str
    key: str

    def to_body(self) -> str:
        # Compact, as Jackson (the Java library) writes it.
        document = [POINTER_CLASS, {"s3BucketName": self.bucket, "s3Key": self.key}]
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_body(cls, body: object) -> S3Pointer:
        try:
            document = json.loads(body) if isinstance(body, str) else None
        except (ValueError, RecursionError):
            document = None
        if (
            isinstance(document, list)
            and len(document) == 2
            and document[0] in (POINTER_CLASS, LEGACY_POINTER_CLASS)
            and isinstance(document[1], dict)
            and isinstance(bucket := document[1].get("s3BucketName"), str)
            and isinstance(key := document[1].get("s3Key"), str)
            and bucket
            and key
        ):
            return cls(bucket, key)
        raise S3PayloadError(
            f"the message has the {EXTENDED_PAYLOAD_SIZE} attribute but its body is not an S3 "
            f'pointer (["{POINTER_CLASS}",{{"s3BucketName":...,"s3Key":...}}]): '
            f"{str(body)[:200]!r}"
        )


def _size_attribute(message: Mapping[str, Any]) -> str | None:
    attributes = message.get("MessageAttributes") or {}
    for name in (EXTENDED_PAYLOAD_SIZE, LEGACY_EXTENDED_PAYLOAD_SIZE):
        if name in attributes:
            return name
    return None


class PayloadStore:
    """Applies an :class:`S3Offload` (or none) to outgoing and incoming messages."""

    def __init__(
        self,
        config: S3Offload | None,
        *,
        session: boto3.session.Session | None = None,
        region_name: str | None = None,
    ) -> None:
        if config is not None and not isinstance(config, S3Offload):
            raise ConfigurationError(f"offload={config!r} must be an sqs_rpc.S3Offload or None")
        self.config = config
        self._s3_client: S3Client | None = config.s3_client if config is not None else None
        self._build: Callable[[], S3Client] | None = None
        if config is not None and config.s3_client is None:
            # Built now, so that a configuration error shows at construction, not at the
            # first large message.
            self._build = functools.partial(_make_s3_client, session, region_name)
            self._s3_client = self._build()
        self._pid = os.getpid()

    @property
    def enabled(self) -> bool:
        return self.config is not None

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
        self, arguments: dict[str, Any], limit: int, *, what: str, upload: bool = True
    ) -> dict[str, Any]:
        """Return ``arguments`` ready to send within ``limit``: as they are, or via S3.

        Raises :class:`~sqs_rpc.PayloadTooLarge` when even the pointer message is over the
        limit (checked before anything is uploaded), and :class:`~sqs_rpc.SqsError` when S3
        refuses the upload. With ``upload=False`` only the checks run.
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
        pointer = S3Pointer(config.bucket, f"{config.prefix}{uuid.uuid4()}")
        size = {"DataType": "Number", "StringValue": str(len(data))}
        offloaded = {
            **arguments,
            "MessageBody": pointer.to_body(),
            "MessageAttributes": {**attributes, EXTENDED_PAYLOAD_SIZE: size},
        }
        check_message_size(offloaded, limit, what=f"{what} (its body in S3)")
        if upload:
            with aws_errors("PutObject", f"s3://{pointer.bucket}/{pointer.key}"):
                self._s3().put_object(Bucket=pointer.bucket, Key=pointer.key, Body=data)
            logger.debug("%s body of %d bytes stored at %s", what, len(data), pointer.key)
        return offloaded

    # -- receiving ---------------------------------------------------------------------------

    def load(self, message: Mapping[str, Any]) -> tuple[Mapping[str, Any], S3Pointer | None]:
        """Return ``message`` with its body read from S3 when it is a pointer, and the pointer.

        Raises :class:`S3PayloadError` (a :class:`~sqs_rpc.DecodeError`) when the pointer
        cannot be followed for good, and :class:`~sqs_rpc.SqsError` when S3 fails otherwise
        (retrying may help).
        """
        name = _size_attribute(message)
        if name is None:
            return message, None
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
        try:
            with aws_errors("GetObject", f"s3://{pointer.bucket}/{pointer.key}"):
                data = self._s3().get_object(Bucket=pointer.bucket, Key=pointer.key)["Body"].read()
        except SqsError as exc:
            if exc.code not in _GONE:
                raise
            raise S3PayloadError(
                f"the message's body s3://{pointer.bucket}/{pointer.key} does not exist "
                f"({exc.code}): it was already consumed (a duplicate delivery), or removed by "
                "a lifecycle rule before the message was read (make the rule's expiry longer "
                "than the queue's retention period)",
                bucket=pointer.bucket,
                key=pointer.key,
            ) from exc
        try:
            body = data.decode()
        except UnicodeDecodeError as exc:
            raise S3PayloadError(
                f"s3://{pointer.bucket}/{pointer.key} is not UTF-8 text: {exc}",
                bucket=pointer.bucket,
                key=pointer.key,
            ) from exc
        attributes = {k: v for k, v in message["MessageAttributes"].items() if k != name}
        return {**message, "Body": body, "MessageAttributes": attributes}, pointer

    def pointer_of(self, message: Mapping[str, Any]) -> S3Pointer | None:
        """The readable pointer in ``message``, if any; never raises (for clean-up only)."""
        if self.config is None or _size_attribute(message) is None:
            return None
        try:
            pointer = S3Pointer.from_body(message.get("Body"))
        except S3PayloadError:
            return None
        return pointer if pointer.bucket in self.config.readable_buckets else None

    def discard(self, pointer: S3Pointer) -> bool:
        """Delete a consumed payload; on failure log and return False (never raises).

        Its message was handled already: a failure here leaves an orphan object for the
        bucket's lifecycle rule, and loses nothing.
        """
        try:
            with aws_errors("DeleteObject", f"s3://{pointer.bucket}/{pointer.key}"):
                self._s3().delete_object(Bucket=pointer.bucket, Key=pointer.key)
        except SqsError as exc:
            logger.warning(
                "could not delete consumed payload s3://%s/%s (%s); the bucket's lifecycle "
                "rule will remove it",
                pointer.bucket,
                pointer.key,
                exc,
            )
            return False
        logger.debug("deleted consumed payload s3://%s/%s", pointer.bucket, pointer.key)
        return True


def _make_s3_client(session: boto3.session.Session | None, region_name: str | None) -> S3Client:
    config = Config(
        max_pool_connections=50,
        connect_timeout=10.0,
        read_timeout=60.0,
        retries={"mode": "standard", "max_attempts": 5},
    )
    factory: Any = session if session is not None else boto3.session.Session()
    try:
        client: S3Client = factory.client("s3", region_name=region_name, config=config)
    except BotoCoreError as exc:
        raise ConfigurationError(
            f"cannot build an S3 client for the offload ({exc}); pass "
            "S3Offload(s3_client=boto3.client('s3', region_name=...))"
        ) from exc
    return client
