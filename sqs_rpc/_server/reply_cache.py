"""The server's memory of finished requests: replies to resend, and requests now running.

SQS delivers at least once. A request may come back after its handler finished in this
process. It is then answered from here, with the same reply again, instead of running twice.
A copy that arrives while the first is still running is recognised too. Entries live in a
cachetools ``TTLCache`` bounded in bytes. cachetools caches are not thread-safe, hence the
lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import threading
from typing import Any, Literal, NamedTuple

from cachetools import TTLCache

from sqs_rpc._wire import Request

__all__ = ["Key", "ReplyCache", "key_of"]

# A request: (reply queue, correlation id, digest of all else it asks). A caller may reuse a
# correlation id for a *new* request (and sqs-rpc lets it choose one), so the id alone is not
# the request: the digest covers the body, content type, the sender's attributes, the
# deadline, the FIFO group and the call's nonce. A redelivery, or a send botocore retried, is
# the same message and has the same digest; any other call differs at least in its nonce (and
# an older client's in its deadline). Not the SQS MessageId: a retried send is a new message.
# The idempotency store keys its entries by a digest of this key.
Key = tuple[str, ...]
Reply = dict[str, Any] | None  # SendMessage arguments; None for a one-way message
# "run": claimed, run the handler; "running": another worker runs it; "finished": the reply.
State = Literal["run", "running", "finished"]

# An entry costs the strings it holds (its key's, its reply's body and attribute values: all
# chosen or echoed by the sender, so counted as they are) plus this much: the tuples, dicts
# and the cache's own node. Measured with tracemalloc for a small reply (tests/
# test_reply_cache.py keeps it honest). Counting only the body let 600 requests with 100 KiB
# correlation ids hold 63 times the bound.
ENTRY_OVERHEAD = 1200


class _Entry(NamedTuple):
    reply: Reply
    size: int  # bytes, as counted against the bound


def key_of(request: Request) -> Key:
    """What makes ``request`` the same request as another: see :data:`Key`."""
    parts: list[str | bytes] = [
        request.body,
        request.content_type,
        str(request.deadline_ms),
        request.group_id or "",
        request.nonce or "",
    ]
    for name in sorted(request.attributes):
        value = request.attributes[name]
        parts += [name, "B" if isinstance(value, bytes) else "S", value]
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        # Length-prefixed, so that no two lists of parts hash alike; surrogatepass, so that
        # no text (however it was decoded) makes the key raise.
        data = part if isinstance(part, bytes) else part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return (
        request.reply_to or "",
        request.correlation_id or request.message_id,
        digest.hexdigest(),
    )


def _size(key: Key, value: Reply) -> int:
    """The bytes an entry holds: every string of its key and reply, and the structure."""
    held = ENTRY_OVERHEAD + sum(sys.getsizeof(part) for part in key)
    if value is not None:
        held += sys.getsizeof(value["MessageBody"])
        for attribute in value.get("MessageAttributes", {}).values():
            held += sum(
                sys.getsizeof(attribute[name])
                for name in ("StringValue", "BinaryValue")
                if name in attribute
            )
    return held


def _entry_size(entry: _Entry) -> int:
    return entry.size


class ReplyCache:
    """Finished requests' replies for ``ttl`` seconds (``ttl`` 0: none), and running requests."""

    def __init__(self, *, ttl: float, max_bytes: int) -> None:
        self._lock = threading.Lock()
        self._cache: TTLCache[Key, _Entry] | None = (
            TTLCache(maxsize=max_bytes, ttl=ttl, getsizeof=_entry_size) if ttl > 0 else None
        )
        self._running: set[Key] = set()

    def begin(
        self, key: Key
    ) -> tuple[Literal["finished"], Reply] | tuple[Literal["run", "running"], None]:
        """Claim ``key`` to run it; or say it already finished (with its reply) or is running."""
        with self._lock:
            if self._cache is not None and key in self._cache:
                return "finished", self._cache[key].reply
            if key in self._running:
                return "running", None
            self._running.add(key)
            return "run", None

    def remember(self, key: Key, reply: Reply) -> None:
        """Keep ``reply`` for ``key`` (a reply larger than the whole cache is not kept)."""
        if self._cache is None:
            return
        # A reply larger than the whole cache raises ValueError: it is simply not kept.
        entry = _Entry(reply, _size(key, reply))
        with self._lock, contextlib.suppress(ValueError):
            self._cache[key] = entry

    @property
    def bytes(self) -> int:
        """The bytes the kept replies count against ``max_bytes``."""
        with self._lock:
            return int(self._cache.currsize) if self._cache is not None else 0

    def done(self, key: Key) -> None:
        """``key`` no longer runs; idempotent."""
        with self._lock:
            self._running.discard(key)
