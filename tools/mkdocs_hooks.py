"""mkdocs hook: include the runnable examples in the docs instead of retyping them.

A line ``<!-- include: examples/NAME.py -->`` in a page becomes a code block (Python, shell or
YAML, by the file's extension) with the file's text; the path is relative to the repository
root. On GitHub the line is an invisible comment, and the page's prose names the file. A
missing file fails the build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

INCLUDE = re.compile(r"^<!-- include: (?P<path>[\w./-]+) -->$", re.MULTILINE)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    root = Path(config["config_file_path"]).resolve().parent

    def include(match: re.Match[str]) -> str:
        path = (root / match["path"]).resolve()
        if root not in path.parents or not path.is_file():
            raise PluginError(f"{page.file.src_path}: cannot include {match['path']!r}")
        text = path.read_text(encoding="utf-8").rstrip("\n")
        language = {".py": "python", ".sh": "bash", ".yaml": "yaml"}.get(path.suffix, "")
        return f"`{match['path']}`:\n\n```{language}\n{text}\n```"

    return INCLUDE.sub(include, markdown)
