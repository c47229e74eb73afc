"""Test your handlers and clients in one process, against the embedded SQS-compatible server.

Example::

    from sqs_rpc.testing import rpc_test_server

    def test_ship() -> None:
        with rpc_test_server(Orders()) as rpc:
            assert rpc.call({"order_id": 7}) == {"order_id": 7, "status": "shipped"}

Real HTTP round trips through a real ``MessagePoller`` and ``RpcClient``: nothing is mocked.
Needs the ``server`` extra (``pip install 'sqs-rpc[server]'``) unless ``endpoint_url=`` names
another SQS endpoint. pytest fixtures built on this module are in
:mod:`sqs_rpc.pytest_plugin`; this module itself does not import pytest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._aws import make_sqs_client
from ._client.client import RpcClient
from ._embedded import EmbeddedSqs, create_queue_with_dead_letters
from ._errors import SqsError, aws_errors
from ._server.poller import DEFAULT_CONCURRENCY, MessageHandler, MessagePoller

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["RpcTestServer", "rpc_test_server"]

logger = logging.getLogger(__name__)

DEFAULT_TEST_TIMEOUT = 10.0


@dataclass
class RpcTestServer:
    """A running handler on a fresh queue, with a client to call it; see :func:`rpc_test_server`.

    Example::

        with rpc_test_server(Orders()) as rpc:
            rpc.call({"order_id": 7})                  # a call to rpc.queue_url
            rpc.client.call_async(rpc.queue_url, ...)  # the full RpcClient
            rpc.poller.stats().handled                 # the MessagePoller

    Attributes:
        queue_url: the request queue the handler serves.
        dead_letter_queue_url: its dead-letter queue (None with ``max_receive_count=None``).
        client: an :class:`~sqs_rpc.RpcClient` whose calls time out after ``timeout``.
        poller: the :class:`~sqs_rpc.MessagePoller` running the handler.
        endpoint_url: the SQS endpoint, for building more clients.
        region_name: its region.
    """

    queue_url: str
    dead_letter_queue_url: str | None
    client: RpcClient
    poller: MessagePoller
    endpoint_url: str
    region_name: str

    def call(self, payload: Any = None, **options: Any) -> Any:
        """``client.call(queue_url, payload, **options)``: the decoded reply."""
        return self.client.call(self.queue_url, payload, **options)

    def publish(self, payload: Any = None, **options: Any) -> str:
        """``client.publish(queue_url, payload, **options)``: the SQS message id."""
        return self.client.publish(self.queue_url, payload, **options)

    def sqs_client(self) -> SQSClient:
        """A new boto3 SQS client for the endpoint (dummy credentials unless set in the env)."""
        return _sqs_client(self.endpoint_url, self.region_name)


@contextmanager
def rpc_test_server(
    handler: MessageHandler,
    *,
    endpoint_url: str | None = None,
    region_name: str = "us-east-1",
    fifo: bool = False,
    max_receive_count: int | None = 3,
    queue_attributes: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TEST_TIMEOUT,
    client_options: Mapping[str, Any] | None = None,
    **poller_options: Any,
) -> Iterator[RpcTestServer]:
    """Run ``handler`` on a fresh queue and yield an :class:`RpcTestServer` to call it.

    On exit everything is undone, in order: the poller stops (waiting for running handlers),
    the client closes (its reply queue is deleted), the queues are deleted, and an embedded
    server started here stops.

    Example::

        with rpc_test_server(Orders(), concurrency=2, include_traceback=True) as rpc:
            with pytest.raises(RemoteError, match="ValueError"):
                rpc.call({"order_id": -1})

    Args:
        handler: your :class:`~sqs_rpc.MessageHandler`.
        endpoint_url: an SQS endpoint to use (LocalStack, another emulator); by default an
            :class:`~sqs_rpc.EmbeddedSqs` is started for this block and stopped after it.
        region_name: the endpoint's region.
        fifo: make the request queue a FIFO queue (content-based deduplication on), so calls
            need ``group_id=``.
        max_receive_count: give the request queue a dead-letter queue with this
            ``maxReceiveCount``; None for no dead-letter queue (the poller then warns).
        queue_attributes: more request queue attributes, named as in SQS
            (``{"VisibilityTimeout": "5"}``).
        timeout: the client's ``default_timeout``: a broken handler fails the test instead
            of hanging it.
        client_options: more :class:`~sqs_rpc.RpcClient` options (``codec=``, ``hooks=``...).
        **poller_options: :class:`~sqs_rpc.MessagePoller` options; ``wait_time_seconds``
            defaults to 1 so that stopping is quick.
    """
    with contextlib.ExitStack() as stack:
        if endpoint_url is None:
            embedded = stack.enter_context(EmbeddedSqs(region_name=region_name))
            endpoint_url = embedded.endpoint_url
        admin = _sqs_client(endpoint_url, region_name)
        name = f"sqs-rpc-test-{uuid.uuid4().hex[:16]}"
        suffix = ".fifo" if fifo else ""
        attributes: dict[str, str] = {}
        if fifo:
            attributes.update(FifoQueue="true", ContentBasedDeduplication="true")
        attributes.update(queue_attributes or {})
        queue_url, dead_letter_url = create_queue_with_dead_letters(
            admin, name + suffix, attributes, max_receive_count=max_receive_count
        )
        if dead_letter_url is not None:
            stack.callback(_delete, admin, dead_letter_url)
        stack.callback(_delete, admin, queue_url)
        # Exit order (ExitStack runs callbacks last-in first-out): the poller stops first,
        # finishing running handlers, while the client can still receive their replies; then
        # the client closes; then the queues go; then the embedded server, if ours.
        client = RpcClient(
            sqs_client=_sqs_client(endpoint_url, region_name),
            **{"default_timeout": timeout, **(client_options or {})},
        )
        stack.callback(client.close)
        poller_options.setdefault("wait_time_seconds", 1)
        connections = int(poller_options.get("concurrency", DEFAULT_CONCURRENCY)) + 4
        poller = MessagePoller(
            queue_url,
            handler,
            sqs_client=_sqs_client(endpoint_url, region_name, connections),
            **poller_options,
        )
        poller.start()
        stack.callback(poller.stop)
        yield RpcTestServer(
            queue_url=queue_url,
            dead_letter_queue_url=dead_letter_url,
            client=client,
            poller=poller,
            endpoint_url=endpoint_url,
            region_name=region_name,
        )


def _sqs_client(endpoint_url: str, region_name: str, connections: int = 10) -> SQSClient:
    # Emulators accept any credentials; real ones in the environment are used if present.
    credentials = (
        os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    return make_sqs_client(
        sqs_client=None,
        session=None,
        credentials=credentials,
        endpoint_url=endpoint_url,
        region_name=region_name,
        max_pool_connections=connections,
    )


def _delete(sqs: SQSClient, queue_url: str) -> None:
    try:
        with aws_errors("DeleteQueue", queue_url):
            sqs.delete_queue(QueueUrl=queue_url)
    except SqsError as exc:  # already gone, or the endpoint is down: nothing to leak
        logger.debug("test queue %s not deleted: %s", queue_url, exc)
