"""Every docs page is reachable, and every option documented (the site build: tests/system)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    pages = {path.name for path in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert pages <= set(re.findall(r"\(docs/([\w-]+\.md)", readme))
    assert pages <= set(re.findall(r"\(([\w-]+\.md)", index))


# Where each public constructor's options are documented: every keyword must appear there with
# its default, so the configuration reference cannot fall behind the code.
OPTION_PAGES = {
    "client.md": "RpcClient",
    "asyncio.md": "AsyncRpcClient",
    "server.md": "MessagePoller",
    "operations.md": "Sweeper",
    "testing.md": "EmbeddedSqs",
}
# Defaults the docs name by what they mean rather than by their Python value.
DOCUMENTED_AS = {
    "codec": ["JsonCodec()"],
    "reply_to_allowed": ["the default reply policy"],
    "visibility_timeout": ["the queue's `VisibilityTimeout`"],
    "heartbeat_interval": ["60.0"],
    "visibility_extension_interval": ["a third of the visibility timeout"],
}


def _default_spellings(name: str, default: object) -> list[str]:
    spellings = list(DOCUMENTED_AS.get(name, []))
    if default is None:
        spellings += ["None", "none"]
    elif isinstance(default, bool):
        spellings += [str(default), "off" if not default else "on"]
    elif isinstance(default, int):
        spellings += [str(default), f"{default:,}", f"{default:_}"]
    elif isinstance(default, float):
        spellings += [repr(default), f"{default:g}"]
    elif isinstance(default, str):
        spellings += [f'"{default}"', repr(default)]
    return spellings


def _blocks(page: str) -> list[str]:
    """Table rows, one each, and paragraphs: the units an option and its default share."""
    blocks: list[str] = []
    for paragraph in re.split(r"\n\s*\n", page):
        lines = paragraph.splitlines()
        rows = [line for line in lines if line.lstrip().startswith("|")]
        blocks += rows if rows else ["\n".join(lines)]
    return blocks


def _options(target: object) -> dict[str, object]:
    import inspect

    signature = inspect.signature(target)  # type: ignore[arg-type]
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if name not in {"self", "handler", "queue_url", "client", "options", "poller_options"}
        and parameter.kind is not parameter.VAR_KEYWORD
    }


@pytest.mark.parametrize("page", sorted(OPTION_PAGES))
def test_every_option_is_documented_with_its_default(page: str) -> None:
    import sqs_rpc

    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    blocks = _blocks(text)
    missing = []
    for name, default in _options(getattr(sqs_rpc, OPTION_PAGES[page])).items():
        mentioning = [b for b in blocks if f"`{name}`" in b or f"`{name}=" in b]
        spellings = _default_spellings(name, default)
        if not any(s in b for b in mentioning for s in spellings):
            missing.append(f"{name} (default {default!r})")
    assert not missing, f"docs/{page} lacks these options with their defaults: {missing}"


def test_rpc_test_server_options_are_documented() -> None:
    from sqs_rpc.testing import rpc_test_server

    blocks = _blocks((ROOT / "docs" / "testing.md").read_text(encoding="utf-8"))
    for name, default in _options(rpc_test_server).items():
        mentioning = [b for b in blocks if f"`{name}`" in b]
        spellings = _default_spellings(name, default)
        assert any(s in b for b in mentioning for s in spellings), name


def test_every_cli_option_is_documented() -> None:
    import argparse

    from sqs_rpc._cli.main import _parser

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    parser = _parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = {
        f"{command} {option}"
        for command, sub in commands.choices.items()
        for action in sub._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help" and option not in text
    }
    assert not missing, f"docs/cli.md does not mention: {sorted(missing)}"
