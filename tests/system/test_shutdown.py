"""Graceful shutdown under load: SIGTERM a real server process while calls are in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sqs_rpc import RpcClient
from tests.support.helpers import Endpoint, wait_for

SERVER = Path(__file__).resolve().parents[1] / "support" / "recording_server.py"


def _start(endpoint: Endpoint, queue_url: str, executions: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return subprocess.Popen(
        [
            sys.executable,
            str(SERVER),
            queue_url,
            str(executions),
            "--endpoint-url",
            endpoint.endpoint_url,
            "--region",
            endpoint.region_name,
            "--hold",
            "0.3",
            "--concurrency",
            "4",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def _lines(path: Path) -> list[str]:
    """The bodies executed, one per execution (each line is ``BODY PID RECEIVE_COUNT``)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [line.split(" ")[0] for line in lines]


@pytest.mark.timeout(120)
def test_sigterm_under_load_loses_nothing_and_runs_nothing_twice(
    endpoint: Endpoint, queue_url: str, sqs: Any, tmp_path: Path
) -> None:
    executions = tmp_path / "executions.txt"
    first = _start(endpoint, queue_url, executions)
    second: subprocess.Popen[str] | None = None
    try:
        with RpcClient(sqs_client=sqs) as client:
            futures = [client.call_async(queue_url, f"call-{i}", timeout=90) for i in range(24)]
            wait_for(lambda: len(_lines(executions)) >= 4, timeout=60)  # the server is busy
            first.send_signal(signal.SIGTERM)
            _, stderr = first.communicate(timeout=60)
            assert first.returncode == 0, stderr
            assert "SIGTERM received: stopping; waiting up to" in stderr
            started_by_first = len(_lines(executions))
            assert started_by_first < 24  # some calls were never started by the first server
            second = _start(endpoint, queue_url, executions)
            results = [f.result(timeout=90) for f in futures]
        assert [r["body"] for r in results] == [f"call-{i}" for i in range(24)]  # nothing lost
        lines = _lines(executions)
        assert sorted(lines) == sorted(f"call-{i}" for i in range(24))  # nothing ran twice
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()
