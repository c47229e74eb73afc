"""Every stop path has a bound: a server with a handler that never returns, a client whose SQS
stops answering. Each says what it abandoned."""

from __future__ import annotations

import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from .child_process import Child
from .conftest import Endpoint

NEVER_RETURNS = """
import sys, threading
from sqs_rpc import MessageHandler


class NeverReturns(MessageHandler):
    def handle(self, message):
        print("handling", message.body, flush=True)
        threading.Event().wait()
"""

RUNS = (
    NEVER_RETURNS
    + """
import logging
from sqs_rpc import MessagePoller

logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s: %(message)s")
poller = MessagePoller(
    sys.argv[3], NeverReturns(), endpoint_url=sys.argv[1], region_name=sys.argv[2],
    shutdown_timeout=2, wait_time_seconds=20,
)
poller.run()
print("run() returned", flush=True)
"""
)

SHUTDOWN_TIMEOUT = 2.0
# What a stop may take beyond shutdown_timeout with a healthy SQS (docs/operations.md): the
# receive in progress is given 1 s, the rest takes milliseconds, then the interpreter exits.
STOP_BOUND = 5.0


@pytest.mark.timeout(60)
def test_run_returns_and_the_process_exits_though_a_handler_never_returns(
    endpoint: Endpoint, sqs: Any, queue_url: str
) -> None:
    with Child(["-c", RUNS, endpoint.endpoint_url, endpoint.region_name, queue_url]) as child:
        child.wait_for_line("polling")
        sqs.send_message(QueueUrl=queue_url, MessageBody='"stuck"')
        child.wait_for_line("handling")
        sent = child.signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 0
        took = time.monotonic() - sent
    assert took < SHUTDOWN_TIMEOUT + STOP_BOUND, child.output
    assert "run() returned" in child.output
    assert "1 handlers still running after 2s" in child.output  # what it abandoned


@pytest.mark.timeout(60)
def test_serve_exits_though_a_handler_never_returns(
    endpoint: Endpoint, sqs: Any, queue_url: str, tmp_path: Path
) -> None:
    (tmp_path / "never_returns.py").write_text(textwrap.dedent(NEVER_RETURNS))
    where = ["--endpoint-url", endpoint.endpoint_url, "--region", endpoint.region_name]
    serve = ["-m", "sqs_rpc", "serve", "never_returns:NeverReturns", "--app-dir", str(tmp_path)]
    options = ["--queue-url", queue_url, "--shutdown-timeout", str(SHUTDOWN_TIMEOUT)]
    with Child([*serve, *options, *where]) as child:
        child.wait_for_line("polling")
        sqs.send_message(QueueUrl=queue_url, MessageBody='"stuck"')
        child.wait_for_line("handling")
        sent = child.signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 0
        took = time.monotonic() - sent
    assert took < SHUTDOWN_TIMEOUT + STOP_BOUND, child.output
    assert "stopped with handlers still running after 2 s" in child.output
