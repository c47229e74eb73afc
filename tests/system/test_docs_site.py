"""The documentation site builds strict, works offline, and documents every public name.

A full mkdocs build costs about 10 s of CPU: it runs in the system tier (once: it needs no SQS
endpoint), and CI builds the site strict on its own before any test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.sqs_independent


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation site, built strict once for this module's tests."""
    pytest.importorskip("mkdocs", reason="install the docs extra: pip install -e '.[docs]'")
    pytest.importorskip("material", reason="install the docs extra: pip install -e '.[docs]'")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    site_dir = tmp_path_factory.mktemp("docs") / "site"
    config = load_config(str(ROOT / "mkdocs.yml"), strict=True, site_dir=str(site_dir))
    build(config)  # strict: a broken link, a page missing from nav or an include fails here
    return site_dir


def test_mkdocs_build_is_strict_clean(site: Path) -> None:
    html = (site / "examples" / "index.html").read_text(encoding="utf-8")
    assert "asyncio.gather" in html  # examples/*.py are included, not retyped
    assert "include: examples" not in html


# A page loads nothing from another host: no CDN script, stylesheet or font.
_EXTERNAL = re.compile(
    r"<(?:script|link)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//[^>]*>|@import\s+url\(\s*[\"']?(?:https?:)?//",
    re.IGNORECASE,
)


def test_the_site_works_offline(site: Path) -> None:
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        html = page.read_text(encoding="utf-8")
        found = [m[0] for m in _EXTERNAL.finditer(html)]
        # A link to another site is fine; loading a resource from one is not.
        loading = [tag for tag in found if "<script" in tag or "stylesheet" in tag or "font" in tag]
        assert not loading, f"{page.relative_to(site)} loads {loading}"
        assert "fonts.googleapis.com" not in html, page
    for css in site.rglob("*.css"):
        text = css.read_text(encoding="utf-8")
        assert not re.search(r"url\(\s*[\"']?(?:https?:)?//", text), css


def test_the_diagram_is_rendered_by_the_local_mermaid(site: Path) -> None:
    html = (site / "concepts" / "index.html").read_text(encoding="utf-8")
    # superfences turns the fence into a block for mermaid.js, not into highlighted code.
    assert re.search(r'<pre class="mermaid"><code>(%%.*?%%\s*)?sequenceDiagram', html, re.DOTALL)
    assert 'src="../javascripts/mermaid.min.js"' in html
    script = site / "javascripts" / "mermaid.min.js"
    assert script.stat().st_size > 1_000_000  # the real library, vendored
    assert ".mermaid=" in script.read_text(encoding="utf-8")[:2000]  # it defines the global


def test_the_api_reference_documents_every_public_name(site: Path) -> None:
    import sqs_rpc
    import sqs_rpc.aws_lambda
    import sqs_rpc.testing

    html = (site / "api" / "index.html").read_text(encoding="utf-8")
    for module in (sqs_rpc, sqs_rpc.testing, sqs_rpc.aws_lambda):
        missing = [
            name
            for name in module.__all__
            if not name.startswith("_") and f'id="{module.__name__}.{name}"' not in html
        ]
        assert not missing, f"the API reference lacks {module.__name__}: {missing}"
    assert ":class:" not in html  # Sphinx roles are rewritten (tools/griffe_docstrings.py)
    assert "Example::" not in html
