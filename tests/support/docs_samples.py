"""The sample outputs in docs/: find one, and mask what varies between runs.

A sample's numbers (timings, ports, counts, queue ids) vary from run to run. Its lines and
labels do not. Tests run the command and compare the shapes of the two outputs.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["doc_sample", "shape"]

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
