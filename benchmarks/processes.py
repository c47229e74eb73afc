"""Calls/s of a CPU-bound handler on 1 and on 2 poller processes (``PollerPool``).

    python -m benchmarks.processes [--runs 3] [--duration 30] [--work 1000000] [--window 8]

One process runs Python on one core (the GIL): a CPU-bound handler is bounded by it whatever
its ``concurrency``. This runs the same handler (a pure-Python loop of ``--work`` iterations)
in a pool of 1 and of 2 processes, alternating (1, 2, 1, 2, ...) so that a change in the
machine's load hits both alike, each run ``--duration`` seconds with ``--window`` calls kept
in flight by one RpcClient, and prints every run, the medians and the ratio. The SQS server
(moto) runs in a process of its own (tests/support/sqs_process.py), or is
SQS_RPC_TEST_ENDPOINT. It shares the cores with the pool: it costs CPU per call, so a
heavier ``--work`` shows the pool's scaling with less of the server's cost in it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import deque
from concurrent.futures import Future
from typing import Any

import boto3

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, PollerPool, RpcClient


class Busy(MessageHandler):
    """A CPU-bound handler: ``iterations`` rounds of pure Python, holding the GIL."""

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations

    def handle(self, message: IncomingMessage) -> Any:
        total = 0
        for i in range(self.iterations):
            total += i * i % 7
        return {"i": message.body, "total": total, "pid": os.getpid()}


@dataclasses.dataclass(frozen=True)
class BusyPoller:
    """Builds, in each child, a MessagePoller running :class:`Busy`."""

    queue_url: str
    endpoint_url: str
    iterations: int
    concurrency: int = 4

    def __call__(self) -> MessagePoller:
        return MessagePoller(
            self.queue_url,
            Busy(self.iterations),
            sqs_client=_sqs(self.endpoint_url),
            concurrency=self.concurrency,
            wait_time_seconds=1,
        )


def _sqs(endpoint_url: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    return session.client("sqs", endpoint_url=endpoint_url)


def _cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU seconds the processes used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class Run:
    rate: float  # calls/s
    answered: int  # processes that answered
    cores: float  # CPU seconds per second the pool's children used


def _run(processes: int, queue_url: str, endpoint_url: str, args: argparse.Namespace) -> Run:
    """One run of ``args.duration`` seconds."""
    factory = BusyPoller(queue_url, endpoint_url, args.work)
    with (
        PollerPool(factory, processes=processes, graceful_timeout=30) as pool,
        RpcClient(sqs_client=_sqs(endpoint_url)) as client,
    ):
        deadline = time.monotonic() + 120
        while len(pool.pids()) < processes and time.monotonic() < deadline:
            time.sleep(0.1)
        for i in range(args.window):  # warm up: connections, the reply queue
            client.call(queue_url, i, timeout=60)
        in_flight: deque[Future[Any]] = deque()
        done, pids = 0, set()
        children = pool.pids()
        cpu = _cpu_seconds(children)
        began = time.monotonic()
        end = began + args.duration
        while True:
            while len(in_flight) < args.window and time.monotonic() < end:
                in_flight.append(client.call_async(queue_url, done, timeout=60))
            if not in_flight:
                break
            pids.add(in_flight.popleft().result()["pid"])
            done += 1
        took = time.monotonic() - began
        cores = (_cpu_seconds(children) - cpu) / took
    return Run(done / took, len(pids), cores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per run")
    parser.add_argument("--work", type=int, default=1_000_000, help="loop iterations per call")
    parser.add_argument("--window", type=int, default=8, help="calls kept in flight")
    args = parser.parse_args()
    server: subprocess.Popen[str] | None = None
    endpoint = os.environ.get("SQS_RPC_TEST_ENDPOINT")
    if not endpoint:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.support.sqs_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        endpoint = server.stdout.readline().strip()
    try:
        queue_url = _sqs(endpoint).create_queue(QueueName=f"bench-{uuid.uuid4().hex[:12]}")[
            "QueueUrl"
        ]
        print(f"cores: {os.cpu_count()}, work: {args.work} iterations, window {args.window}")
        results: dict[int, list[float]] = {1: [], 2: []}
        for run in range(args.runs):
            for processes in (1, 2):
                result = _run(processes, queue_url, endpoint, args)
                results[processes].append(result.rate)
                print(
                    f"run {run + 1}: {processes} process(es): {result.rate:6.1f} calls/s, "
                    f"{result.answered} answered, pool CPU {result.cores:.2f} cores, "
                    f"{result.rate / max(result.cores, 1e-9):.1f} calls per CPU-second, "
                    f"load average {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        one, two = (statistics.median(results[n]) for n in (1, 2))
        for n, rates in results.items():
            print(
                f"{n} process(es): median {statistics.median(rates):.1f} calls/s, "
                f"min {min(rates):.1f}, max {max(rates):.1f}"
            )
        ratios = [b / a for a, b in zip(results[1], results[2], strict=True)]
        print(
            f"2 vs 1: {two / one:.2f}x (medians); per pair {', '.join(f'{r:.2f}' for r in ratios)}"
        )
    finally:
        if server is not None:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(30)


if __name__ == "__main__":
    main()
