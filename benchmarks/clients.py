"""The two sides of each implementation: the callers' client here, the RPC server apart.

:class:`Side` holds one implementation's client (in this process, with a
:class:`~sqs_rpc.RequestCounter` on its boto3 client) and its :class:`ServerProcess`, against
one request queue. The suite keeps both implementations' sides up for a whole profile and
alternates blocks of calls between them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from sqs_rpc import RequestCounter, RpcClient

from .baseline import BaselineClient

IMPLEMENTATIONS = ("sqs-rpc", "baseline")  # A, B: the order of the paired blocks
ROOT = Path(__file__).resolve().parent.parent


def sqs_client(endpoint: str, pool: int = 10) -> Any:
    """A boto3 SQS client for the benchmark's endpoint, with ``pool`` keep-alive connections."""
    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    return session.client("sqs", endpoint_url=endpoint, config=Config(max_pool_connections=pool))


def make_client(impl: str, sqs: Any) -> Any:
    return BaselineClient(sqs) if impl == "baseline" else RpcClient(sqs_client=sqs)


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
            cwd=ROOT,
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{impl} server did not start")

    @property
    def pid(self) -> int:
        return self._proc.pid

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """(requests, billed requests) by operation so far."""
        self._sequence += 1
        self._proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                data = json.loads(self._counts.read_text())
                if data["sequence"] >= self._sequence:
                    return dict(data["counts"]), dict(data["billed"])
            except (FileNotFoundError, json.JSONDecodeError):
                pass
            # Polling a file the child writes on SIGUSR1: there is no event to wait on.
            time.sleep(0.01)
        raise RuntimeError("the server did not report its counts")

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class Side:
    """One implementation, ready for calls: its request queue, server process and client."""

    def __init__(self, impl: str, endpoint: str) -> None:
        self.impl = impl
        self._admin = sqs_client(endpoint)
        self.queue_url: str = self._admin.create_queue(
            QueueName=f"bench-{impl}-{uuid.uuid4().hex[:8]}"
        )["QueueUrl"]
        self.server = ServerProcess(impl, endpoint, self.queue_url)
        sqs = sqs_client(endpoint, pool=140)
        self.counter = RequestCounter.attach(sqs)
        self.client = make_client(impl, sqs)
        self.next_id = 0

    def warm_up(self, calls: int = 5) -> None:
        """The reply queue, the threads and the connections, before anything is measured."""
        for i in range(calls):
            reply = self.client.call(self.queue_url, {"i": -10 - i}, timeout=60)
            if reply != {"i": -10 - i}:
                raise RuntimeError(f"{self.impl}: wrong reply in the warm-up: {reply!r}")

    def close(self) -> None:
        # Stop order: the client first (its close ends its long poll and deletes its reply
        # queue), then the server process, then the request queue nothing reads any more.
        try:
            self.client.close()
        finally:
            self.server.stop()
            self._admin.delete_queue(QueueUrl=self.queue_url)
