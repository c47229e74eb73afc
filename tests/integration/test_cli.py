"""The sqs-rpc command: every subcommand in-process through main(argv), and as a subprocess."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sqs_rpc import ExitCode, MessagePoller, RpcClient
from sqs_rpc._attributes import HEARTBEAT_TAG, RETENTION_TAG
from sqs_rpc._cli.main import main
from tests.support.handlers import Echo
from tests.support.helpers import Endpoint, wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
Serve = Callable[..., MessagePoller]


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI uses boto3's standard chain: give it the dummy credentials moto accepts."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def where(endpoint: Endpoint) -> list[str]:
    return ["--endpoint-url", endpoint.endpoint_url, "--region", endpoint.region_name]


def _env() -> dict[str, str]:
    return {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _run_cli(*args: str, timeout: float = 50) -> subprocess.CompletedProcess[str]:
    """``python -m sqs_rpc ARGS`` in a subprocess, with test credentials."""
    return subprocess.run(
        [sys.executable, "-m", "sqs_rpc", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=_env(),
    )


# -- demo and usage --------------------------------------------------------------------------


@pytest.mark.embedded_server
@pytest.mark.timeout(120)
def test_demo_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--calls", "40", "--concurrency", "4"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "40 ok of 40, 0 errors, 0 wrong replies" in out
    assert "per call" in out
    assert "deleted on close" in out
    assert "demo OK" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == ExitCode.USAGE
    assert main(["no-such-command"]) == ExitCode.USAGE
    assert main(["demo", "--calls", "0"]) == ExitCode.USAGE
    assert "--calls" in capsys.readouterr().err
    assert main(["call", "http://q"]) == ExitCode.USAGE  # no payload
    assert main(["serve", "m:C"]) == ExitCode.USAGE  # no --queue-url


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == ExitCode.OK
    out = capsys.readouterr().out
    for command in ("demo", "serve", "call", "publish"):
        assert command in out


# -- call ------------------------------------------------------------------------------------


def test_call_prints_the_reply_as_json(
    queue_url: str, serve: Serve, where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    serve(queue_url, Echo())
    assert main(["call", queue_url, '{"x": [1, "ü"]}', *where]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == {"echo": {"x": [1, "ü"]}}
    assert main(["call", queue_url, "7", "--json", *where]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == {"ok": True, "reply": {"echo": 7}}


def test_call_remote_error_exits_4(
    queue_url: str, serve: Serve, where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    serve(queue_url, Echo())
    assert main(["call", queue_url, '"fail"', *where]) == ExitCode.REMOTE_ERROR
    captured = capsys.readouterr()
    assert "remote error: ValueError: asked to fail" in captured.err
    assert "Traceback" not in captured.err
    assert main(["call", queue_url, '"fail"', "--json", *where]) == ExitCode.REMOTE_ERROR
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False
    assert document["exit_code"] == ExitCode.REMOTE_ERROR
    assert document["error"]["remote_type"] == "ValueError"


def test_call_timeout_exits_3(
    queue_url: str, where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["call", queue_url, "1", "--timeout", "0.5", *where]) == ExitCode.TIMEOUT
    assert "no reply within 0.5s" in capsys.readouterr().err


def test_unknown_queue_exits_5(
    endpoint: Endpoint, where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"{endpoint.endpoint_url}/123456789012/no-such-queue"
    assert main(["call", missing, "1", *where]) == ExitCode.SQS_ERROR
    assert main(["publish", missing, "1", *where]) == ExitCode.SQS_ERROR
    err = capsys.readouterr().err
    assert err.count("the queue does not exist") == 2
    assert "Traceback" not in err


def test_call_to_a_missing_queue_creates_no_reply_queue(
    endpoint: Endpoint,
    sqs: Any,
    where: list[str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO, logger="sqs_rpc")
    missing = f"{endpoint.endpoint_url}/123456789012/no-such-queue"
    assert main(["call", missing, "1", "--json", *where]) == ExitCode.SQS_ERROR
    assert json.loads(capsys.readouterr().out)["error"]["type"] == "QueueDoesNotExist"
    # The client logs every reply queue it creates (and deletes). Listing the account's queues
    # before and after would not do: it cannot see a queue created and deleted meanwhile, and
    # on a shared SQS endpoint (fauxqs under xdist) other tests create queues at the same time.
    assert not [r for r in caplog.records if "reply queue" in r.getMessage()]


@pytest.mark.parametrize("command", ["call", "publish"])
def test_invalid_json_exits_2(
    command: str, queue_url: str, where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, queue_url, "{x: 1}", *where]) == ExitCode.USAGE
    assert "is not valid JSON" in capsys.readouterr().err


def test_missing_credentials_exit_5(
    monkeypatch: pytest.MonkeyPatch,
    queue_url: str,
    where: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["publish", queue_url, "1", *where]) == ExitCode.SQS_ERROR
    assert main(["call", queue_url, "1", "--json", *where]) == ExitCode.SQS_ERROR
    captured = capsys.readouterr()
    assert captured.err.count("no AWS credentials found") == 2
    assert "--profile NAME" in captured.err
    assert "sqs_client=" not in captured.err  # a library keyword means nothing here
    assert json.loads(captured.out)["error"]["type"] == "CredentialsError"


def test_unreachable_endpoint_exits_5(capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"]
    assert main(["publish", "http://127.0.0.1:9/1/q", "1", *where]) == ExitCode.SQS_ERROR
    err = capsys.readouterr().err
    assert "cannot reach the SQS endpoint" in err
    assert "check --endpoint-url" in err  # the CLI's option, not the library's endpoint_url=
    assert "endpoint_url" not in err


def test_unknown_profile_exits_2(queue_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["publish", queue_url, "1", "--profile", "no-such-profile-xyz"]) == ExitCode.USAGE
    assert "no-such-profile-xyz" in capsys.readouterr().err


# -- publish ---------------------------------------------------------------------------------


def test_publish_sends_a_one_way_message(
    queue_url: str, sqs: Any, where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["publish", queue_url, '{"event": "viewed"}', *where]) == ExitCode.OK
    message_id = capsys.readouterr().out.strip()
    assert main(["publish", queue_url, "2", "--json", *where]) == ExitCode.OK
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True
    received = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    by_id = {m["MessageId"]: m for m in received}
    assert set(by_id) == {message_id, document["message_id"]}
    assert json.loads(by_id[message_id]["Body"]) == {"event": "viewed"}
    assert "ReplyTo" not in by_id[message_id]["MessageAttributes"]


def test_publish_to_a_fifo_queue(
    make_queue: Callable[..., str], sqs: Any, where: list[str]
) -> None:
    fifo = make_queue("cli-test.fifo", FifoQueue="true")
    options = ["--group-id", "g1", "--deduplication-id", "d1", *where]
    assert main(["publish", fifo, "1", *options]) == ExitCode.OK
    (message,) = sqs.receive_message(QueueUrl=fifo, AttributeNames=["MessageGroupId"])["Messages"]
    assert message["Attributes"]["MessageGroupId"] == "g1"


# -- serve -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "must be module:Class"),
        ("no_such_module_xyz:Echo", "cannot import 'no_such_module_xyz'"),
        ("echo_server:Missing", "has no attribute 'Missing'"),
        ("echo_server:logging", "neither a MessageHandler"),
        ("echo_server:main", "neither a MessageHandler"),
        ("argparse:ArgumentError", "not a MessageHandler subclass"),
    ],
)
def test_bad_handler_exits_2(
    spec: str, message: str, queue_url: str, where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["serve", spec, "--app-dir", str(EXAMPLES), "--queue-url", queue_url, *where]
    assert main(args) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_serve_unknown_queue_exits_5(
    endpoint: Endpoint, where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"{endpoint.endpoint_url}/123456789012/no-such-queue"
    args = ["serve", "echo_server:Echo", "--app-dir", str(EXAMPLES), "--queue-url", missing]
    assert main([*args, *where]) == ExitCode.SQS_ERROR
    assert "the queue does not exist" in capsys.readouterr().err


@pytest.fixture
def sigterm_when_served(sqs: Any, queue_url: str) -> Iterator[dict[str, Any]]:
    """Once `serve` runs (its SIGTERM handler is installed), call it, then SIGTERM it."""
    original = signal.getsignal(signal.SIGTERM)
    outcome: dict[str, Any] = {}

    def caller() -> None:
        wait_for(lambda: signal.getsignal(signal.SIGTERM) is not original, timeout=30)
        try:
            with RpcClient(sqs_client=sqs) as rpc:
                outcome["reply"] = rpc.call(queue_url, "hi", timeout=30)
        finally:
            # To the main thread, where `serve` waits: a signal delivered to another thread
            # would not interrupt its wait.
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)

    thread = threading.Thread(target=caller, name="test-cli-caller")
    thread.start()
    yield outcome
    thread.join(60)
    assert not thread.is_alive()


@pytest.mark.timeout(90)
def test_serve_in_process(
    queue_url: str,
    where: list[str],
    sigterm_when_served: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sqs_rpc")
    args = ["serve", "echo_server:Echo", "--app-dir", str(EXAMPLES), "--queue-url", queue_url]
    assert main([*args, "--wait-time", "1", "--concurrency", "2", *where]) == ExitCode.OK
    wait_for(lambda: "reply" in sigterm_when_served, timeout=30)
    assert sigterm_when_served["reply"] == {"echo": "hi"}
    assert str(EXAMPLES) not in sys.path  # --app-dir is not left behind
    (said,) = [r.getMessage() for r in caplog.records if "received: stopping" in r.getMessage()]
    assert said.startswith("SIGTERM received: stopping; waiting up to 30 s for 0 in-flight")


@pytest.mark.timeout(120)
def test_serve_and_call_as_subprocesses(queue_url: str, where: list[str]) -> None:
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "sqs_rpc", "serve", "echo_server:Echo"),
            *("--app-dir", str(EXAMPLES), "--queue-url", queue_url, "--wait-time", "1"),
            *("--json", *where),
        ],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        result = subprocess.run(
            [sys.executable, "-m", "sqs_rpc", "call", queue_url, '{"n": 1}', "--json", *where],
            capture_output=True,
            text=True,
            timeout=100,
            check=False,
            env=_env(),
        )
        assert result.returncode == ExitCode.OK, result.stderr
        assert json.loads(result.stdout) == {"ok": True, "reply": {"echo": {"n": 1}}}
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
        assert server.returncode == ExitCode.OK, stderr
        logged = [json.loads(line) for line in stderr.splitlines()]  # --json: JSON lines
        assert any(r["message"].startswith("stopped polling") for r in logged), stderr
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


CHATTY_HANDLER = """
import logging

from sqs_rpc import MessageHandler

logger = logging.getLogger("chatty")


class Chatty(MessageHandler):
    def handle(self, message):
        logger.info("handling %s", message.body)
        logger.debug("details of %s", message.body)
        return message.body
"""


@pytest.mark.timeout(120)
def test_serve_verbose_shows_the_handler_logs(
    tmp_path: Path, queue_url: str, sqs: Any, where: list[str]
) -> None:
    (tmp_path / "chatty.py").write_text(CHATTY_HANDLER)
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "sqs_rpc", "serve", "chatty:Chatty", "-v"),
            *("--app-dir", str(tmp_path), "--queue-url", queue_url, "--wait-time", "1", *where),
        ],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with RpcClient(sqs_client=sqs) as rpc:
            assert rpc.call(queue_url, "ping", timeout=60) == "ping"
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
        assert server.returncode == ExitCode.OK, stderr
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert "INFO chatty: handling ping" in stderr  # -v: the handler's INFO, like ours
    assert "polling" in stderr
    assert "SIGTERM received: stopping; waiting up to 30 s" in stderr
    assert " DEBUG " not in stderr  # -vv for that
    assert "botocore" not in stderr


@pytest.mark.timeout(60)
def test_publish_as_a_subprocess(queue_url: str, sqs: Any, where: list[str]) -> None:
    result = _run_cli("publish", queue_url, '"hello"', *where)
    assert result.returncode == ExitCode.OK, result.stderr
    (message,) = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    assert message["MessageId"] == result.stdout.strip()
    assert message["Body"] == '"hello"'


def test_handler_module_problems_exit_2(
    tmp_path: Path, queue_url: str, where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cli_boom.py").write_text("raise RuntimeError('broken at import')\n")
    (tmp_path / "cli_needs_args.py").write_text(
        "from sqs_rpc import MessageHandler\n\n"
        "class Needs(MessageHandler):\n"
        "    def __init__(self, db):\n"
        "        self.db = db\n\n"
        "    def handle(self, message):\n"
        "        return None\n"
    )
    common = ["--app-dir", str(tmp_path), "--queue-url", queue_url, *where]
    assert main(["serve", "cli_boom:X", *common]) == ExitCode.USAGE
    assert main(["serve", "cli_needs_args:Needs", *common]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "importing 'cli_boom' failed: RuntimeError: broken at import" in err
    assert "cannot create cli_needs_args:Needs() with no arguments" in err
    assert "Traceback" not in err
    assert str(tmp_path) not in sys.path


# -- sweep -----------------------------------------------------------------------------------


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
        assert main(["sweep", "--prefix", prefix, "--dry-run", "--json", *where]) == ExitCode.OK
        report = json.loads(capsys.readouterr().out)
        assert (report["dry_run"], report["checked"], report["deleted"]) == (True, 2, 1)
        by_url = {d["queue_url"]: d for d in report["decisions"]}
        assert by_url[orphan]["action"] == "would_delete"
        assert by_url[foreign]["action"] == "kept"
        assert "no heartbeat/retention tags" in by_url[foreign]["reason"]
        assert len(sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]) == 2

        assert main(["sweep", "--prefix", prefix, *where]) == ExitCode.OK
        out = capsys.readouterr().out
        assert "checked 2, deleted 1, kept 1, errors 0" in out
        assert sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"] == [foreign]
    finally:
        sqs.delete_queue(QueueUrl=foreign)


def test_sweep_as_a_subprocess(sqs: Any, where: list[str]) -> None:
    prefix = f"cli{uuid.uuid4().hex[:8]}-"
    orphan = sqs.create_queue(
        QueueName=prefix + "orphan", tags={HEARTBEAT_TAG: "1", RETENTION_TAG: "60"}
    )["QueueUrl"]
    result = _run_cli("sweep", "--prefix", prefix, "--json", *where)
    assert result.returncode == ExitCode.OK, result.stderr
    report = json.loads(result.stdout)
    assert [(d["queue_url"], d["action"]) for d in report["decisions"]] == [(orphan, "deleted")]
    assert not sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls")


def test_sweep_exits_5_when_it_cannot_list(capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing listens on port 9: the failure a cron job meets when the endpoint is wrong.
    code = main(["sweep", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"])
    assert code == ExitCode.SQS_ERROR
    assert "cannot reach the SQS endpoint" in capsys.readouterr().err


def test_sweep_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--max-deletions", "-1"]) == ExitCode.USAGE
    assert main(["sweep", "--prefix", "", "--region", "us-east-1"]) == ExitCode.USAGE
    assert main(["sweep", "--profile", "no-such-profile-here"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "--max-deletions" in err
    assert "non-empty" in err
    assert "no-such-profile-here" in err


# -- queues ----------------------------------------------------------------------------------


@pytest.fixture
def listed_queues(sqs: Any) -> Iterator[tuple[str, dict[str, str]]]:
    """Under a fresh prefix: a live reply queue, an idle one, and a queue without tags."""
    prefix = f"cliq{uuid.uuid4().hex[:8]}-"
    now = int(time.time())
    urls = {
        "alive": sqs.create_queue(
            QueueName=prefix + "alive",
            tags={HEARTBEAT_TAG: str(now - 30), RETENTION_TAG: "600"},
        )["QueueUrl"],
        "idle": sqs.create_queue(
            QueueName=prefix + "idle",
            tags={HEARTBEAT_TAG: str(now - 7200), RETENTION_TAG: "600"},
        )["QueueUrl"],
        "untagged": sqs.create_queue(QueueName=prefix + "untagged")["QueueUrl"],
    }
    yield prefix, urls
    for url in urls.values():
        sqs.delete_queue(QueueUrl=url)


def test_queues_json_lists_heartbeat_ages(
    listed_queues: tuple[str, dict[str, str]],
    where: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix, urls = listed_queues
    assert main(["queues", "--prefix", prefix, "--json", *where]) == ExitCode.OK
    document = json.loads(capsys.readouterr().out)
    assert document["prefix"] == prefix
    rows = {row["queue_url"]: row for row in document["queues"]}
    assert set(rows) == set(urls.values())
    alive, idle, untagged = (rows[urls[k]] for k in ("alive", "idle", "untagged"))
    assert alive["state"] == "alive"
    assert 25 <= alive["heartbeat_age"] <= 600
    assert alive["idle_retention"] == 600
    assert idle["state"] == "idle"
    assert idle["heartbeat_age"] >= 7200
    assert (untagged["state"], untagged["heartbeat_age"]) == ("untagged", None)


def test_queues_prints_a_table(
    listed_queues: tuple[str, dict[str, str]],
    where: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix, _ = listed_queues
    assert main(["queues", "--prefix", prefix, *where]) == ExitCode.OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "HEARTBEAT", "AGE", "RETENTION"]
    by_name = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    assert by_name[prefix + "alive"][0] == "alive"
    assert by_name[prefix + "alive"][2] == "10m"
    assert by_name[prefix + "idle"][:2] == ["idle", "2.0h"]
    assert by_name[prefix + "untagged"] == ["untagged", "-", "-"]
    assert lines[-1] == "3 queues: 1 alive, 1 idle"


def test_queues_lists_a_live_clients_reply_queue_by_default(
    client: RpcClient,
    queue_url: str,
    serve: Serve,
    where: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve(queue_url, Echo())
    assert client.call(queue_url, 1) == {"echo": 1}
    assert main(["queues", "--json", *where]) == ExitCode.OK  # default prefix: sqs-rpc-reply-
    rows = {row["queue_url"]: row for row in json.loads(capsys.readouterr().out)["queues"]}
    mine = rows[client.reply_queue_url]
    assert mine["state"] == "alive"
    assert mine["idle_retention"] == 600


def test_queues_errors(capsys: pytest.CaptureFixture[str]) -> None:
    unreachable = ["--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"]
    assert main(["queues", *unreachable]) == ExitCode.SQS_ERROR
    assert main(["queues", "--prefix", "", "--region", "us-east-1"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "cannot reach the SQS endpoint" in err
    assert "non-empty" in err
    assert "Traceback" not in err


def test_queues_as_a_subprocess(
    listed_queues: tuple[str, dict[str, str]], where: list[str]
) -> None:
    prefix, _ = listed_queues
    result = _run_cli("queues", "--prefix", prefix, "--json", *where)
    assert result.returncode == ExitCode.OK, result.stderr
    states = {row["name"]: row["state"] for row in json.loads(result.stdout)["queues"]}
    assert states == {
        prefix + "alive": "alive",
        prefix + "idle": "idle",
        prefix + "untagged": "untagged",
    }
