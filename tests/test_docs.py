"""The documentation site builds with no warning, and every page is reachable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_mkdocs_build_is_strict_clean(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="install the docs extra: pip install -e '.[docs]'")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    config = load_config(str(ROOT / "mkdocs.yml"), strict=True, site_dir=str(tmp_path / "site"))
    build(config)  # strict: a broken link, a page missing from nav or an include fails here
    html = (tmp_path / "site" / "examples" / "index.html").read_text(encoding="utf-8")
    assert "asyncio.gather" in html  # examples/*.py are included, not retyped
    assert "include: examples" not in html


def test_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    pages = {path.name for path in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert pages <= set(re.findall(r"\(docs/([\w-]+\.md)", readme))
    assert pages <= set(re.findall(r"\(([\w-]+\.md)", index))
