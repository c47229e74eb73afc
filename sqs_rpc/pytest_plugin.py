"""pytest fixtures for testing code that uses sqs-rpc, on the embedded SQS-compatible server.

Enable them in the ``conftest.py`` at the root of your tests (pytest reads ``pytest_plugins``
only there), or with ``pytest -p sqs_rpc.pytest_plugin``::

    pytest_plugins = ["sqs_rpc.pytest_plugin"]

Then::

    def test_ship(sqs_rpc_serve) -> None:
        rpc = sqs_rpc_serve(Orders())
        assert rpc.call({"order_id": 7})["status"] == "shipped"

Fixtures: ``sqs_rpc_endpoint`` (session: one :class:`~sqs_rpc.EmbeddedSqs`),
``sqs_rpc_queue`` (a fresh queue URL), ``sqs_rpc_client`` (an :class:`~sqs_rpc.RpcClient`)
and ``sqs_rpc_serve`` (runs a handler: :func:`sqs_rpc.testing.rpc_test_server`). Every
fixture stops and deletes what it made. Needs the ``server`` extra.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ._client.client import RpcClient
from ._embedded import EmbeddedSqs
from ._server.poller import MessageHandler
from .testing import DEFAULT_TEST_TIMEOUT, RpcTestServer, rpc_test_server

__all__ = ["sqs_rpc_client", "sqs_rpc_endpoint", "sqs_rpc_queue", "sqs_rpc_serve"]


@pytest.fixture(scope="session")
def sqs_rpc_endpoint() -> Iterator[EmbeddedSqs]:
    """One embedded SQS-compatible server for the test session."""
    with EmbeddedSqs() as server:
        yield server


@pytest.fixture
def sqs_rpc_queue(sqs_rpc_endpoint: EmbeddedSqs) -> Iterator[str]:
    """A fresh standard queue's URL; deleted after the test."""
    url = sqs_rpc_endpoint.create_queue(f"sqs-rpc-test-{uuid.uuid4().hex[:16]}")
    yield url
    sqs = sqs_rpc_endpoint.client()
    with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
        sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def sqs_rpc_client(sqs_rpc_endpoint: EmbeddedSqs) -> Iterator[RpcClient]:
    """An RpcClient on the embedded server (calls time out after 10 s); closed after the test."""
    with RpcClient(
        sqs_client=sqs_rpc_endpoint.client(), default_timeout=DEFAULT_TEST_TIMEOUT
    ) as client:
        yield client


@pytest.fixture
def sqs_rpc_serve(
    sqs_rpc_endpoint: EmbeddedSqs,
) -> Iterator[Callable[..., RpcTestServer]]:
    """Start handlers on fresh queues: ``rpc = sqs_rpc_serve(handler, **options)``.

    Options are those of :func:`sqs_rpc.testing.rpc_test_server`; everything started is
    stopped after the test.
    """
    with contextlib.ExitStack() as stack:

        def serve(handler: MessageHandler, **options: Any) -> RpcTestServer:
            return stack.enter_context(
                rpc_test_server(
                    handler,
                    endpoint_url=sqs_rpc_endpoint.endpoint_url,
                    region_name=sqs_rpc_endpoint.region_name,
                    **options,
                )
            )

        yield serve
