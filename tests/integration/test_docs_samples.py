"""The sample outputs in docs/ come from runs: a run today still has their shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docs_samples import doc_sample, shape

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.embedded_server
@pytest.mark.timeout(120)
def test_demo_output_has_the_shape_of_the_docs_sample() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sqs_rpc", "demo", "--calls", "30", "--concurrency", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        first = [process.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        # Progress shows as it goes: the server is up before the demo ends.
        assert process.poll() is None, "the demo printed everything at the end"
        out, err = process.communicate(timeout=110)
    finally:
        process.kill()
        process.wait()
    lines = "".join([*first, out]).splitlines()
    assert process.returncode == 0, err
    assert err == "", "the demo warned or logged"
    assert [shape(line) for line in lines] == [
        shape(line) for line in doc_sample("testing.md", "sqs-rpc demo")
    ]
