"""One block of calls by one implementation, and everything measured around it.

A block is ``calls`` calls from ``callers`` threads (or, for the ``cpu`` phase, one call that
waits on a slow handler). Around it the suite reads each process's CPU time (its CPU-time
clock, or ``/proc``) and both sides' SQS request counts (a :class:`~sqs_rpc.RequestCounter` on
the client's boto3 client and one in the server process), so every figure of a block belongs
to that block alone.
Every reply is checked against its request: a wrong reply is a failure, not a statistic.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clients import Side

# Per-client set-up and tear-down, not per call: left out of the per-call figures.
LIFECYCLE_OPERATIONS = frozenset(
    {"CreateQueue", "DeleteQueue", "TagQueue", "GetQueueAttributes", "ListQueues"}
)
SLOW_CALL_ID = -1


@dataclass
class Block:
    phase: str
    impl: str
    repetition: int
    callers: int
    calls: int = 0
    errors: int = 0
    wrong_replies: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    # CPU seconds of each process during the block: sqs (the SQS server), proxy (aws-like),
    # server (this implementation's RPC server), client (the callers' process, this one).
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    client_requests: dict[str, int] = field(default_factory=dict)
    server_requests: dict[str, int] = field(default_factory=dict)
    client_billed: dict[str, int] = field(default_factory=dict)
    server_billed: dict[str, int] = field(default_factory=dict)

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def percentile(self, q: int) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]

    def _per_call(self, *counts: dict[str, int]) -> float:
        total = sum(n for c in counts for op, n in c.items() if op not in LIFECYCLE_OPERATIONS)
        return total / self.calls if self.calls else float("nan")

    def requests_per_call(self) -> float:
        return self._per_call(self.client_requests, self.server_requests)

    def billed_per_call(self) -> float:
        return self._per_call(self.client_billed, self.server_billed)

    def cpu_ms_per_call(self) -> dict[str, float]:
        return {r: s * 1000 / self.calls for r, s in self.cpu_seconds.items() if self.calls}

    def cpu_per_second(self) -> dict[str, float]:
        return {r: s / self.seconds for r, s in self.cpu_seconds.items() if self.seconds}

    def metrics(self) -> dict[str, float]:
        """The block's figures by metric name (what the report takes medians of)."""
        out = {
            "calls_per_second": self.calls_per_second,
            "p50_ms": self.percentile(50),
            "p90_ms": self.percentile(90),
            "p99_ms": self.percentile(99),
            "requests_per_call": self.requests_per_call(),
            "billed_per_call": self.billed_per_call(),
            "errors": float(self.errors),
            "wrong_replies": float(self.wrong_replies),
        }
        out.update({f"cpu_ms_per_call.{r}": v for r, v in self.cpu_ms_per_call().items()})
        out.update({f"cpu_per_second.{r}": v for r, v in self.cpu_per_second().items()})
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "impl": self.impl,
            "repetition": self.repetition,
            "callers": self.callers,
            "calls": self.calls,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "client_requests": self.client_requests,
            "server_requests": self.server_requests,
            "client_billed": self.client_billed,
            "server_billed": self.server_billed,
            **self.metrics(),
        }


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _cpu_clock(pid: int) -> int | None:
    """The CPU-time clock of process ``pid`` (Linux lets any process read another's)."""
    try:
        libc = _libc()
        clock = ctypes.c_int()
        if libc.clock_getcpuclockid(pid, ctypes.byref(clock)) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return clock.value


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a process so far (None where unreadable).

    From the process's CPU-time clock, to the nanosecond: /proc's counts are in ticks of
    10 ms, as coarse as the figure itself for a 2 s block at 0.005 CPU s/s. Falls back to
    /proc/PID/stat where that clock is not available.
    """
    clock = _cpu_clock(pid)
    if clock is not None:
        try:
            return time.clock_gettime(clock)
        except OSError:
            pass  # the process is gone
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {op: n - before.get(op, 0) for op, n in after.items() if n - before.get(op, 0)}


def _calls(block: Block, side: Side, calls: int) -> None:
    """``calls`` calls from ``block.callers`` threads, each reply checked."""
    lock = threading.Lock()
    first = side.next_id
    next_id = [first]
    side.next_id += calls

    def caller() -> None:
        while True:
            with lock:
                i = next_id[0]
                if i >= first + calls:
                    return
                next_id[0] += 1
            started = time.perf_counter()
            try:
                reply = side.client.call(side.queue_url, {"i": i}, timeout=60)
            except Exception:
                with lock:
                    block.errors += 1
                continue
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                block.calls += 1
                block.latencies_ms.append(elapsed)
                if reply != {"i": i}:
                    block.wrong_replies += 1

    threads = [threading.Thread(target=caller) for _ in range(block.callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _slow_call(block: Block, side: Side, seconds: float) -> None:
    """One call that waits ``seconds`` on the handler: what waiting costs the client."""
    started = time.perf_counter()
    try:
        reply = side.client.call(
            side.queue_url, {"i": SLOW_CALL_ID, "sleep": seconds}, timeout=seconds + 60
        )
    except Exception:
        block.errors += 1
        return
    block.calls = 1
    block.latencies_ms.append((time.perf_counter() - started) * 1000)
    if reply != {"i": SLOW_CALL_ID}:
        block.wrong_replies += 1


def run_block(
    side: Side,
    phase: str,
    repetition: int,
    *,
    callers: int,
    calls: int,
    pids: dict[str, int],
    slow_seconds: float = 0.0,
) -> Block:
    """Run one block and measure it. ``slow_seconds`` > 0: the one slow call of ``cpu``."""
    block = Block(phase, side.impl, repetition, callers)
    roles = {**pids, "server": side.server.pid, "client": os.getpid()}
    c0, b0 = side.counter.snapshot(), side.counter.billed_snapshot()
    s0, sb0 = side.server.counts()
    cpu0 = {role: cpu_seconds(pid) for role, pid in roles.items()}
    started = time.perf_counter()
    if slow_seconds > 0:
        _slow_call(block, side, slow_seconds)
    else:
        _calls(block, side, calls)
    block.seconds = time.perf_counter() - started
    for role, pid in roles.items():
        before, after = cpu0[role], cpu_seconds(pid)
        if before is not None and after is not None:
            block.cpu_seconds[role] = after - before
    block.client_requests = _diff(side.counter.snapshot(), c0)
    block.client_billed = _diff(side.counter.billed_snapshot(), b0)
    s1, sb1 = side.server.counts()
    block.server_requests, block.server_billed = _diff(s1, s0), _diff(sb1, sb0)
    return block
