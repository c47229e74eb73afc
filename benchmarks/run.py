"""The benchmark suite: sqs-rpc against a plain-boto3 baseline, in paired blocks, per profile.

    python -m benchmarks.run                    # every profile (moto, fauxqs, aws-like)
    python -m benchmarks.run --quick            # small counts: checks that everything works
    python -m benchmarks.run --profiles aws-like --phases sequential 32

For each profile (an SQS server the suite starts itself: ``benchmarks/profiles.py``), both
implementations' RPC servers and clients are started side by side on the same SQS server.
Each phase then runs in paired blocks, sqs-rpc, baseline, sqs-rpc, baseline, ... (three
repetitions each by default), so that a noisy machine hits both alike. Around every block the
suite reads each process's CPU (SQS server, latency proxy, RPC server, callers) and both
sides' SQS requests. The report gives medians over the repetitions with their min-max spread,
the ratio of the medians, each target of issue 15 as met or not, and the cost per million
calls on AWS; the JSON in ``benchmarks/results/`` holds every block.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from .blocks import Block, run_block
from .clients import IMPLEMENTATIONS, Side
from .floor import floors, request_cpu
from .memory import memory
from .profiles import PROFILES, NetworkModel, RunningProfile, start_profile
from .report import PRICE_NOTE, aggregate, check_targets, cost_per_million, memory_table, table

RESULTS = Path(__file__).resolve().parent / "results"
PHASES = ("sequential", "1", "8", "32", "128", "cpu", "memory")
DEFAULT_PHASES = ("sequential", "8", "32", "128", "cpu")
# Calls per block, per profile: each block lasts a few seconds on this kind of machine (2
# cores), long enough for a steady state, short enough that the whole suite stays near 15
# minutes. fauxqs answers in about a millisecond, moto in several.
CALLS: dict[str, dict[str, int]] = {
    "moto": {"sequential": 100, "1": 100, "8": 240, "32": 320, "128": 512},
    "fauxqs": {"sequential": 400, "1": 400, "8": 1600, "32": 3200, "128": 4096},
    "aws-like": {"sequential": 120, "1": 120, "8": 800, "32": 1600, "128": 2048},
}
QUICK_CALLS = {"sequential": 10, "1": 10, "8": 24, "32": 64, "128": 128}
CALLERS = {"sequential": 1, "1": 1, "8": 8, "32": 32, "128": 128, "cpu": 1}
SLOW_SECONDS, QUICK_SLOW_SECONDS = 2.0, 0.5


def _line(profile: str, block: Block) -> str:
    cpu = " ".join(f"{r} {v:.2f}" for r, v in block.cpu_ms_per_call().items())
    return (
        f"  {profile:8} {block.phase:10} #{block.repetition + 1} {block.impl:8} "
        f"{block.calls_per_second:7.1f} calls/s  p50 {block.percentile(50):7.1f} ms  "
        f"{block.requests_per_call():.2f} req/call  CPU ms/call {cpu}  "
        f"errors {block.errors} wrong {block.wrong_replies}"
    )


def _paired_blocks(
    running: RunningProfile, sides: dict[str, Side], args: argparse.Namespace
) -> list[Block]:
    """Every timed phase, its blocks alternating between the implementations."""
    blocks: list[Block] = []
    calls = QUICK_CALLS if args.quick else CALLS[running.name]
    for phase in [p for p in PHASES if p in args.phases and p != "memory"]:
        n = calls.get(phase, 1) if args.quick else max(int(calls.get(phase, 1) * args.scale), 1)
        for repetition in range(args.repetitions):
            for impl in IMPLEMENTATIONS:  # A B, A B, ...: both see the same noise
                block = run_block(
                    sides[impl],
                    phase,
                    repetition,
                    callers=CALLERS[phase],
                    calls=max(n, CALLERS[phase]),
                    pids=running.pids,
                    slow_seconds=(QUICK_SLOW_SECONDS if args.quick else SLOW_SECONDS)
                    if phase == "cpu"
                    else 0.0,
                )
                blocks.append(block)
                print(_line(running.name, block), flush=True)
    return blocks


def run_profile(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Start the profile's SQS server, run its paired blocks, stop everything."""
    network = NetworkModel(args.delay_ms / 1000, args.jitter_ms / 1000, args.seed)
    started = time.time()
    load_before = os.getloadavg()
    with start_profile(name, network) as running:
        print(f"{name}: {running.endpoint} ({running.description})", flush=True)
        if running.added_latency_ms:
            print(
                f"{name}: the proxy adds {running.added_latency_ms['added_p50_ms']:.1f} ms "
                f"to a request's median round trip (measured)",
                flush=True,
            )
        with ExitStack() as stack:
            sides: dict[str, Side] = {}
            for impl in IMPLEMENTATIONS:
                sides[impl] = Side(impl, running.endpoint)
                stack.callback(sides[impl].close)
            for side in sides.values():
                side.warm_up()
            costs = request_cpu(running.endpoint, 10 if args.quick else 30)
            print(f"{name}: botocore's CPU per request, ms: {_costs(costs)}", flush=True)
            blocks = _paired_blocks(running, sides, args)
        heap = (
            {impl: memory(impl, running.endpoint, args.memory_calls) for impl in IMPLEMENTATIONS}
            if "memory" in args.phases
            else None
        )
    summary = aggregate(blocks)
    roles = [*running.pids, "server", "client"]
    print(table(name, summary, roles), flush=True)
    floor = floors([b.summary() for b in blocks], costs)
    print(_floor_lines(name, floor), flush=True)
    if heap is not None:
        print(memory_table(heap), flush=True)
    return {
        "description": running.description,
        "added_latency_ms": running.added_latency_ms,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": time.time() - started,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "summary": summary,
        "targets": check_targets(name, summary),
        "botocore_cpu_ms_per_request": costs,
        "botocore_floor_cpu_ms_per_call": floor,
        "cost_per_million_calls": cost_per_million(summary),
        "memory": heap,
        "blocks": [b.summary() for b in blocks],
    }


def _costs(costs: dict[str, float]) -> str:
    return ", ".join(f"{op} {ms:.2f}" for op, ms in costs.items())


def _floor_lines(name: str, floor: dict[str, Any]) -> str:
    """What botocore alone spends per call, at each phase's requests (medians of the blocks)."""
    lines = [f"-- {name}: botocore's CPU ms per call at the run's requests (client / server)"]
    for phase, impls in floor.items():
        cells = "   ".join(
            f"{impl} {impls[impl]['client']:.2f} / {impls[impl]['server']:.2f}"
            for impl in IMPLEMENTATIONS
            if impl in impls
        )
        lines.append(f"{phase:10} {cells}")
    return "\n".join(lines)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
    ).stdout.strip()


def _commit() -> str:
    """The commit measured, read at the start ("+changes" if tracked files differ from it)."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        return commit + (
            "+changes" if _git("status", "--porcelain", "--untracked-files=no") else ""
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profiles", nargs="+", choices=PROFILES, default=list(PROFILES), help="default: all"
    )
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=PHASES,
        default=list(DEFAULT_PHASES),
        help="numbers: concurrent callers; default: sequential 8 32 128 cpu (memory: heap "
        "with many calls in flight, not paired)",
    )
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke test")
    parser.add_argument(
        "--repetitions",
        type=int,
        help="paired blocks per phase and implementation (default 3; 2 with --quick)",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the calls per block")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="aws-like: added round trip")
    parser.add_argument("--jitter-ms", type=float, default=1.0, help="aws-like: jitter width")
    parser.add_argument("--seed", type=int, default=0, help="aws-like: the jitter's seed")
    parser.add_argument(
        "--memory-calls", type=int, help="calls in flight in the memory phase (default 10,000)"
    )
    parser.add_argument("--json", type=Path, help="where to write the JSON results")
    args = parser.parse_args(argv)
    args.repetitions = args.repetitions or (2 if args.quick else 3)
    args.memory_calls = args.memory_calls or (300 if args.quick else 10_000)
    started, commit = time.time(), _commit()
    profiles = {name: run_profile(name, args) for name in args.profiles}
    report = {
        "command": "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv),
        "commit": commit,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": time.time() - started,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "repetitions": args.repetitions,
        "price": PRICE_NOTE,
        "profiles": profiles,
    }
    path = args.json or RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"every profile in {report['seconds'] / 60:.1f} min; JSON: {path}")
    bad = sum(b["errors"] + b["wrong_replies"] for p in profiles.values() for b in p["blocks"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
