"""Shared fixtures: one SQS-compatible server over HTTP for the session, fresh queues per test.

The server is sqs-rpc's own EmbeddedSqs (moto's server on 127.0.0.1, on a free port). Set
SQS_RPC_TEST_ENDPOINT to run the integration tests against another SQS endpoint instead, and
SQS_RPC_TEST_SERVER to its name (``fauxqs``, ``localstack``, ``aws``; default ``moto``) so that
tests marked ``known_deviation(name, reason=...)`` are skipped there with their reason. Tests
marked ``embedded_server`` exercise EmbeddedSqs itself and ignore the endpoint. Tests marked
``s3`` need S3 at the same endpoint (moto's server serves every service on one port): they
run only on implementations in ``S3_SERVERS``.

The tiers: tests/unit (no SQS server), tests/integration (this server over HTTP; fast) and
tests/system (whole processes, faults, outages, the soak, the benchmarks; slow). Shared
helpers and handlers are in tests/support. ``python -m pytest`` runs unit and integration;
``python -m pytest tests/system`` the rest.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sqs_rpc import EmbeddedSqs, MessageHandler, MessagePoller, RpcClient

from .support.helpers import S3_SERVERS, Endpoint, server_name

THREAD_PREFIX = "sqs-rpc-"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A deviation is where an emulator differs from AWS's documented behaviour and the test
    # follows AWS: skip it on that emulator, with the reason, rather than weaken the test.
    name = server_name()
    for item in items:
        for mark in item.iter_markers("known_deviation"):
            if name in mark.args:
                item.add_marker(pytest.mark.skip(reason=f"{name}: {mark.kwargs['reason']}"))
        if name not in S3_SERVERS and item.get_closest_marker("s3") is not None:
            item.add_marker(pytest.mark.skip(reason=f"{name} serves no S3 at its endpoint"))


@pytest.fixture(scope="session")
def endpoint() -> Iterator[Endpoint]:
    external = os.environ.get("SQS_RPC_TEST_ENDPOINT")
    if external:
        yield Endpoint(external, os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
        return
    with EmbeddedSqs() as server:
        yield Endpoint(server.endpoint_url, server.region_name)


@pytest.fixture
def sqs(endpoint: Endpoint) -> Any:
    return endpoint.client()


@pytest.fixture
def make_queue(sqs: Any) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def make(name: str | None = None, **attributes: str) -> str:
        name = name or f"test-{uuid.uuid4().hex[:16]}"
        url: str = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        created.append(url)
        return url

    yield make
    for url in created:
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def queue_url(make_queue: Callable[..., str]) -> str:
    return make_queue()


@pytest.fixture
def reply_queue(make_queue: Callable[..., str]) -> str:
    """A queue a server's default reply policy accepts (same account, reply prefix)."""
    return make_queue(f"sqs-rpc-reply-{uuid.uuid4().hex}")


@pytest.fixture
def client(sqs: Any) -> Iterator[RpcClient]:
    with RpcClient(sqs_client=sqs, default_timeout=10) as rpc:
        yield rpc


@pytest.fixture
def serve(sqs: Any) -> Iterator[Callable[..., MessagePoller]]:
    """Start a MessagePoller; every poller started here is stopped at teardown."""
    pollers: list[MessagePoller] = []

    def start(queue_url: str, handler: MessageHandler, **options: Any) -> MessagePoller:
        options.setdefault("wait_time_seconds", 1)
        options.setdefault("sqs_client", sqs)
        poller = MessagePoller(queue_url, handler, **options)
        poller.start()
        pollers.append(poller)
        return poller

    yield start
    for poller in pollers:
        poller.stop()


def _library_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX) and t.is_alive()}


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every test must stop what it starts: no sqs-rpc thread outlives its test."""
    before = _library_threads()
    yield
    deadline = time.monotonic() + 10
    while (leaked := _library_threads() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leaked, f"threads left running: {sorted(t.name for t in leaked)}"
