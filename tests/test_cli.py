"""The sqs-rpc command: in-process through main(argv), and once as a real subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sqs_rpc._cli import EXIT_OK, EXIT_USAGE, main


@pytest.mark.embedded_server
@pytest.mark.timeout(120)
def test_demo_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--calls", "40", "--concurrency", "4"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "40 ok of 40, 0 errors, 0 wrong replies" in out
    assert "per call" in out
    assert "deleted on close" in out
    assert "demo OK" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USAGE
    assert main(["no-such-command"]) == EXIT_USAGE
    assert main(["demo", "--calls", "0"]) == EXIT_USAGE
    assert "--calls" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == EXIT_OK
    assert "demo" in capsys.readouterr().out


@pytest.mark.embedded_server
@pytest.mark.timeout(120)
def test_demo_as_a_subprocess() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sqs_rpc", "demo", "--calls", "20", "--concurrency", "4"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "demo OK" in result.stdout
