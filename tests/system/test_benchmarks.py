"""The benchmark suite runs and every reply in it is right (speed is not asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.embedded_server
@pytest.mark.timeout(300)
def test_quick_benchmark_runs_with_correct_replies(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--json", str(out)],
        cwd=ROOT,
        # The suite's own moto (an embedded_server test), whatever endpoint this run targets.
        env={k: v for k, v in os.environ.items() if not k.startswith("SQS_RPC_TEST_")},
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    for impl in ("baseline", "sqs-rpc"):
        data = report["results"][impl]
        assert data["errors"] == 0
        assert data["wrong_replies"] == 0
        assert [p["callers"] for p in data["phases"]] == [1, 1, 8, 32, 128]
        assert all(p["calls"] > 0 for p in data["phases"])
        if sys.platform == "linux":  # read from /proc: which process is the bottleneck
            assert all(
                set(p["cpu_per_second"]) == {"sqs", "server", "client"} for p in data["phases"]
            )
    assert "ratio" in result.stdout
