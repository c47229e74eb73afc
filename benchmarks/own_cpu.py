"""sqs-rpc's own CPU per call: client and server in one process, botocore and SQS taken out.

    python -m benchmarks.own_cpu [--callers 1 32] [--calls 3200] [--runs 5] [--against DIR]

The suite's profiles measure a process's whole CPU per call, most of it botocore's (see
``floor.py``); what sqs-rpc adds is found there only by subtraction, in noisy milliseconds.
This measures it directly: an ``RpcClient`` and a ``MessagePoller`` (10 slots, an echo
handler) in one process, talking to :class:`~benchmarks.memory_sqs.MemorySqs`, so that the
process's CPU per call is sqs-rpc's work on both sides (and a few dict operations per request
in the stand-in). ``--callers`` threads make ``--calls`` calls between them; every reply is
checked. Each run is a fresh process.

With ``--against DIR`` (another checkout of sqs-rpc, such as ``git worktree add /tmp/base
main``), runs alternate between DIR's ``sqs_rpc`` and this one's, so that a noisy machine
hits both alike, and the report gives each pair's ratio (this / DIR) and their median.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
WARM_UP = 20


def _child(callers: int, calls: int) -> dict[str, Any]:
    """One measurement in this process: CPU ms per call, calls/s and wrong replies."""
    from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, RpcClient

    from .memory_sqs import MemorySqs

    class Echo(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            return {"i": message.body["i"]}

    sqs = MemorySqs()
    url = sqs.create_queue(
        QueueName="own-cpu", Attributes={"RedrivePolicy": '{"maxReceiveCount": "5"}'}
    )["QueueUrl"]
    poller = MessagePoller(url, Echo(), concurrency=10, sqs_client=sqs)  # type: ignore[arg-type]
    poller.start()
    per_caller = calls // callers
    wrong = [0]
    try:
        with RpcClient(sqs_client=sqs) as client:  # type: ignore[arg-type]
            for i in range(WARM_UP):
                client.call(url, {"i": i}, timeout=30)

            def run(caller: int) -> None:
                for i in range(per_caller):
                    if client.call(url, {"i": caller * per_caller + i}, timeout=30) != {
                        "i": caller * per_caller + i
                    }:
                        wrong[0] += 1

            threads = [threading.Thread(target=run, args=(c,)) for c in range(callers)]
            before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall
    finally:
        poller.stop()
    done = per_caller * callers
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {
        "cpu_ms_per_call": (user + system) * 1000 / done,
        "system_ms_per_call": system * 1000 / done,
        # A thread that blocks (a wait, a lock, the GIL) and is woken again: one switch.
        "switches_per_call": (after.ru_nvcsw - before.ru_nvcsw) / done,
        "calls_per_s": done / wall,
        "wrong": wrong[0],
    }


def _measure(sqs_rpc_dir: Path, callers: int, calls: int) -> dict[str, Any]:
    env = dict(os.environ, OWN_CPU_SQS_RPC=str(sqs_rpc_dir))
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.own_cpu", "--child", str(callers), str(calls)],
        cwd=HERE,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--calls", type=int, default=3200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another checkout, run alternately")
    parser.add_argument("--child", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0
    builds = {"this": HERE}
    if args.against is not None:
        builds = {"against": args.against.resolve(), "this": HERE}
    failed = False
    for callers in args.callers:
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
        for run in range(args.runs):
            for name, directory in builds.items():
                result = _measure(directory, callers, args.calls)
                results[name].append(result)
                failed |= result["wrong"] > 0
                print(
                    f"{callers:3d} callers  run {run + 1}  {name:8s} "
                    f"{result['cpu_ms_per_call']:.3f} ms CPU/call "
                    f"(system {result['system_ms_per_call']:.3f})  "
                    f"{result['switches_per_call']:4.1f} switches/call  "
                    f"{result['calls_per_s']:7.0f} calls/s  wrong {result['wrong']}",
                    flush=True,
                )
        for name, rows in results.items():
            print(
                f"== {callers} callers, {name} ({builds[name]}): CPU ms/call "
                f"{_spread([r['cpu_ms_per_call'] for r in rows])}, of it system "
                f"{_spread([r['system_ms_per_call'] for r in rows])}; switches/call "
                f"{statistics.median(r['switches_per_call'] for r in rows):.1f}; calls/s "
                f"{statistics.median(r['calls_per_s'] for r in rows):.0f}"
            )
        if "against" in results:
            ratios = [
                this["cpu_ms_per_call"] / other["cpu_ms_per_call"]
                for this, other in zip(results["this"], results["against"], strict=True)
            ]
            print(
                f"== {callers} callers, this / against per pair: "
                + " ".join(f"{r:.3f}" for r in ratios)
                + f"; median {statistics.median(ratios):.3f}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    _override = os.environ.get("OWN_CPU_SQS_RPC")
    if _override:
        sys.path.insert(0, _override)  # that checkout's sqs_rpc, before any import of it
    sys.exit(main())
