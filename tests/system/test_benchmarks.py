"""The benchmark suite runs on every profile and every reply in it is right.

Speed is not asserted here (a shared machine makes any bound either loose or flaky); the
figures are read in docs/performance.md. The latency proxy the ``aws-like`` profile runs on is
checked here too: it forwards whole requests, including chunked ones, and a long poll on one
connection does not hold up the others.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support.fauxqs import FAUXQS_DIR, FauxqsServer
from tests.support.latency_proxy import LatencyProxyProcess, _read_request

ROOT = Path(__file__).resolve().parents[2]
FAUXQS_INSTALLED = (FAUXQS_DIR / "node_modules" / ".bin" / "node").exists()
needs_fauxqs = pytest.mark.skipif(
    not FAUXQS_INSTALLED, reason="fauxqs is not installed: python -m tests.support.fauxqs install"
)


@pytest.mark.embedded_server
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "profile",
    [
        "moto",
        pytest.param("fauxqs", marks=needs_fauxqs),
        pytest.param("aws-like", marks=needs_fauxqs),
    ],
)
def test_quick_run_of_each_profile_has_only_right_replies(tmp_path: Path, profile: str) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.run", "--quick", "--repetitions", "1"),
            *("--profiles", profile, "--json", str(out)),
        ],
        cwd=ROOT,
        # The suite starts its own SQS servers, whatever endpoint this test run targets.
        env={k: v for k, v in os.environ.items() if not k.startswith("SQS_RPC_TEST_")},
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())["profiles"][profile]
    blocks = data["blocks"]
    # One block per phase and implementation (one repetition), in the paired order.
    assert [(b["phase"], b["impl"]) for b in blocks] == [
        (phase, impl)
        for phase in ("sequential", "8", "32", "128", "cpu")
        for impl in ("sqs-rpc", "baseline")
    ]
    for block in blocks:
        assert block["errors"] == 0, block
        assert block["wrong_replies"] == 0, block
        assert block["calls"] >= block["callers"]
        assert block["requests_per_call"] > 0  # both sides' requests were counted
        if sys.platform == "linux":  # every process's CPU is measured
            roles = {"sqs", "server", "client"} | ({"proxy"} if profile == "aws-like" else set())
            assert set(block["cpu_seconds"]) == roles
    assert {t["status"] for t in data["targets"]} <= {"met", "NOT met"}
    assert set(data["cost_per_million_calls"]) == {"sequential", "8", "32", "128"}
    costs = data["botocore_cpu_ms_per_request"]
    assert set(costs) == {"SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch"}
    assert all(ms > 0 for ms in costs.values())
    floor = data["botocore_floor_cpu_ms_per_call"]["32"]
    assert 0 < floor["sqs-rpc"]["client"] < floor["baseline"]["client"]  # batches cost less
    assert f"== {profile}" in result.stdout


def _sqs(endpoint: str, pool: int = 10) -> Any:
    return boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    ).client("sqs", endpoint_url=endpoint, config=Config(max_pool_connections=pool))


@pytest.mark.sqs_independent
@pytest.mark.timeout(120)
def test_the_own_cpu_benchmark_checks_every_reply_and_pairs_two_checkouts() -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.own_cpu", "--callers", "1", "4"),
            *("--calls", "40", "--runs", "1", "--against", str(ROOT)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = [line for line in result.stdout.splitlines() if " run 1 " in line]
    assert len(runs) == 4, result.stdout  # 2 caller counts x 2 checkouts
    assert all(line.endswith("wrong 0") for line in runs), result.stdout
    assert result.stdout.count("this / against per pair") == 2, result.stdout


@needs_fauxqs
@pytest.mark.timeout(60)
def test_a_long_poll_does_not_hold_up_requests_on_other_connections() -> None:
    with FauxqsServer() as fauxqs, LatencyProxyProcess(fauxqs.endpoint_url, seed=1) as proxy:
        sqs = _sqs(proxy.endpoint_url)
        polled = sqs.create_queue(QueueName=f"poll-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        other = sqs.create_queue(QueueName=f"other-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        with ThreadPoolExecutor(1) as pool:
            poll = pool.submit(sqs.receive_message, QueueUrl=polled, WaitTimeSeconds=20)
            # While the long poll holds its connection, other requests go through the proxy
            # on other connections and complete: were they queued behind it, the poll would
            # still be holding them here.
            for i in range(5):
                sqs.send_message(QueueUrl=other, MessageBody=str(i))
                received = sqs.receive_message(QueueUrl=other, WaitTimeSeconds=1)
                assert received["Messages"][0]["Body"] == str(i)
                sqs.delete_message(
                    QueueUrl=other, ReceiptHandle=received["Messages"][0]["ReceiptHandle"]
                )
            assert not poll.done()
            # And the long poll itself is forwarded both ways: a message ends it.
            sqs.send_message(QueueUrl=polled, MessageBody="wake")
            assert poll.result(timeout=15)["Messages"][0]["Body"] == "wake"


def test_requests_are_read_whole_whatever_their_framing() -> None:
    async def read(data: bytes) -> list[bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        requests = []
        while True:
            try:
                requests.append(await _read_request(reader))
            except asyncio.IncompleteReadError:
                return requests

    plain = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    chunked = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\nTrailer: t\r\n\r\n"
    )
    empty = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    # Keep-alive: several requests on one connection come out one by one, byte for byte.
    assert asyncio.run(read(plain + chunked + empty + plain)) == [plain, chunked, empty, plain]
