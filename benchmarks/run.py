"""The benchmark suite: sqs-rpc against a plain-boto3 baseline, in one run, on one server.

    python -m benchmarks.run            # full run (a few minutes), writes benchmarks/results/
    python -m benchmarks.run --quick    # small counts: checks that everything works

Processes: the SQS-compatible server (moto's, on 127.0.0.1), the RPC server under test, and
this process, which holds the callers. For each implementation it measures sequential latency,
throughput with 1, 8, 32 and 128 concurrent callers, SQS requests per call by operation on both
sides, client CPU while a call waits on a slow handler, and memory with many calls in flight.
Every reply is checked against its request: a wrong reply is a failure, not a statistic.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from sqs_rpc import RequestCounter, RpcClient

from .baseline import BaselineClient

IMPLEMENTATIONS = ("baseline", "sqs-rpc")
# Per-client set-up and tear-down, not per call: reported apart from the per-call figure.
LIFECYCLE_OPERATIONS = frozenset(
    {"CreateQueue", "DeleteQueue", "TagQueue", "GetQueueAttributes", "ListQueues"}
)
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Phase:
    name: str
    callers: int
    calls: int = 0
    errors: int = 0
    wrong_replies: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    client_requests: dict[str, int] = field(default_factory=dict)
    server_requests: dict[str, int] = field(default_factory=dict)
    # CPU seconds per wall second of each process during the phase ("sqs" only when its pid
    # is known): which one is the bottleneck. 1.0 is one core's worth.
    cpu_per_second: dict[str, float] = field(default_factory=dict)

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def percentile(self, q: int) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]

    def requests_per_call(self) -> float:
        total = sum(
            n
            for counts in (self.client_requests, self.server_requests)
            for op, n in counts.items()
            if op not in LIFECYCLE_OPERATIONS
        )
        return total / self.calls if self.calls else float("nan")

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        del data["latencies_ms"]
        data.update(
            calls_per_second=self.calls_per_second,
            p50_ms=self.percentile(50),
            p90_ms=self.percentile(90),
            p99_ms=self.percentile(99),
            requests_per_call=self.requests_per_call(),
        )
        return data


def _sqs(endpoint: str, pool: int = 10) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    return session.client("sqs", endpoint_url=endpoint, config=Config(max_pool_connections=pool))


def _cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU seconds of a process so far, from /proc (None where unreadable)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {op: n - before.get(op, 0) for op, n in after.items() if n - before.get(op, 0)}


class ServerProcess:
    """The RPC server under test, in a child process; reports its request counts on demand."""

    def __init__(self, impl: str, endpoint: str, queue_url: str) -> None:
        self._counts = Path(tempfile.mkdtemp()) / "counts.json"
        self._sequence = 0
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.server",
                impl,
                endpoint,
                queue_url,
                str(self._counts),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{impl} server did not start")

    @property
    def pid(self) -> int:
        return self._proc.pid

    def counts(self) -> dict[str, int]:
        self._sequence += 1
        self._proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                data = json.loads(self._counts.read_text())
                if data["sequence"] >= self._sequence:
                    return dict(data["counts"])
            except (FileNotFoundError, json.JSONDecodeError):
                pass
            time.sleep(0.01)
        raise RuntimeError("the server did not report its counts")

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(30)


def _make_client(impl: str, sqs: Any) -> Any:
    return BaselineClient(sqs) if impl == "baseline" else RpcClient(sqs_client=sqs)


def _run_phase(
    name: str, client: Any, queue_url: str, *, callers: int, calls: int, first_id: int
) -> Phase:
    phase = Phase(name, callers)
    lock = threading.Lock()
    next_id = [first_id]

    def caller() -> None:
        while True:
            with lock:
                i = next_id[0]
                if i >= first_id + calls:
                    return
                next_id[0] += 1
            started = time.perf_counter()
            try:
                reply = client.call(queue_url, {"i": i}, timeout=60)
            except Exception:
                with lock:
                    phase.errors += 1
                continue
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                phase.calls += 1
                phase.latencies_ms.append(elapsed)
                if reply != {"i": i}:
                    phase.wrong_replies += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    phase.seconds = time.perf_counter() - started
    return phase


def _cpu_while_waiting(client: Any, queue_url: str, seconds: float) -> float:
    """Client process CPU seconds per wall second while one call waits on a slow handler."""
    cpu, wall = time.process_time(), time.perf_counter()
    reply = client.call(queue_url, {"i": -1, "sleep": seconds}, timeout=seconds + 30)
    if reply != {"i": -1}:
        raise RuntimeError(f"wrong reply to the slow call: {reply!r}")
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


def _memory(impl: str, endpoint: str, calls: int) -> dict[str, Any]:
    """Python heap per in-flight call, and what is left once the calls have finished.

    The calls go to queues no server reads, with a timeout far longer than the phase, so all
    of them are in flight when the last is sent (an expiry computed from a send rate proved
    wrong twice: moto slows down as the queues fill). Then sqs-rpc's client is closed, which
    fails every pending call, and the heap is measured again: what the finished calls left.
    (Expiry by timeout frees the same entries; tests/unit/test_pending.py covers it.) The baseline
    is only measured in flight: it has no way to finish an abandoned call.
    """
    sqs = _sqs(endpoint, pool=16)
    # moto's cost per request grows with the messages in a queue: spread the parked calls
    # over queues of at most 1,000, so the server, not the queue length, sets the send rate.
    parking = [
        sqs.create_queue(QueueName=f"bench-parked-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        for _ in range(max(calls // 1000, 1))
    ]
    client = _make_client(impl, sqs)
    try:
        client.call_async(parking[0], {"i": 0}, timeout=5)  # the reply queue and threads
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        start = time.monotonic()
        futures: list[Future[Any]] = []
        # Heap at each quarter of the sends: linear growth means equal steps.
        quarters: list[int] = []
        with ThreadPoolExecutor(8) as pool:
            for f in pool.map(
                lambda i: client.call_async(parking[i % len(parking)], {"i": i}, timeout=3600),
                range(calls),
            ):
                futures.append(f)
                if len(futures) % max(calls // 4, 1) == 0 and len(quarters) < 4:
                    quarters.append(tracemalloc.get_traced_memory()[0] - base)
        sent_at = time.monotonic()
        in_flight = sum(not f.done() for f in futures)
        peak = tracemalloc.get_traced_memory()[0] - base
        result: dict[str, Any] = {
            "calls": calls,
            "in_flight_at_peak": in_flight,
            "send_seconds": sent_at - start,
            "heap_bytes_at_each_quarter": quarters,
            "bytes_per_call": peak / calls,
        }
        if impl == "sqs-rpc":
            client.close()  # fails every pending call: they are finished
            finished = sum(f.exception(timeout=60) is not None for f in futures)
            futures.clear()
            gc.collect()
            result["finished_by_close"] = finished
            result["retained_bytes_after_finish"] = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        return result
    finally:
        client.close()
        for url in parking:
            sqs.delete_queue(QueueUrl=url)


PHASES = ("sequential", "1", "8", "32", "128", "cpu", "memory")


def run_implementation(
    impl: str,
    endpoint: str,
    quick: bool,
    memory_calls: int,
    only: frozenset[str] = frozenset(PHASES),
    *,
    sqs_pid: int | None = None,
    scale: int = 1,
) -> dict[str, Any]:
    admin = _sqs(endpoint)
    queue_url = admin.create_queue(QueueName=f"bench-{impl}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    server = ServerProcess(impl, endpoint, queue_url)
    client_sqs = _sqs(endpoint, pool=140)
    counter = RequestCounter.attach(client_sqs)
    client = _make_client(impl, client_sqs)
    phases: list[Phase] = []
    try:
        for i in range(5):  # warm-up: reply queue, connections
            client.call(queue_url, {"i": -10 - i}, timeout=60)
        plan = [("sequential", 1, 10 if quick else 200 * scale)] if "sequential" in only else []
        plan += [
            (f"{c} callers", c, max(c, 20) if quick else max(300, 4 * c) * scale)
            for c in (1, 8, 32, 128)
            if str(c) in only
        ]
        next_id = 0
        pids = {"sqs": sqs_pid, "server": server.pid, "client": os.getpid()}
        for name, callers, calls in plan:
            c0, s0 = counter.snapshot(), server.counts()
            cpu0 = {role: _cpu_seconds(pid) for role, pid in pids.items()}
            phase = _run_phase(
                name, client, queue_url, callers=callers, calls=calls, first_id=next_id
            )
            next_id += calls
            for role, pid in pids.items():
                before, after = cpu0[role], _cpu_seconds(pid)
                if before is not None and after is not None and phase.seconds:
                    phase.cpu_per_second[role] = (after - before) / phase.seconds
            phase.client_requests = _diff(counter.snapshot(), c0)
            phase.server_requests = _diff(server.counts(), s0)
            phases.append(phase)
            print(
                f"  {impl:8} {name:12} {phase.calls_per_second:7.1f} calls/s  "
                f"p50 {phase.percentile(50):7.1f} ms  {phase.requests_per_call():.2f} req/call"
                f"  errors {phase.errors}  wrong {phase.wrong_replies}  CPU s/s "
                + " ".join(f"{role} {v:.2f}" for role, v in phase.cpu_per_second.items()),
                flush=True,
            )
        cpu = (
            _cpu_while_waiting(client, queue_url, 0.5 if quick else 2.0) if "cpu" in only else None
        )
    finally:
        client.close()
        server.stop()
        admin.delete_queue(QueueUrl=queue_url)
    memory = _memory(impl, endpoint, memory_calls) if "memory" in only else None
    return {
        "phases": [p.summary() for p in phases],
        "client_cpu_seconds_per_second": cpu,
        "memory": memory,
        "errors": sum(p.errors for p in phases),
        "wrong_replies": sum(p.wrong_replies for p in phases),
    }


def _table(results: dict[str, dict[str, Any]]) -> str:
    base, ours = results["baseline"], results["sqs-rpc"]
    rows: list[tuple[str, float, float]] = []
    for b, o in zip(base["phases"], ours["phases"], strict=True):
        if b["name"] == "sequential":
            for q in (50, 90, 99):
                rows.append((f"sequential p{q} ms", b[f"p{q}_ms"], o[f"p{q}_ms"]))
        else:
            rows.append((f"{b['name']}: calls/s", b["calls_per_second"], o["calls_per_second"]))
            rows.append((f"{b['name']}: p50 ms", b["p50_ms"], o["p50_ms"]))
            rows.append((f"{b['name']}: p99 ms", b["p99_ms"], o["p99_ms"]))
            if "sqs" in b["cpu_per_second"] and "sqs" in o["cpu_per_second"]:
                rows.append(
                    (
                        f"{b['name']}: SQS server CPU s/s",
                        b["cpu_per_second"]["sqs"],
                        o["cpu_per_second"]["sqs"],
                    )
                )
        rows.append(
            (f"{b['name']}: SQS requests/call", b["requests_per_call"], o["requests_per_call"])
        )
    if ours["client_cpu_seconds_per_second"] is not None:
        rows.append(
            (
                "client CPU s/s, waiting",
                base["client_cpu_seconds_per_second"],
                ours["client_cpu_seconds_per_second"],
            )
        )
    if ours["memory"] is not None:
        rows.append(
            (
                "heap bytes per in-flight call",
                base["memory"]["bytes_per_call"],
                ours["memory"]["bytes_per_call"],
            )
        )
    lines = [f"{'metric':36} {'baseline':>10} {'sqs-rpc':>10} {'ratio':>7}"]
    for name, b_value, o_value in rows:
        ratio = o_value / b_value if b_value else float("nan")
        lines.append(f"{name:36} {b_value:10.3f} {o_value:10.3f} {ratio:7.2f}")
    if ours["memory"] is not None:
        memory = ours["memory"]
        lines.append(
            f"sqs-rpc heap at each quarter of {memory['calls']} sends: "
            f"{memory['heap_bytes_at_each_quarter']} bytes; {memory['in_flight_at_peak']} in "
            f"flight after the last; retained after they finished: "
            f"{memory['retained_bytes_after_finish']} bytes"
        )
    lines.append(
        f"errors: baseline {base['errors']}, sqs-rpc {ours['errors']}; wrong replies: "
        f"baseline {base['wrong_replies']}, sqs-rpc {ours['wrong_replies']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke test")
    parser.add_argument("--json", type=Path, help="where to write the JSON results")
    parser.add_argument(
        "--memory-calls",
        type=int,
        help="calls in flight in the memory phase (default 10,000; 300 with --quick)",
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=1,
        help="multiply the calls of the latency and throughput phases (default 1: 200 "
        "sequential, 300 or 4 per caller concurrent); for a fast SQS, where 300 calls last "
        "half a second",
    )
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=PHASES,
        default=list(PHASES),
        help="run only these phases (numbers: concurrent callers); default: all",
    )
    args = parser.parse_args(argv)
    external = os.environ.get("SQS_RPC_TEST_ENDPOINT")
    sqs_server: subprocess.Popen[str] | None = None
    if external:
        # Another SQS-compatible server (the test suite's variable; fauxqs's runner sets it,
        # and SQS_RPC_TEST_SERVER_PID so that its CPU is measured too).
        endpoint = external
        pid = os.environ.get("SQS_RPC_TEST_SERVER_PID")
        sqs_pid = int(pid) if pid else None
        described = f"{os.environ.get('SQS_RPC_TEST_SERVER', 'external')}, SQS_RPC_TEST_ENDPOINT"
    else:
        sqs_server = subprocess.Popen(
            [sys.executable, "-m", "tests.support.sqs_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert sqs_server.stdout is not None
        endpoint = sqs_server.stdout.readline().strip()
        sqs_pid = sqs_server.pid
        described = "moto, separate process"
    try:
        print(f"SQS-compatible server: {endpoint} ({described})", flush=True)
        memory_calls = args.memory_calls or (300 if args.quick else 10_000)
        results = {
            impl: run_implementation(
                impl,
                endpoint,
                args.quick,
                memory_calls,
                frozenset(args.phases),
                sqs_pid=sqs_pid,
                scale=args.scale,
            )
            for impl in IMPLEMENTATIONS
        }
    finally:
        if sqs_server is not None:
            assert sqs_server.stdin is not None
            sqs_server.stdin.close()
            sqs_server.wait(30)
    report = {
        "command": " ".join(["python -m benchmarks.run", *(argv or sys.argv[1:])]),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "sqs_server": described,
        "results": results,
    }
    path = args.json or RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(_table(results))
    print(f"JSON: {path}")
    bad = sum(r["errors"] + r["wrong_replies"] for r in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
