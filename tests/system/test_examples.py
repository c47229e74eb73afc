"""Every example runs: the self-contained ones alone, the client/server pair together."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from sqs_rpc._attributes import HEARTBEAT_TAG, RETENTION_TAG
from sqs_rpc._cli.main import _parser
from tests.support.helpers import Endpoint

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _env() -> dict[str, str]:
    return {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


# Self-contained examples (each starts its own embedded server) and lines their output must hold.
SELF_CONTAINED = {
    "quickstart.py": ["{'echo': {'x': 1}}", "remote error: ValueError asked to fail"],
    "fan_out_async.py": ["sum: 2470"],
    "typed_service.py": [
        "A-1: 600 cents until 2030-01-01",
        "concurrent: [250, 250]",
        "out of stock: {'sku': 'X-0'}",
        "invalid: invalid_arguments [['sku']]",
    ],
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
    "lambda_responder.py": [
        "records, 0 reported as failed",
        "apple: {'item': 'apple', 'in_stock': 3}",
        "pear: {'item': 'pear', 'in_stock': 0}",
        "kiwi: remote error KeyError: \"unknown item 'kiwi'\"",
        "stats: 2 handled, 1 failed",
    ],
    "fifo.py": [
        "alice: withdraw handled as #3",
        "carol's deposit handled as #2",
        "alice: ['open', 'deposit', 'withdraw']",
        "bob: ['open', 'deposit', 'withdraw']",
    ],
}


@pytest.mark.embedded_server
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


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse Prometheus's text format with Prometheus's own parser: a format error fails."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _check_metrics(text: str) -> None:
    samples = _samples(text)

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    assert value("sqs_rpc_client_calls_total", queue="orders", outcome="ok") == 20
    assert value("sqs_rpc_client_calls_total", queue="orders", outcome="remote_error") == 2
    assert value("sqs_rpc_client_calls_total", queue="nobody-home", outcome="timeout") == 1
    assert value("sqs_rpc_server_messages_total", queue="orders", outcome="ok") == 20
    assert value("sqs_rpc_server_messages_total", queue="orders", outcome="error") == 2
    assert value("sqs_rpc_client_call_duration_seconds_count", queue="orders") == 22
    assert value("sqs_rpc_client_call_duration_seconds_bucket", queue="orders", le="+Inf") == 22
    assert value("sqs_rpc_server_message_duration_seconds_count", queue="orders") == 22
    assert value("sqs_rpc_client_sqs_requests_total", operation="CreateQueue") == 1
    assert value("sqs_rpc_client_sqs_billed_requests_total", operation="CreateQueue") == 1
    assert value("sqs_rpc_client_pending_calls") == 0
    assert value("sqs_rpc_server_sqs_requests_total", queue="orders", operation="ReceiveMessage")
    assert value("sqs_rpc_server_in_flight", queue="orders") == 0


@pytest.mark.embedded_server
@pytest.mark.timeout(120)
def test_prometheus_example_prints_valid_metrics() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "prometheus_metrics.py")],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr
    _check_metrics(result.stdout)


@pytest.mark.embedded_server
@pytest.mark.timeout(120)
def test_prometheus_example_serves_metrics_over_http() -> None:
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "prometheus_metrics.py"), "--serve", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # blocks until the server is up (or the process died)
        url = line.split()[1]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            _check_metrics(response.read().decode())
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        returncode = server.wait(30)
        if server.stdout is not None:
            server.stdout.close()
        assert returncode == 0


def test_every_example_is_tested() -> None:
    tested = set(SELF_CONTAINED) | {
        "echo_server.py",
        "echo_client.py",
        "sweeper_lambda.py",
        "prometheus_metrics.py",
    }
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


def _orphan(sqs: Any, prefix: str) -> str:
    tags = {HEARTBEAT_TAG: "1", RETENTION_TAG: "60"}  # last heartbeat in 1970
    url: str = sqs.create_queue(QueueName=prefix + "orphan", tags=tags)["QueueUrl"]
    return url


def _sweep_env(endpoint: Endpoint, prefix: str) -> dict[str, str]:
    return {
        **_env(),
        "SQS_RPC_PREFIX": prefix,
        "SQS_RPC_ENDPOINT_URL": endpoint.endpoint_url,
        "AWS_REGION": endpoint.region_name,
        "AWS_DEFAULT_REGION": endpoint.region_name,
    }


@pytest.mark.timeout(120)
def test_sweeper_lambda_handler(endpoint: Endpoint, sqs: Any) -> None:
    prefix = f"lambda{uuid.uuid4().hex[:8]}-"
    url = _orphan(sqs, prefix)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "sweeper_lambda.py")],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        env=_sweep_env(endpoint, prefix),
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["deleted_urls"] == [url]
    assert (output["checked"], output["deleted"], output["dry_run"]) == (1, 1, False)
    assert not sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls")  # omitted or []


@pytest.mark.timeout(120)
def test_sweeper_cron_script(endpoint: Endpoint, sqs: Any, tmp_path: Path) -> None:
    prefix = f"cron{uuid.uuid4().hex[:8]}-"
    _orphan(sqs, prefix)
    result = subprocess.run(
        ["sh", str(EXAMPLES / "sweeper_cron.sh")],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        env={
            **_sweep_env(endpoint, prefix),
            "SQS_RPC": f"{sys.executable} -m sqs_rpc",
            "TMPDIR": str(tmp_path),  # its own flock file: parallel runs must not collide
        },
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["deleted"] == 1
    assert not sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls")  # omitted or []


def test_kubernetes_cronjob_runs_a_valid_sweep_command() -> None:
    documents = list(yaml.safe_load_all((EXAMPLES / "k8s-sweeper-cronjob.yaml").read_text()))
    (cronjob,) = [d for d in documents if d["kind"] == "CronJob"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    args = _parser().parse_args(container["args"])  # the CLI accepts exactly these options
    assert args.command == "sweep"
    assert args.max_deletions == 100
