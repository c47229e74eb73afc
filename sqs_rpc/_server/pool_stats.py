"""A PollerPool's stats: sent from a child to its parent, and summed over the children.

A child reports its poller's stats over its channel as plain values (:func:`stats_fields`),
which the parent turns back into a PollerStats (:func:`stats_from_fields`). The pool's own
stats are the children's summed (:func:`sum_stats`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from sqs_rpc._stats import Latency, PollerStats

__all__ = ["stats_fields", "stats_from_fields", "sum_stats", "summary"]


def stats_fields(stats: PollerStats) -> dict[str, Any]:
    """A PollerStats as plain values (its mappings may be read-only views pickle refuses)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(stats):
        value = getattr(stats, field.name)
        if isinstance(value, Latency):
            value = dataclasses.asdict(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        values[field.name] = value
    return values


def stats_from_fields(values: Mapping[str, Any]) -> PollerStats:
    """The inverse of :func:`stats_fields`; fields this version does not know are ignored."""
    known = {field.name for field in dataclasses.fields(PollerStats)}
    kept = {name: value for name, value in values.items() if name in known}
    if "latency" in kept:
        kept["latency"] = Latency(**kept["latency"])
    return PollerStats(**kept)


def sum_stats(items: Iterable[PollerStats]) -> PollerStats:
    """Several pollers' stats as one: counters and request counts summed.

    Latency percentiles cannot be merged from percentiles: each is the highest of the
    pollers' own, an upper bound of the pool's (every poller has a fraction q of its samples
    at or below its own q-quantile, so the pool has too).
    """
    totals: dict[str, Any] = {}
    latencies: list[Latency] = []
    for stats in items:
        for field in dataclasses.fields(stats):
            value = getattr(stats, field.name)
            if isinstance(value, Latency):
                latencies.append(value)
            elif isinstance(value, Mapping):
                merged = totals.setdefault(field.name, {})
                for key, count in value.items():
                    merged[key] = merged.get(key, 0) + count
            elif isinstance(value, int):
                totals[field.name] = totals.get(field.name, 0) + value

    def highest(name: str) -> float | None:
        values = [v for v in (getattr(latency, name) for latency in latencies) if v is not None]
        return max(values) if values else None

    totals["latency"] = Latency(
        count=sum(latency.count for latency in latencies),
        sum=sum(latency.sum for latency in latencies),
        window=sum(latency.window for latency in latencies),
        p50=highest("p50"),
        p90=highest("p90"),
        p99=highest("p99"),
        max=highest("max"),
    )
    return PollerStats(**totals)


def summary(stats: PollerStats) -> str:
    """The main counters in one line, for the pool's last log record."""
    return (
        f"received {stats.received}, handled {stats.handled}, failed {stats.failed}, "
        f"replies_sent {stats.replies_sent}, deleted {stats.deleted}"
    )
