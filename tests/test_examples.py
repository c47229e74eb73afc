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


@pytest.mark.embedded_server
@pytest.mark.timeout(120)
def test_quickstart() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "{'echo': {'x': 1}}" in result.stdout
    assert "remote error: ValueError asked to fail" in result.stdout


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
