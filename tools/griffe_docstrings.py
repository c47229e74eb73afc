"""griffe extension: the API reference reads the docstrings' Sphinx habits as Markdown.

The docstrings are written for ``help()`` and IDEs as well as for the site. Two habits of
theirs do not read as Markdown, and this extension rewrites them before griffe parses a
docstring (the source stays as it is):

- Roles such as ``:class:`~sqs_rpc.RpcClient``` become a link to that entry of the API page
  when it documents the name, and inline code otherwise.
- A line ending in ``::`` followed by an indented block (reST's literal block, used for the
  ``Example::`` sections) becomes a fenced Python block.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

from griffe import Extension, Object

__all__ = ["DocstringMarkdown"]

# The modules the API page renders: only their public names have an entry to link to.
_DOCUMENTED = ("sqs_rpc", "sqs_rpc.testing", "sqs_rpc.aws_lambda")
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj):`(?P<target>[^`]+)`")
_LITERAL = re.compile(
    r"^(?P<lead>[^\n]*?)::\n(?P<blank>\n+)(?P<block>(?:(?:[ \t]+[^\n]*)?\n)+?)(?=\S|\Z)",
    re.MULTILINE,
)


def _public_names() -> dict[str, str]:
    """Each documented public name, short and qualified, to its identifier on the API page."""
    import importlib

    names: dict[str, str] = {}
    for module_name in _DOCUMENTED:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            names[f"{module_name}.{name}"] = f"{module_name}.{name}"
            names.setdefault(name, f"{module_name}.{name}")
    return names


def _role(match: re.Match[str], names: dict[str, str]) -> str:
    target = match["target"].strip()
    shown = target.lstrip("~")
    if target.startswith("~"):
        shown = shown.rsplit(".", 1)[-1]
    identifier = names.get(target.lstrip("~").lstrip("."))
    if identifier is None:
        return f"`{shown}`"
    return f"[`{shown}`][{identifier}]"


def _literal(match: re.Match[str]) -> str:
    lead = match["lead"]
    # reST: "Example::" shows "Example:", and a lone "::" shows nothing. A one-word lead is
    # set in bold: "Example:" alone on a line would open a Google-style section instead.
    if not lead.strip():
        text = ""
    elif " " not in lead.strip():
        text = f"{lead[: len(lead) - len(lead.lstrip())]}**{lead.strip()}**"
    else:
        text = f"{lead}:"
    block = textwrap.dedent(match["block"]).strip("\n")
    return f"{text}\n\n```python\n{block}\n```\n\n"


def to_markdown(text: str, names: dict[str, str]) -> str:
    """The docstring ``text`` with roles and literal blocks written as Markdown."""
    # griffe strips the docstring: a literal block at its very end has no final newline.
    text = _LITERAL.sub(_literal, text + "\n").rstrip("\n")
    return _ROLE.sub(lambda match: _role(match, names), text)


class DocstringMarkdown(Extension):
    """Rewrites every docstring once the tree is complete (see the module's docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._names: dict[str, str] | None = None

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        self._rewrite(obj)

    def on_package(self, *, pkg: Object, **kwargs: Any) -> None:
        self._rewrite(pkg)  # on_object sees a package's members, not the package

    def _rewrite(self, obj: Object) -> None:
        if obj.docstring is None or getattr(obj.docstring, "_markdown", False):
            return
            return
        if self._names is None:
            self._names = _public_names()
        obj.docstring.value = to_markdown(obj.docstring.value, self._names)
        obj.docstring._markdown = True  # type: ignore[attr-defined]  # once, on_package too
