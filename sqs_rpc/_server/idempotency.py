"""Idempotency stores: run each request once, however often SQS delivers it, on any server.

SQS delivers at least once. A request comes back when its visibility timeout runs out (a
handler slower than it, a lost delete). Rarely, a second copy arrives anyway. Before a server
runs a request it *claims* it in the store (:meth:`IdempotencyStore.begin`). The claim says
one of three things:

- ``"new"``: run it.
- ``"in_progress"``: another worker or server runs it now. Leave this copy in the queue; it
  comes back.
- ``"done"``: send the stored reply again instead of running it twice.

A request that ran to an answer is :meth:`~IdempotencyStore.complete`. One that did not (a
one-way handler failed, ``Retry``) is :meth:`~IdempotencyStore.release`\\ d, so that its
redelivery runs.

:class:`InMemoryIdempotencyStore` is the default: one process's memory. A redelivery to
another server runs again. :class:`~sqs_rpc.DynamoDBIdempotencyStore` is shared by every
server of a queue. The design follows AWS Lambda Powertools' idempotency utility.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

from sqs_rpc._options import DEFAULT_REPLY_CACHE_BYTES, DEFAULT_REPLY_CACHE_TTL, seconds, whole
from sqs_rpc._outgoing import OutgoingMessage

from .reply_cache import ReplyCache

__all__ = [
    "Claim",
    "IdempotencyState",
    "IdempotencyStore",
    "InMemoryIdempotencyStore",
    "StoredReply",
    "request_key",
]

IdempotencyState = Literal["new", "in_progress", "done"]
"""What :meth:`IdempotencyStore.begin` found: run it, someone runs it, or it ran."""

StoredReply = dict[str, Any] | None
"""A finished request's reply as SQS ``SendMessage`` arguments (``MessageBody``,
``MessageAttributes``); None for a one-way request, or a reply the store could not keep."""


@runtime_checkable
class IdempotencyStore(Protocol):
    """Where servers record which requests run and which are done, with their replies.

    Keys are strings of at most 64 characters that the server computes from the request (its
    queue, reply queue, correlation id and body). Every method is called from worker threads
    concurrently, and must be safe for that. A method that cannot reach its backend raises
    :class:`~sqs_rpc.SqsError`: the request is then left in the queue for a later delivery.

    Example, a store of your own (Redis, a SQL table)::

        class RedisStore:
            def begin(self, key, lease): ...     # SET key IN_PROGRESS NX PX lease*1000
            def complete(self, key, reply): ...  # SET key DONE+reply PX ttl*1000
            def release(self, key): ...          # DEL key if still IN_PROGRESS

        MessagePoller(queue_url, handler, idempotency_store=RedisStore())
    """

    def begin(self, key: str, lease: float) -> tuple[IdempotencyState, StoredReply]:
        """Claim ``key`` for ``lease`` seconds if nobody holds it; say what was there.

        ``("new", None)``: claimed, the caller runs the request. ``("in_progress", None)``:
        held by a claim younger than its lease. ``("done", reply)``: finished, with its
        reply. A claim older than its lease (its server crashed) counts as absent.
        """
        ...

    def complete(self, key: str, reply: StoredReply) -> None:
        """The claimed request finished: keep ``reply`` for the store's time to live."""
        ...

    def release(self, key: str) -> None:
        """The claimed request did not finish: drop the claim, so a redelivery runs it."""
        ...


class InMemoryIdempotencyStore:
    """The default store: this process's memory, bounded in time and bytes.

    A redelivery to the same process is answered from here; one to another process runs
    again (use :class:`~sqs_rpc.DynamoDBIdempotencyStore` for that). Claims do not expire:
    they end with their handler, or with the process.

    Args:
        ttl: seconds a finished request's reply is kept; 0 keeps none (claims still count).
        max_bytes: memory bound of the kept replies, in bytes.
    """

    def __init__(
        self, *, ttl: float = DEFAULT_REPLY_CACHE_TTL, max_bytes: int = DEFAULT_REPLY_CACHE_BYTES
    ) -> None:
        self._cache = ReplyCache(
            ttl=seconds(ttl, "ttl", low=0, high=86400, rule="seconds from 0 (no replies) to 86400"),
            max_bytes=whole(max_bytes, "max_bytes", low=1, high=2**40, rule="bytes >= 1"),
        )

    @property
    def bytes(self) -> int:
        """The bytes the kept replies count against ``max_bytes``."""
        return self._cache.bytes

    def begin(self, key: str, lease: float) -> tuple[IdempotencyState, StoredReply]:
        state, reply = self._cache.begin((key,))
        if state == "finished":
            return "done", reply
        return ("new" if state == "run" else "in_progress"), None

    def complete(self, key: str, reply: StoredReply) -> None:
        self._cache.remember((key,), reply)
        self._cache.done((key,))

    def release(self, key: str) -> None:
        self._cache.done((key,))


class Claim:
    """One request's claim: completed or released once, whichever comes first; then inert."""

    def __init__(self, store: IdempotencyStore, key: str) -> None:
        self._store = store
        self.key = key
        self._lock = threading.Lock()
        self._ended = False

    def _end(self) -> bool:
        with self._lock:
            ended, self._ended = self._ended, True
        return not ended

    def complete(self, reply: OutgoingMessage | None) -> None:
        """Keep ``reply`` in the store, in its format (``SendMessage`` arguments)."""
        if self._end():
            self._store.complete(self.key, None if reply is None else dict(reply.to_send_kwargs()))

    def release(self) -> None:
        if self._end():
            self._store.release(self.key)


def request_key(queue_url: str, parts: Sequence[str]) -> str:
    """The store key of a request: a digest of its queue and of the reply cache's key.

    The queue is named by its URL's path (``/ACCOUNT/NAME``), so that servers reaching the
    same queue through different endpoints agree. A table shared by several queues keeps
    their requests apart.
    """
    path = urlsplit(queue_url).path or queue_url
    text = json.dumps([path, *parts], ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=32).hexdigest()
