"""Checks on the repository's own files that no linter makes."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT_SUFFIXES = {".py", ".md", ".toml", ".ini", ".cfg", ".yml", ".yaml", ".txt", ".json", ""}
SKIPPED_PARTS = {".git", "node_modules", "site", "__pycache__"}
MARKER = re.compile(r"^(<{7}|>{7})( |$)|^={7}$", re.MULTILINE)


def _text_files() -> list[Path]:
    files = []
    for directory, subdirectories, names in os.walk(ROOT):
        # Pruned, not filtered: CI's virtual environments and node_modules hold many thousands.
        subdirectories[:] = [
            name
            for name in subdirectories
            if name not in SKIPPED_PARTS and not name.startswith(".venv")
        ]
        files += [Path(directory, name) for name in names if Path(name).suffix in TEXT_SUFFIXES]
    return files


def test_no_file_holds_a_merge_conflict_marker() -> None:
    # A CHANGELOG once kept two merges' markers for a day: nothing else would have noticed.
    marked = [
        str(path.relative_to(ROOT))
        for path in _text_files()
        if MARKER.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert len(_text_files()) > 100  # the walk found the repository
    assert marked == []
