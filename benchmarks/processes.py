"""Calls/s of a CPU-bound handler on 1 and on 2 poller processes (``PollerPool``).

    python -m benchmarks.processes [--runs 3] [--duration 30] [--work 1000000] [--window 8]
                                   [--sqs fauxqs|moto]

One process runs Python on one core (the GIL): a CPU-bound handler is bounded by it whatever
its ``concurrency``. This runs the same handler (a pure-Python loop of ``--work`` iterations)
in a pool of 1 and of 2 processes, alternating (1, 2, 1, 2, ...) so that a change in the
machine's load hits both alike, each run ``--duration`` seconds with ``--window`` calls kept
in flight by one RpcClient, and prints every run, the medians and the ratio. The SQS server
runs in a process of its own: fauxqs (Node, ``python -m tests.support.fauxqs install``), or
moto's server (tests/support/sqs_process.py) with ``--sqs moto``, or SQS_RPC_TEST_ENDPOINT.
It shares the cores with the pool and costs CPU per call (moto about 40 ms, fauxqs under
1 ms on this suite's machine), which the pool's second process cannot have: each run prints
the SQS server's CPU too.
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
from contextlib import ExitStack
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


def _run(
    processes: int, queue_url: str, endpoint_url: str, args: argparse.Namespace, sqs_pid: int | None
) -> tuple[Run, float]:
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
        sqs_cpu = _cpu_seconds([sqs_pid]) if sqs_pid else 0.0
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
        sqs_cores = (_cpu_seconds([sqs_pid]) - sqs_cpu) / took if sqs_pid else float("nan")
    return Run(done / took, len(pids), cores), sqs_cores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per run")
    parser.add_argument("--work", type=int, default=1_000_000, help="loop iterations per call")
    parser.add_argument("--window", type=int, default=8, help="calls kept in flight")
    parser.add_argument(
        "--sqs", choices=("fauxqs", "moto"), default="fauxqs", help="the SQS server (fauxqs)"
    )
    args = parser.parse_args()
    with ExitStack() as stack:
        endpoint = os.environ.get("SQS_RPC_TEST_ENDPOINT")
        sqs_pid = None
        if not endpoint:
            endpoint, sqs_pid = _start_sqs(args.sqs, stack)
        _compare(endpoint, sqs_pid, args)


def _start_sqs(kind: str, stack: ExitStack) -> tuple[str, int]:
    """Start the SQS server in its own process, stopped with ``stack``; its endpoint and pid."""
    if kind == "fauxqs":
        from tests.support.fauxqs import FauxqsServer

        fauxqs = stack.enter_context(FauxqsServer())
        assert fauxqs.pid is not None
        return fauxqs.endpoint_url, fauxqs.pid
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.support.sqs_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stack.callback(server.wait, 30)
    stack.callback(server.stdin.close)  # type: ignore[union-attr]
    assert server.stdout is not None
    return server.stdout.readline().strip(), server.pid


def _compare(endpoint: str, sqs_pid: int | None, args: argparse.Namespace) -> None:
    """Alternate runs on 1 and 2 processes; print each run, the medians and the ratio."""
    queue_url = _sqs(endpoint).create_queue(QueueName=f"bench-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    print(f"cores: {os.cpu_count()}, work: {args.work} iterations, window {args.window}")
    results: dict[int, list[float]] = {1: [], 2: []}
    for run in range(args.runs):
        for processes in (1, 2):
            result, sqs_cores = _run(processes, queue_url, endpoint, args, sqs_pid)
            results[processes].append(result.rate)
            print(
                f"run {run + 1}: {processes} process(es): {result.rate:6.1f} calls/s, "
                f"{result.answered} answered, pool CPU {result.cores:.2f} cores, "
                f"SQS server {sqs_cores:.2f} cores, "
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
    print(f"2 vs 1: {two / one:.2f}x (medians); per pair {', '.join(f'{r:.2f}' for r in ratios)}")


if __name__ == "__main__":
    main()
