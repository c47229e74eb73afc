"""DynamoDBIdempotencyStore: one table that every server of a queue claims requests in.

One item per request, keyed by the request's digest (``id`` by default)::

    id          S   the key (64 hex characters)
    status      S   IN_PROGRESS while a server runs it, COMPLETED once it answered
    expiration  N   epoch seconds after which the item counts as absent: the claim's lease
                    for IN_PROGRESS, the reply's time to live for COMPLETED. Also the table's
                    TTL attribute, so DynamoDB deletes old items, within days. Every read
                    compares it with the clock, so a late delete changes nothing.
    reply       S   COMPLETED only: the reply's SendMessage arguments as JSON (absent for a
                    one-way request, or a reply over MAX_REPLY_BYTES: DynamoDB keeps 400 KB)
    owner       S   IN_PROGRESS only: the claiming store, so that release() drops only its own

``begin`` is one conditional ``PutItem`` (only if no item, or an expired one). It returns the
item it found when the condition fails. ``complete`` is one ``PutItem``, and ``release`` one
conditional ``DeleteItem``. A server needs ``dynamodb:PutItem`` and ``dynamodb:DeleteItem``
on the table, nothing else. ``docs/server.md`` shows the table's creation.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time
import uuid
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sqs_rpc._aws import build_client
from sqs_rpc._errors import ConfigurationError, aws_errors
from sqs_rpc._options import DEFAULT_REPLY_CACHE_TTL, seconds

from .idempotency import IdempotencyState, StoredReply

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["MAX_REPLY_BYTES", "DynamoDBIdempotencyStore"]

logger = logging.getLogger(__name__)

# DynamoDB keeps items up to 400 KB; a larger reply is not kept (its request is still done).
MAX_REPLY_BYTES = 350_000
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"


class DynamoDBIdempotencyStore:
    """An :class:`~sqs_rpc.IdempotencyStore` in a DynamoDB table, shared by many servers.

    A request redelivered to any server is answered from the table instead of running again.
    A copy that arrives while another server runs it is left in the queue until that one is
    done. A crashed server's claim expires after its lease (the poller's visibility extension
    bound), and the request then runs elsewhere.

    Example::

        store = DynamoDBIdempotencyStore("sqs-rpc-idempotency", region_name="eu-west-1")
        MessagePoller(queue_url, handler, idempotency_store=store)

    The table: partition key ``id`` (string), TTL on ``expiration``, on-demand capacity
    (``docs/server.md`` has the commands and the IAM policy).

    Args:
        table_name: the table.
        ttl: seconds a finished request's reply is kept to answer redeliveries; at least as
            long as a request may come back (its callers' timeouts, its retention period if
            deletes may fail).
        dynamodb_client: a ready boto3 DynamoDB client. Otherwise one is built from
            ``session`` (or the default session), ``endpoint_url`` and ``region_name``.
        key_attribute: the table's partition key (a string attribute).
        ttl_attribute: the attribute the table's TTL setting names (epoch seconds).
    """

    def __init__(
        self,
        table_name: str,
        *,
        ttl: float = DEFAULT_REPLY_CACHE_TTL,
        dynamodb_client: DynamoDBClient | None = None,
        session: boto3.session.Session | None = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        key_attribute: str = "id",
        ttl_attribute: str = "expiration",
    ) -> None:
        if not isinstance(table_name, str) or not table_name:
            raise ConfigurationError(f"table_name {table_name!r} must be a DynamoDB table name")
        for name, value in (("key_attribute", key_attribute), ("ttl_attribute", ttl_attribute)):
            if not isinstance(value, str) or not value or value in {"status", "reply", "owner"}:
                raise ConfigurationError(
                    f"{name}={value!r} must be an attribute name other than status, reply "
                    "and owner (the store's own)"
                )
        if key_attribute == ttl_attribute:
            raise ConfigurationError("key_attribute and ttl_attribute must differ")
        self.table_name = table_name
        self.ttl = seconds(ttl, "ttl", low=1, high=366 * 86400, rule="seconds from 1 to a year")
        self._key = key_attribute
        self._expiry = ttl_attribute
        self._owner = uuid.uuid4().hex  # this store's claims, for release()
        self._client = _client(dynamodb_client, session, endpoint_url, region_name)

    def __repr__(self) -> str:
        return f"DynamoDBIdempotencyStore({self.table_name!r}, ttl={self.ttl:g})"

    def begin(self, key: str, lease: float) -> tuple[IdempotencyState, StoredReply]:
        """Claim ``key`` for ``lease`` seconds unless a live item holds it."""
        now = time.time()
        item = {
            self._key: {"S": key},
            "status": {"S": IN_PROGRESS},
            self._expiry: {"N": str(math.ceil(now + lease))},
            "owner": {"S": self._owner},
        }
        with aws_errors("PutItem", f"table {self.table_name}"):
            try:
                self._client.put_item(
                    TableName=self.table_name,
                    Item=item,
                    # Absent, or expired: a crashed server's claim, or a reply past its TTL
                    # that DynamoDB has not deleted yet.
                    ConditionExpression="attribute_not_exists(#k) OR #e < :now",
                    ExpressionAttributeNames={"#k": self._key, "#e": self._expiry},
                    ExpressionAttributeValues={":now": {"N": str(math.floor(now))}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                found: Any = exc.response.get("Item") or {}  # the item that holds the key
                return self._found(found)
        return "new", None

    def complete(self, key: str, reply: StoredReply) -> None:
        """Mark ``key`` done, with ``reply``, for ``ttl`` seconds."""
        item = {
            self._key: {"S": key},
            "status": {"S": COMPLETED},
            self._expiry: {"N": str(math.ceil(time.time() + self.ttl))},
        }
        if reply is not None:
            text = _encode(reply)
            if len(text.encode()) <= MAX_REPLY_BYTES:
                item["reply"] = {"S": text}
            else:
                # Still done: a redelivery is deleted unrun, though not answered again.
                logger.info("reply for %s is over %d bytes; not kept", key, MAX_REPLY_BYTES)
        with aws_errors("PutItem", f"table {self.table_name}"):
            self._client.put_item(TableName=self.table_name, Item=item)

    def release(self, key: str) -> None:
        """Drop this store's claim on ``key``; anything else there (done, or another's) stays."""
        with aws_errors("DeleteItem", f"table {self.table_name}"):
            try:
                self._client.delete_item(
                    TableName=self.table_name,
                    Key={self._key: {"S": key}},
                    ConditionExpression="#s = :in_progress AND #o = :owner",
                    ExpressionAttributeNames={"#s": "status", "#o": "owner"},
                    ExpressionAttributeValues={
                        ":in_progress": {"S": IN_PROGRESS},
                        ":owner": {"S": self._owner},
                    },
                )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise

    def _found(self, item: dict[str, Any]) -> tuple[IdempotencyState, StoredReply]:
        if item.get("status", {}).get("S") != COMPLETED:
            return "in_progress", None
        text = item.get("reply", {}).get("S")
        if text is None:
            return "done", None
        try:
            return "done", _decode(text)
        except ValueError:  # not written by this store: done, but nothing to send again
            logger.warning("the reply stored in %s is not valid JSON; not resent", self.table_name)
            return "done", None


def _client(
    client: DynamoDBClient | None,
    session: boto3.session.Session | None,
    endpoint_url: str | None,
    region_name: str | None,
) -> DynamoDBClient:
    if client is not None:
        if session is not None or endpoint_url is not None or region_name is not None:
            raise ConfigurationError(
                "pass either dynamodb_client= or session=/endpoint_url=/region_name=, not both"
            )
        return client
    try:
        built: DynamoDBClient = build_client(
            "dynamodb",
            session,
            endpoint_url=endpoint_url,
            region_name=region_name,
            # Every worker thread of a server may claim at once.
            config=Config(max_pool_connections=50, retries={"mode": "standard", "max_attempts": 5}),
        )
    except BotoCoreError as exc:
        raise ConfigurationError(
            f"cannot build a DynamoDB client ({exc}); pass region_name= (or set "
            "AWS_DEFAULT_REGION), or pass a ready dynamodb_client="
        ) from exc
    return built


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _encode(reply: dict[str, Any]) -> str:
    """A reply's SendMessage arguments as JSON; bytes (binary attributes) as base64."""

    def default(value: object) -> object:
        if isinstance(value, bytes | bytearray):
            return {"$base64": base64.b64encode(value).decode("ascii")}
        raise TypeError(f"cannot store {type(value).__name__} in a reply")

    return json.dumps(reply, default=default, separators=(",", ":"))


def _decode(text: str) -> dict[str, Any]:
    def hook(value: dict[str, Any]) -> object:
        if set(value) == {"$base64"}:
            return base64.b64decode(value["$base64"])
        return value

    decoded: dict[str, Any] = json.loads(text, object_hook=hook)
    return decoded
