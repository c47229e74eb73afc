"""The server's memory of finished requests: replies to resend, and requests now running.

SQS delivers at least once. A request that comes back after its handler finished in this
process is answered from here (the same reply again) instead of running twice; a copy that
arrives while the first is still running is recognised too. Entries live in a cachetools
``TTLCache`` bounded in bytes; cachetools caches are not thread-safe, hence the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from typing import Any, Literal

from cachetools import TTLCache

from sqs_rpc._wire import Request

__all__ = ["Key", "ReplyCache", "key_of"]

# A request: (reply queue, correlation id, digest of the body). The body's digest is there
# because a caller may reuse a correlation id for a *new* request once the old one is
# answered; a redelivery is byte-for-byte the same message.
Key = tuple[str, str, str]
Reply = dict[str, Any] | None  # SendMessage arguments; None for a one-way message
# "run": claimed, run the handler; "running": another worker runs it; "finished": the reply.
State = Literal["run", "running", "finished"]

# An entry costs its reply body's size plus this much: the key's strings, the SendMessage
# arguments' attribute dicts and the cache's own node. Measured with tracemalloc at about
# 1.6 KiB for a small reply (tests/test_reply_cache.py keeps it honest); it was 256, which let
# the default 32 MiB bound hold some 180 MiB, as the soak's server memory showed.
ENTRY_OVERHEAD = 1600


def key_of(request: Request) -> Key:
    digest = hashlib.blake2b(request.body.encode(), digest_size=16).hexdigest()
    return (request.reply_to or "", request.correlation_id or request.message_id, digest)


def _size(value: Reply) -> int:
    return ENTRY_OVERHEAD + (len(value["MessageBody"]) if value is not None else 0)


class ReplyCache:
    """Finished requests' replies for ``ttl`` seconds (``ttl`` 0: none), and running requests."""

    def __init__(self, *, ttl: float, max_bytes: int) -> None:
        self._lock = threading.Lock()
        self._cache: TTLCache[Key, Reply] | None = (
            TTLCache(maxsize=max_bytes, ttl=ttl, getsizeof=_size) if ttl > 0 else None
        )
        self._running: set[Key] = set()

    def begin(
        self, key: Key
    ) -> tuple[Literal["finished"], Reply] | tuple[Literal["run", "running"], None]:
        """Claim ``key`` to run it; or say it already finished (with its reply) or is running."""
        with self._lock:
            if self._cache is not None and key in self._cache:
                return "finished", self._cache[key]
            if key in self._running:
                return "running", None
            self._running.add(key)
            return "run", None

    def remember(self, key: Key, reply: Reply) -> None:
        """Keep ``reply`` for ``key`` (a reply larger than the whole cache is not kept)."""
        if self._cache is None:
            return
        # A reply larger than the whole cache raises ValueError: it is simply not kept.
        with self._lock, contextlib.suppress(ValueError):
            self._cache[key] = reply

    def done(self, key: Key) -> None:
        """``key`` no longer runs; idempotent."""
        with self._lock:
            self._running.discard(key)
