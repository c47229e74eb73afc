"""A short soak (tools/soak/) keeps every invariant; tests/unit/test_soak.py tests its checks.

The short run uses the suite's SQS endpoint (moto's server, or SQS_RPC_TEST_ENDPOINT), two
server processes and four client processes, like the full 50,000-call run recorded in
docs/reliability.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import Endpoint
from tools.soak.mix import KINDS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_short_soak_keeps_every_invariant(endpoint: Endpoint, tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.soak",
            "--calls",
            "1000",
            # Short, so that the servers' reply caches are full (warm) within seconds and the
            # memory check has a window to judge.
            "--reply-cache-ttl",
            "5",
            # A fast SQS (fauxqs) ends the run seconds after warm-up: sample often enough
            # that the memory window still holds enough samples to judge.
            "--sample-interval",
            "0.1",
            "--endpoint-url",
            endpoint.endpoint_url,
            "--region",
            endpoint.region_name,
            "--workdir",
            str(tmp_path / "records"),
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["failures"] == []
    assert report["calls"] == {"started": 1000, "finished": 1000, "outcome_lines": 1000}
    assert report["lost"] == 0
    assert report["wrong"] == 0
    for kind in KINDS:  # every behaviour of the mix happened, with the outcome it must have
        row = report["by_kind"][kind]
        assert row["made"] > 0, kind
        assert row["outcomes"] == {row["expected"]: row["made"]}, kind
    assert report["executions"]["repeated_within_a_process"] == 0
    judged = {name: m for name, m in report["memory"].items() if "informative" not in name}
    assert len(judged) == 6
    # A 1,000-call run on a fast SQS may be too short (or its samples too bunched on a loaded
    # machine) to judge a process: that is "not judged" (None), never "grew" (False). The long
    # soak judges every process (docs/reliability.md).
    assert not any(m["flat"] is False for m in judged.values()), judged
    assert any(m["flat"] is True for m in judged.values()), judged
    assert "PASSED" in result.stdout
