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

:class:`S3Offload` is the user's configuration; ``_payload_store.py`` applies it where
messages are built and read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ._attributes import (
    MAX_MESSAGE_BYTES,
)
from ._errors import ConfigurationError
from ._s3_pointer import (
    LEGACY_POINTER_CLASS,
    MAX_FOREIGN_PREFIX_LENGTH,
    MAX_PREFIX_LENGTH,
    POINTER_CLASS,
    Offloaded,
    S3Pointer,
    object_key,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_S3_PREFIX",
    "LEGACY_POINTER_CLASS",
    "POINTER_CLASS",
    "Offloaded",
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
