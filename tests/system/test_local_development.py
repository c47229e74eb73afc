"""``sqs-rpc local`` in one process, ``serve`` and ``call`` in others: no AWS, only its env."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docs_samples import doc_sample, shape

ROOT = Path(__file__).resolve().parents[2]
SQS_RPC = (sys.executable, "-m", "sqs_rpc")
ECHO = "tests.support.handlers:Echo"


def _clean_env() -> dict[str, str]:
    """This environment without any AWS setting: only what ``local`` prints may count."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, "PYTHONPATH": str(ROOT)}


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    return out


@pytest.mark.embedded_server
@pytest.mark.timeout(120)
def test_serve_and_call_reach_each_other_through_the_printed_environment() -> None:
    local = subprocess.Popen(
        [*SQS_RPC, "local", "--port", "0", "--queue", "orders"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_clean_env(),
        cwd=ROOT,
    )
    serve = None
    try:
        printed = []
        assert local.stdout is not None
        for line in local.stdout:
            printed.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(printed)
        sample = doc_sample("local-development.md", "sqs-rpc local --queue orders")
        assert [shape(line) for line in text.splitlines()] == [shape(line) for line in sample]
        exported = dict(re.findall(r"^export (\w+)=(\S+)$", text, re.MULTILINE))
        assert set(exported) == {
            "AWS_ENDPOINT_URL_SQS",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
        }
        (queue_url,) = re.findall(r"^queue: (\S+)$", text, re.MULTILINE)
        env = {**_clean_env(), **exported}
        serve = subprocess.Popen(
            [*SQS_RPC, "serve", ECHO, "--queue-url", queue_url, "--wait-time", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        call = subprocess.run(
            [*SQS_RPC, "call", queue_url, '{"n": 7}', "--timeout", "20"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        assert call.returncode == 0, call.stderr
        assert json.loads(call.stdout) == {"echo": {"n": 7}}
        serve_log = _stop(serve)
        # The queue has a dead-letter queue: the server does not warn about it.
        assert "redrive" not in serve_log, serve_log
    finally:
        if serve is not None and serve.poll() is None:
            serve.kill()
            serve.wait()
        out = _stop(local) if local.poll() is None else ""
    assert local.returncode == 0
    assert "stopping the SQS-compatible server" in out
