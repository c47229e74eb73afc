"""The sample outputs in docs/ come from runs: a run today still has their shape.

A sample's numbers (timings, ports, counts, queue ids) vary from run to run; its lines and
labels do not. Each test runs the command and compares the two with the numbers masked.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The lines that list SQS operations depend on timing (a ChangeMessageVisibilityBatch or a
# lone DeleteMessage may appear): only their label is compared.
_LABEL_ONLY = re.compile(r"^(\s*(client|server):)")


def doc_sample(page: str, name: str) -> list[str]:
    """The code block after ``<!-- sample: NAME -->`` in docs/PAGE."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    match = re.search(rf"<!-- sample: {re.escape(name)} -->\n```\n(.*?)\n```", text, re.DOTALL)
    assert match, f"docs/{page} has no sample {name!r}"
    return match[1].splitlines()


def shape(line: str) -> str:
    """The line with what varies between runs masked."""
    label = _LABEL_ONLY.match(line)
    if label:
        return label[1]
    line = re.sub(r"[0-9a-f]{12}", "<id>", line)
    return re.sub(r"\d+(\.\d+)?", "<n>", line)


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
