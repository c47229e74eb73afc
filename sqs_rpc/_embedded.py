"""An embedded SQS-compatible server (moto's) on 127.0.0.1, for the demo, tests and scripts.

Needs the ``server`` extra: ``pip install 'sqs-rpc[server]'``.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError, aws_errors

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["DEFAULT_MAX_RECEIVE_COUNT", "EmbeddedSqs", "create_queue_with_dead_letters"]

logger = logging.getLogger(__name__)

# How many receives a request gets before SQS moves it to the dead-letter queue.
DEFAULT_MAX_RECEIVE_COUNT = 3


class EmbeddedSqs:
    """An SQS-compatible server in a thread of this process, bound to 127.0.0.1.

    Example::

        with EmbeddedSqs() as sqs:
            queue_url = sqs.create_queue("requests")
            with RpcClient(sqs_client=sqs.client()) as client:
                ...

    Args:
        port: the TCP port; 0 (the default) picks a free one.
        region_name: the region the server's queue URLs and clients use.
    """

    def __init__(self, *, port: int = 0, region_name: str = "us-east-1") -> None:
        self._port = port
        self.region_name = region_name
        self._server: Any = None
        self._endpoint_url: str | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> EmbeddedSqs:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``; the server must be started."""
        if self._endpoint_url is None:
            raise ConfigurationError("the embedded server is not running; call start() first")
        return self._endpoint_url

    def start(self) -> None:
        """Start the server on 127.0.0.1. Idempotent."""
        with self._lock:
            if self._server is not None:
                return
            try:
                from moto.server import ThreadedMotoServer
            except ImportError as exc:
                raise ConfigurationError(
                    "the embedded SQS server needs moto's server: pip install 'sqs-rpc[server]'"
                ) from exc
            # werkzeug logs every request at INFO on its own handler: far too loud for a demo
            # or a test run. Quiet it unless the application configured it.
            werkzeug_logger = logging.getLogger("werkzeug")
            if werkzeug_logger.level == logging.NOTSET:
                werkzeug_logger.setLevel(logging.WARNING)
            if self._port:
                _check_port_is_free(self._port)
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            self._server = server
            self._endpoint_url = f"http://{host}:{port}"
        logger.info("embedded SQS server listening on %s", self._endpoint_url)

    def stop(self) -> None:
        """Stop the server. Idempotent."""
        with self._lock:
            server, self._server = self._server, None
            self._endpoint_url = None
        if server is not None:
            server.stop()

    def client(self, **config: Any) -> SQSClient:
        """A boto3 SQS client for this server (dummy credentials; none are checked)."""
        from ._aws import make_sqs_client

        return make_sqs_client(
            sqs_client=None,
            session=None,
            credentials=("testing", "testing"),
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            **config,
        )

    def create_queue(
        self, name: str, *, max_receive_count: int | None = None, **attributes: str
    ) -> str:
        """Create a queue (attributes as SQS names them) and return its URL.

        With ``max_receive_count``, a dead-letter queue ``<name>-dlq`` is created first. The
        queue gets a redrive policy to it, so a poller on it does not warn.

        Example::

            queue_url = sqs.create_queue("orders", max_receive_count=3)
        """
        queue_url, _ = create_queue_with_dead_letters(
            self.client(), name, attributes, max_receive_count=max_receive_count
        )
        return queue_url


def _check_port_is_free(port: int) -> None:
    # moto binds in its own thread and does not report a failure there: the requests then go
    # to whatever holds the port, and hang. Binding first turns that into a clear error.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As werkzeug does: a port left in TIME_WAIT by a server that just stopped is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ConfigurationError(
                f"port {port} on 127.0.0.1 is in use ({exc.strerror}): stop what holds it, "
                "or pick another port (0 picks a free one)"
            ) from exc


def create_queue_with_dead_letters(
    sqs: SQSClient,
    name: str,
    attributes: dict[str, str] | None = None,
    *,
    max_receive_count: int | None = DEFAULT_MAX_RECEIVE_COUNT,
) -> tuple[str, str | None]:
    """Create a queue and, unless ``max_receive_count`` is None, its dead-letter queue.

    The dead-letter queue is ``<name>-dlq`` (``<name>-dlq.fifo`` for a FIFO queue), of the
    same kind. Returns ``(queue_url, dead_letter_queue_url)``. Works on any SQS endpoint.
    """
    attributes = dict(attributes or {})
    fifo = name.endswith(".fifo")
    if fifo:
        attributes.setdefault("FifoQueue", "true")
    dead_letter_url: str | None = None
    if max_receive_count is not None:
        base = name.removesuffix(".fifo")
        dead_letter_name = f"{base}-dlq.fifo" if fifo else f"{base}-dlq"
        # The dead-letter queue of a FIFO queue must be FIFO too.
        dead_letter_attributes = {"FifoQueue": "true"} if fifo else {}
        with aws_errors("CreateQueue", dead_letter_name):
            dead_letter_url = sqs.create_queue(
                QueueName=dead_letter_name,
                Attributes=dead_letter_attributes,  # type: ignore[arg-type]
            )["QueueUrl"]
        with aws_errors("GetQueueAttributes", dead_letter_url):
            arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        attributes.setdefault(
            "RedrivePolicy",
            json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": max_receive_count}),
        )
    with aws_errors("CreateQueue", name):
        queue_url = sqs.create_queue(
            QueueName=name,
            Attributes=attributes,  # type: ignore[arg-type]
        )["QueueUrl"]
    return queue_url, dead_letter_url
