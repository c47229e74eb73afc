"""Resident memory of a process, sampled over time, and whether it stayed flat.

RSS comes from ``/proc/<pid>/statm`` (resident pages times the page size). Where there is no
/proc, ``resource`` gives only the peak RSS, which can show growth but never a fall.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["FLAT_GROWTH", "Sampler", "flatness", "rss_bytes"]

# Flat: the median RSS of the last quarter of the run is less than 10 % above the median of
# the first quarter after warm-up.
FLAT_GROWTH = 0.10
WARM_UP_SHARE = 0.10  # the first 10 % of the call phase is warm-up (imports, pools, caches)


def rss_bytes(pid: int | None = None) -> int:
    """The current resident set size of ``pid`` (default: this process) in bytes."""
    try:
        with open(f"/proc/{pid or 'self'}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        if pid is not None:
            return 0
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # peak, in KiB


class Sampler:
    """Samples RSS every ``interval`` seconds on a daemon thread; ``tick`` runs at each sample."""

    def __init__(
        self,
        interval: float,
        pid: int | None = None,
        tick: Callable[[], None] | None = None,
    ) -> None:
        self._interval = interval
        self._pid = pid
        self._tick = tick
        self._stop = threading.Event()
        self.samples: list[tuple[float, int]] = []  # (time.time(), rss bytes)
        self._thread = threading.Thread(target=self._run, name="soak-memory", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join(10)
        self.samples.append((time.time(), rss_bytes(self._pid)))
        return self.samples

    def _run(self) -> None:
        while True:
            self.samples.append((time.time(), rss_bytes(self._pid)))
            if self._tick is not None:
                self._tick()
            if self._stop.wait(self._interval):
                return


def flatness(
    samples: Sequence[Sequence[float]], start: float, end: float, warm_up: float = 0.0
) -> dict[str, Any]:
    """RSS over the call phase ``[start, end]``: medians of the first and last quarter after
    warm-up, their ratio, and whether growth stayed under :data:`FLAT_GROWTH`.

    Warm-up is the first :data:`WARM_UP_SHARE` of the call phase, or ``warm_up`` seconds if
    longer: a server's reply cache fills for its ``reply_cache_ttl`` by design.
    """
    warm = start + max((end - start) * WARM_UP_SHARE, warm_up)
    window = [(t, rss) for t, rss in samples if warm <= t <= end]
    if len(window) < 8:
        return {"samples": len(window), "flat": None, "why": "too few samples in the window"}
    quarter = (end - warm) / 4
    first = [rss for t, rss in window if t < warm + quarter]
    last = [rss for t, rss in window if t >= end - quarter]
    if not first or not last:
        return {"samples": len(window), "flat": None, "why": "a quarter has no sample"}
    q1 = statistics.median(first)
    q4 = statistics.median(last)
    ratio = q4 / q1
    return {
        "samples": len(window),
        "q1_median_mib": round(q1 / 2**20, 1),
        "q4_median_mib": round(q4 / 2**20, 1),
        "max_mib": round(max(rss for _, rss in window) / 2**20, 1),
        "ratio": round(ratio, 3),
        "flat": ratio < 1 + FLAT_GROWTH,
    }
