"""S3 pointers: the extended clients' format, sqs-rpc's key layout, and the checks on both.

A pointer is the body of a message whose real body is in S3 (``_offload.py``)::

    ["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]

Whoever can send to a queue writes its pointers, so before S3 is asked anything a receiver
checks that the key is one a peer wrote for *this* message: sqs-rpc's own layout
``PREFIX + "requests/" | "replies/" + BINDING + "/" + UUID``, where the folder is the direction
and BINDING a digest of the message's ``CorrelationId``; or an AWS extended client's
``PREFIX + UUID`` under a prefix the user allowed. And that the declared size
(``ExtendedPayloadSize``) is whole bytes within the receiver's cap.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._attributes import EXTENDED_PAYLOAD_SIZE, LEGACY_EXTENDED_PAYLOAD_SIZE
from ._errors import S3PayloadError

__all__ = [
    "LEGACY_POINTER_CLASS",
    "MAX_FOREIGN_PREFIX_LENGTH",
    "MAX_PREFIX_LENGTH",
    "POINTER_CLASS",
    "Kind",
    "Offloaded",
    "S3Pointer",
    "check_key",
    "declared_size",
    "object_key",
    "size_attribute",
]

POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
LEGACY_POINTER_CLASS = "com.amazon.sqs.javamessaging.MessageS3Pointer"

Kind = Literal["request", "reply"]
# Each direction writes into its own folder, so that a server never reads a reply's object as
# a request, nor a client a request's as a reply.
_FOLDERS: dict[Kind, str] = {"request": "requests/", "reply": "replies/"}
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# PREFIX FOLDER BINDING/UUID: the folder is the one right before the binding (the prefix may
# contain "requests/" too), the binding 16 hex digits of the correlation id's digest.
_OWN_KEY = re.compile(
    rf"[A-Za-z0-9./_-]*?(?P<folder>requests/|replies/)(?P<binding>[0-9a-f]{{16}})/{_UUID}"
)
# The extended clients' rule: a key prefix is at most 988 characters (a key is at most 1,024
# bytes, with a 36-character UUID after the prefix). sqs-rpc's own keys put a folder (9) and a
# binding (17) between the two.
MAX_FOREIGN_PREFIX_LENGTH = 988
MAX_PREFIX_LENGTH = MAX_FOREIGN_PREFIX_LENGTH - len("requests/") - 17
_DIGITS = re.compile(r"[0-9]{1,19}")


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


@dataclass(frozen=True)
class Offloaded:
    """A pointer that passed the checks for its message, with the size its object must have."""

    pointer: S3Pointer
    size: int  # the message's ExtendedPayloadSize: the object holds exactly this many bytes
    attribute: str  # the size attribute's name, removed from the message once the body is read

    @property
    def where(self) -> str:
        return f"s3://{self.pointer.bucket}/{self.pointer.key}"


def size_attribute(message: Mapping[str, Any]) -> str | None:
    """The name of the attribute that marks ``message``'s body as in S3, if any."""
    attributes = message.get("MessageAttributes") or {}
    for name in (EXTENDED_PAYLOAD_SIZE, LEGACY_EXTENDED_PAYLOAD_SIZE):
        if name in attributes:
            return name
    return None


def _binding(correlation_id: str | None) -> str:
    """16 hex digits that tie an object's key to its message's correlation id."""
    data = (correlation_id or "").encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=8, person=b"sqs-rpc-s3-key").hexdigest()


def object_key(prefix: str, kind: Kind, correlation_id: str | None) -> str:
    """The key sqs-rpc stores a request's or a reply's body under, bound to its message.

    ``PREFIX`` + ``requests/`` or ``replies/`` + a digest of the correlation id + ``/UUID``.
    """
    return f"{prefix}{_FOLDERS[kind]}{_binding(correlation_id)}/{uuid.uuid4()}"


def check_key(
    pointer: S3Pointer,
    kind: Kind,
    correlation_id: str | None,
    extended_client_prefixes: Collection[str],
) -> None:
    """Raise :class:`S3PayloadError` unless ``pointer`` names an object written for this message.

    That is a key of sqs-rpc's layout in ``kind``'s folder, bound to ``correlation_id``; or
    one of ``extended_client_prefixes`` followed by a UUID.
    """
    # Anyone who can send to the queue writes the pointer: only an object a peer stored for
    # this very message may be read (and later deleted), never any other key in an allowed
    # bucket.
    key = pointer.key
    other = "reply" if kind == "request" else "request"
    own = _OWN_KEY.fullmatch(key)
    if own is not None and own["folder"] == _FOLDERS[kind]:
        if own["binding"] == _binding(correlation_id):
            return
        problem = (
            f"its key is bound to another correlation id than this {kind}'s "
            f"({correlation_id!r}): a pointer copied from another message"
        )
    elif own is not None:
        problem = (
            f"its key is in {own['folder']!r}, where a {other}'s body is stored, and a "
            f"{other}'s object is never read as a {kind}"
        )
    elif any(
        key.startswith(prefix) and re.fullmatch(_UUID, key[len(prefix) :])
        for prefix in extended_client_prefixes
    ):
        return
    else:
        problem = (
            f"its key is not one sqs-rpc writes for a {kind} (PREFIX{_FOLDERS[kind]}"
            "DIGEST/UUID) nor an extended client's key under extended_client_prefixes="
            f"{tuple(extended_client_prefixes)!r}. If an AWS SQS extended client sent it, "
            "add its key prefix to S3Offload(extended_client_prefixes=...) ('' for the "
            "Python client's bare UUID keys)"
        )
    raise S3PayloadError(
        f"the message's body is at s3://{pointer.bucket}/{pointer.key}, which is not an "
        f"object written for this {kind}: {problem}; not read, not deleted",
        bucket=pointer.bucket,
        key=pointer.key,
    )


def declared_size(message: Mapping[str, Any], name: str, pointer: S3Pointer, limit: int) -> int:
    """The body's size the ``name`` attribute declares; :class:`S3PayloadError` over ``limit``."""
    value = message["MessageAttributes"][name]
    text = value.get("StringValue") if isinstance(value, Mapping) else None
    if not isinstance(text, str) or not _DIGITS.fullmatch(text):
        raise S3PayloadError(
            f"the message's {name} attribute {text!r} is not the body's size in bytes; "
            f"s3://{pointer.bucket}/{pointer.key} not read",
            bucket=pointer.bucket,
            key=pointer.key,
        )
    size = int(text)
    if size > limit:
        raise S3PayloadError(
            f"the message's body in S3 (s3://{pointer.bucket}/{pointer.key}) is {size:,} "
            f"bytes, over this side's max_payload_bytes of {limit:,}; not read. Send less, or "
            "raise S3Offload(max_payload_bytes=...) on the receiving side",
            bucket=pointer.bucket,
            key=pointer.key,
        )
    return size
