"""Every example runs: the self-contained ones alone, the client/server pair together."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import Endpoint

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _env() -> dict[str, str]:
    return {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


# Self-contained examples (each starts its own embedded server) and lines their output must hold.
SELF_CONTAINED = {
    "quickstart.py": ["{'echo': {'x': 1}}", "remote error: ValueError asked to fail"],
    "fan_out_async.py": ["sum: 2470"],
    "error_handling.py": [
        "6 / 3 = 2.0",
        "remote error: ZeroDivisionError - division by zero",
        "got no reply within 1s",
        "too large: 100,115 bytes > 65,536",
        "queue does not exist: SendMessage",
    ],
    "fire_and_forget.py": [
        "published 5 events; reply queue: None",
        "handled: ['/', '/blog', '/docs', '/pricing', '/signup']",
    ],
    "fifo.py": [
        "alice: withdraw handled as #3",
        "carol's deposit handled as #2",
        "alice: ['open', 'deposit', 'withdraw']",
        "bob: ['open', 'deposit', 'withdraw']",
    ],
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(SELF_CONTAINED))
def test_self_contained_example(name: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr
    for line in SELF_CONTAINED[name]:
        assert line in result.stdout


def test_every_example_is_tested() -> None:
    tested = set(SELF_CONTAINED) | {"echo_server.py", "echo_client.py"}
    assert {path.name for path in EXAMPLES.glob("*.py")} == tested


@pytest.mark.timeout(120)
def test_echo_server_and_client(endpoint: Endpoint, queue_url: str, sqs: Any) -> None:
    where = ["--endpoint-url", endpoint.endpoint_url, "--region", endpoint.region_name]
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "echo_server.py"), queue_url, *where, "--wait-time", "1"],
        env=_env(),
        stderr=subprocess.DEVNULL,
    )
    try:
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / "echo_client.py"), queue_url, *where],
            capture_output=True,
            text=True,
            timeout=100,
            check=False,
            env=_env(),
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [f"{{'echo': {{'n': {i}}}}}" for i in range(3)]
    finally:
        server.terminate()
        assert server.wait(30) == 0
