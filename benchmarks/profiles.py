"""The SQS servers the suite runs on, one profile each; every profile starts its own.

- ``moto``: moto's server (Python) in its own process; an SQS that spends 6-12 ms of its own
  CPU per call and caps every implementation.
- ``fauxqs``: fauxqs (Node) in its own process; a fast local SQS, where the RPC processes'
  own CPU shows.
- ``aws-like``: fauxqs behind ``tests/support/latency_proxy.py`` (its own process too): SQS
  over a network, about 10 ms a request, no CPU of the callers' while it waits.

Each profile yields its endpoint and the pids of its processes (``sqs``, and ``proxy`` for
``aws-like``), whose CPU the suite reads from ``/proc``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.fauxqs import FauxqsServer
from tests.support.latency_proxy import LatencyProxyProcess

from .clients import sqs_client

PROFILES = ("moto", "fauxqs", "aws-like")
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class NetworkModel:
    """The latency proxy's settings for ``aws-like`` (seconds)."""

    delay: float = 0.010
    jitter: float = 0.001
    seed: int = 0


@dataclass
class RunningProfile:
    name: str
    endpoint: str
    description: str
    pids: dict[str, int] = field(default_factory=dict)
    # aws-like: what the proxy really adds to a request's round trip, measured at start.
    added_latency_ms: dict[str, float] = field(default_factory=dict)


@contextmanager
def _moto() -> Iterator[tuple[str, int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.sqs_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        if not endpoint.startswith("http://"):
            raise RuntimeError("moto's server did not start")
        yield endpoint, process.pid
    finally:
        assert process.stdin is not None
        process.stdin.close()  # sqs_process serves until its stdin closes
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def _round_trip_ms(endpoint: str, n: int) -> float:
    """Median milliseconds of a cheap request (GetQueueUrl) on one kept-alive connection."""
    sqs = sqs_client(endpoint, pool=1)
    sqs.create_queue(QueueName="bench-calibration")
    times = []
    for _ in range(n):
        started = time.perf_counter()
        sqs.get_queue_url(QueueName="bench-calibration")
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return times[len(times) // 2]


@contextmanager
def start_profile(name: str, network: NetworkModel) -> Iterator[RunningProfile]:
    """Start the profile's servers; stop them on exit."""
    if name == "moto":
        with _moto() as (endpoint, pid):
            yield RunningProfile(
                name, endpoint, "moto 5 server (Python), own process", {"sqs": pid}
            )
        return
    if name not in ("fauxqs", "aws-like"):
        raise ValueError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    with FauxqsServer() as fauxqs:
        assert fauxqs.pid is not None
        if name == "fauxqs":
            yield RunningProfile(
                name, fauxqs.endpoint_url, "fauxqs (Node), own process", {"sqs": fauxqs.pid}
            )
            return
        with LatencyProxyProcess(
            fauxqs.endpoint_url, delay=network.delay, jitter=network.jitter, seed=network.seed
        ) as proxy:
            assert proxy.pid is not None
            direct = _round_trip_ms(fauxqs.endpoint_url, 40)
            proxied = _round_trip_ms(proxy.endpoint_url, 40)
            yield RunningProfile(
                name,
                proxy.endpoint_url,
                f"fauxqs behind the latency proxy ({network.delay * 1000:g} ms per request "
                f"+- {network.jitter * 500:g} ms, seed {network.seed}), each its own process",
                {"sqs": fauxqs.pid, "proxy": proxy.pid},
                {
                    "direct_p50_ms": direct,
                    "proxied_p50_ms": proxied,
                    "added_p50_ms": proxied - direct,
                },
            )
