"""The sqs-rpc command without SQS: exit codes, help, version, argument errors, module layout."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import sqs_rpc
from sqs_rpc import ExitCode
from sqs_rpc._cli.main import main

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "sqs_rpc" / "_cli"
QUEUE = "http://127.0.0.1:9/123456789012/q"  # nothing listens on port 9
WHERE = ["--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"]


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


# -- argument errors name the option -----------------------------------------------------------


LIBRARY_KEYWORDS = re.compile(
    r"region_name|endpoint_url|wait_time_seconds|delay_seconds|max_deletions|sqs_client|"
    r"concurrency=|timeout=|prefix=|queue_url|get_queue_url|max_message_bytes"
)


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["call", QUEUE, "1", "--timeout", "0", *WHERE], "--timeout"),
        (["call", QUEUE, "1", "--timeout", "nan", *WHERE], "--timeout"),
        (["call", "orders", "1", *WHERE], "QUEUE_URL"),
        (["call", QUEUE, "1", "--endpoint-url", "localhost:4566"], "--endpoint-url"),
        (["publish", QUEUE, "1", "--delay", "901", *WHERE], "--delay"),
        (["serve", "m:C", "--queue-url", QUEUE, "--wait-time", "0", *WHERE], "--wait-time"),
        (["serve", "m:C", "--queue-url", QUEUE, "--concurrency", "0", *WHERE], "--concurrency"),
        (["serve", "m:C", "--queue-url", "orders", *WHERE], "--queue-url"),
        (["sweep", "--prefix", "", *WHERE], "--reply-queue-prefix/--prefix"),
        (["sweep", "--max-deletions", "-1", *WHERE], "--max-deletions"),
        (["queues", "--prefix", "", *WHERE], "--reply-queue-prefix/--prefix"),
        (["demo", "--calls", "0"], "--calls"),
    ],
)
def test_bad_option_values_name_the_option(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"argument {option}: " in err
    assert not LIBRARY_KEYWORDS.search(err), err


def test_missing_region_names_the_option(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    for command in (["call", QUEUE, "1"], ["publish", QUEUE, "1"], ["sweep"], ["queues"]):
        assert main([*command, "--endpoint-url", "http://127.0.0.1:9"]) == ExitCode.USAGE
    assert main(["demo", "--endpoint-url", "http://127.0.0.1:9"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.count("--region REGION") == 5
    assert not LIBRARY_KEYWORDS.search(err), err


def test_payload_too_large_names_no_library_keyword(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    payload = json.dumps("x" * (1024 * 1024))  # checked before anything is sent
    assert main(["publish", QUEUE, payload, *WHERE]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "over SQS's limit of 1,048,576 bytes" in err
    assert not LIBRARY_KEYWORDS.search(err), err


def test_argument_errors_print_json_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", QUEUE, "1", "--timeout", "-1", "--json", *WHERE]) == ExitCode.USAGE
    captured = capsys.readouterr()
    assert captured.err.startswith("usage: sqs-rpc call")
    document = json.loads(captured.out)
    assert document["exit_code"] == ExitCode.USAGE
    assert document["error"]["type"] == "UsageError"
    assert document["error"]["message"].startswith("argument --timeout: ")


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
