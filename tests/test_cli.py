"""The sqs-rpc command: in-process through main(argv), and once as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from sqs_rpc._cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from sqs_rpc._reply_queue import HEARTBEAT_TAG, RETENTION_TAG

from .conftest import Endpoint


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


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.mark.usefixtures("aws_env")
def test_sweep_json_dry_run_then_for_real(
    endpoint: Endpoint, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"cli{uuid.uuid4().hex[:8]}-"
    orphan = sqs.create_queue(
        QueueName=prefix + "orphan", tags={HEARTBEAT_TAG: "1", RETENTION_TAG: "60"}
    )["QueueUrl"]
    foreign = sqs.create_queue(QueueName=prefix + "foreign")["QueueUrl"]
    where = ["--endpoint-url", endpoint.endpoint_url, "--region", endpoint.region_name]
    try:
        assert main(["sweep", "--prefix", prefix, "--dry-run", "--json", *where]) == EXIT_OK
        report = json.loads(capsys.readouterr().out)
        assert (report["dry_run"], report["checked"], report["deleted"]) == (True, 2, 1)
        by_url = {d["queue_url"]: d for d in report["decisions"]}
        assert by_url[orphan]["action"] == "would_delete"
        assert by_url[foreign]["action"] == "kept"
        assert "no heartbeat/retention tags" in by_url[foreign]["reason"]
        assert len(sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]) == 2

        assert main(["sweep", "--prefix", prefix, *where]) == EXIT_OK
        out = capsys.readouterr().out
        assert "checked 2, deleted 1, kept 1, errors 0" in out
        assert sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"] == [foreign]
    finally:
        sqs.delete_queue(QueueUrl=foreign)


@pytest.mark.usefixtures("aws_env")
def test_sweep_exits_1_when_it_cannot_list(capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing listens on port 9: the failure a cron job meets when the endpoint is wrong.
    code = main(["sweep", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"])
    assert code == EXIT_FAILURE
    assert "cannot reach the SQS endpoint" in capsys.readouterr().err


@pytest.mark.usefixtures("aws_env")
def test_sweep_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--max-deletions", "-1"]) == EXIT_USAGE
    assert main(["sweep", "--prefix", "", "--region", "us-east-1"]) == EXIT_USAGE
    assert main(["sweep", "--profile", "no-such-profile-here"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--max-deletions" in err
    assert "non-empty" in err
    assert "no-such-profile-here" in err
