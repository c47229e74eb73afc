"""The reply cache's byte bound (``reply_cache_bytes``) tracks the memory it really holds."""

from __future__ import annotations

import gc
import json
import tracemalloc
import uuid

from sqs_rpc._server.reply_cache import ReplyCache, _size
from tests.support.helpers import stored_reply

REPLY_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/sqs-rpc-reply-" + "0" * 32


def test_the_byte_bound_counts_what_an_entry_really_costs() -> None:
    cache = ReplyCache(ttl=300, max_bytes=2**40)
    entries = 5000
    accounted = 0
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(entries):
            # What the server keeps for a small reply: a key of (reply queue, correlation id,
            # body digest) and the reply's SendMessage arguments.
            correlation_id = uuid.uuid4().hex
            body = json.dumps({"id": f"call-{i}", "pid": 12345})
            arguments = stored_reply(correlation_id, body)
            key = (REPLY_QUEUE, correlation_id, uuid.uuid4().hex)
            assert cache.begin(key)[0] == "run"
            cache.remember(key, arguments)
            cache.done(key)
            accounted += _size(key, arguments)
        gc.collect()
        actual = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    per_entry = actual / entries
    # Within a factor of the truth either way: the bound is about memory, not just bodies.
    assert 0.7 * actual <= accounted <= 1.5 * actual, (per_entry, accounted / entries)


def test_the_cache_keeps_no_more_than_its_bound() -> None:
    cache = ReplyCache(ttl=300, max_bytes=100 * 1700)
    keys = []
    for i in range(300):
        key = (REPLY_QUEUE, uuid.uuid4().hex, str(i))
        cache.begin(key)
        cache.remember(key, stored_reply(key[1], "{}"))
        cache.done(key)
        keys.append(key)
    kept = [key for key in keys if cache.begin(key)[0] == "finished"]
    assert 50 <= len(kept) <= 110
    assert keys[-1] in kept  # the most recent stay
