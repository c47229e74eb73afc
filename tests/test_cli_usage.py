"""The sqs-rpc command without SQS: exit codes, help, version, module layout."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import sqs_rpc
from sqs_rpc import ExitCode
from sqs_rpc._cli.main import main

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "sqs_rpc" / "_cli"


# -- exit codes --------------------------------------------------------------------------------


def test_exit_codes_keep_their_values() -> None:
    assert {code.name: code.value for code in ExitCode} == {
        "OK": 0,
        "FAILURE": 1,
        "USAGE": 2,
        "TIMEOUT": 3,
        "REMOTE_ERROR": 4,
        "SQS_ERROR": 5,
        "PARTIAL": 6,
        "INTERRUPTED": 130,
    }
    assert all(code.meaning for code in ExitCode)


def _help(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    assert main([*command, "--help"]) == ExitCode.OK
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare words


def _codes_in_help(text: str) -> dict[int, str]:
    return {int(v): name for v, name in re.findall(r"\b(\d+) ([A-Z_]{2,})\b", text)}


def test_help_ends_with_the_exit_code_table(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys)
    assert "exit codes:" in text
    for code in ExitCode:
        assert f"{code.value} {code.name} {code.meaning}" in text


@pytest.mark.parametrize(
    ("command", "codes"),
    [
        ("sweep", {0, 1, 2, 5, 6, 130}),
        ("queues", {0, 1, 2, 5, 6, 130}),
        ("call", {0, 1, 2, 3, 4, 5, 130}),
        ("publish", {0, 1, 2, 5, 130}),
        ("serve", {0, 1, 2, 5}),
    ],
)
def test_command_help_lists_the_codes_it_returns(
    command: str, codes: set[int], capsys: pytest.CaptureFixture[str]
) -> None:
    listed = _codes_in_help(_help(capsys, command))
    assert listed == {code: ExitCode(code).name for code in codes}


def test_docs_exit_code_table_matches_the_enum() -> None:
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = page.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip().replace("`", "") for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if re.match(r"\| \d+ ", line)
    ]
    expected = [[str(c.value), f"ExitCode.{c.name}", c.meaning] for c in ExitCode]
    assert rows == expected


def test_sweeper_cron_script_names_the_codes_sweep_returns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = (ROOT / "examples" / "sweeper_cron.sh").read_text(encoding="utf-8")
    comment = script.split("# Exit status", 1)[1].split("set -eu", 1)[0]
    named = {int(n) for n in re.findall(r"(?:[:,]|^#) (\d+) ", comment, re.MULTILINE)}
    returned = set(_codes_in_help(_help(capsys, "sweep"))) - {ExitCode.INTERRUPTED}
    assert named == returned


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == ExitCode.OK
    assert capsys.readouterr().out == f"sqs-rpc {sqs_rpc.__version__}\n"


# -- module layout -----------------------------------------------------------------------------


def _cli_imports(path: Path) -> set[str]:
    """The sqs_rpc._cli modules that ``path`` imports (relative or absolute)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                names.add(node.module)
            elif node.level == 1:
                names.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("sqs_rpc._cli."):
                names.add(node.module.removeprefix("sqs_rpc._cli."))
    return names


def test_cli_modules_are_small_and_import_as_a_tree() -> None:
    modules = {path.stem: path for path in CLI.glob("*.py") if path.stem != "__init__"}
    for name, path in modules.items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, f"_cli/{name}.py has {lines} lines"
    graph = {name: _cli_imports(path) & set(modules) for name, path in modules.items()}
    assert not any("main" in imported for imported in graph.values())
    assert graph["errors"] == set()
    assert graph["common"] <= {"errors"}

    def reaches(start: str, target: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            n == target or (n not in seen and reaches(n, target, seen | {n})) for n in graph[start]
        )

    assert not [name for name in graph if reaches(name, name)], graph
