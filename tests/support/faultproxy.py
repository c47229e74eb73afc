"""A fault-injecting HTTP proxy between an SQS client and an SQS server, on 127.0.0.1.

Stdlib only, so tests and a soak command can both import it. botocore (>= 1.34) speaks the AWS
JSON 1.0 protocol to SQS: every request is a POST whose ``X-Amz-Target`` header names the
operation (``AmazonSQS.ReceiveMessage``). The proxy forwards each request to the upstream
server unless a :class:`Fault` picks it, and counts requests per operation.

Fault kinds:

``500``, ``503``
    answer with that status and an ``InternalFailure`` / ``ServiceUnavailable`` error document;
    the request never reaches the server. botocore retries 500/502/503/504 as transient.
``throttle``
    answer 400 with ``{"__type": "com.amazonaws.sqs#ThrottlingException"}`` and the
    ``x-amzn-query-error: ThrottlingException;Sender`` header that SQS adds for its query-
    compatible clients; botocore reads the code ``ThrottlingException`` and its standard retry
    mode retries it as throttling. ``throttle-modeled`` sends SQS's own modeled
    ``RequestThrottled`` error instead.
``reset-before``, ``reset-after``
    reset the client's connection (RST) before forwarding the request, or after the server
    executed it but before its response is sent: the client cannot know whether it happened.
``latency``
    hold the request for ``delay`` seconds, then forward it.

Decisions are reproducible: each operation draws from its own ``random.Random`` seeded with
``seed`` and the operation's name, so one operation's sequence of decisions does not depend on
how requests of other operations interleave with it.

Example::

    with FaultProxy(upstream_url, seed=7) as proxy:
        proxy.set_faults(Fault("503", rate=0.2, operations={"ReceiveMessage"}))
        sqs = boto3.client("sqs", endpoint_url=proxy.endpoint_url, ...)
        ...
        proxy.requests()  # {"ReceiveMessage": 12, ...}
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

from tests.support.started import Started

__all__ = ["FAULT_KINDS", "Fault", "FaultProxy"]

FaultKind = Literal[
    "500", "503", "throttle", "throttle-modeled", "reset-before", "reset-after", "latency"
]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "500",
    "503",
    "throttle",
    "throttle-modeled",
    "reset-before",
    "reset-after",
    "latency",
)
# Longer than SQS's longest long poll (20 s), so only a real hang times out upstream.
UPSTREAM_TIMEOUT = 60.0
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
)
_ERRORS: dict[str, tuple[int, str, str]] = {
    # kind: (status, __type, x-amzn-query-error)
    "500": (500, "com.amazonaws.sqs#InternalFailure", "InternalFailure;Receiver"),
    "503": (503, "com.amazonaws.sqs#ServiceUnavailable", "ServiceUnavailable;Receiver"),
    "throttle": (400, "com.amazonaws.sqs#ThrottlingException", "ThrottlingException;Sender"),
    "throttle-modeled": (400, "com.amazonaws.sqs#RequestThrottled", "RequestThrottled;Sender"),
}


@dataclass(frozen=True)
class Fault:
    """Inject ``kind`` into a share ``rate`` (0..1) of the requests for ``operations``.

    ``operations`` are SQS operation names (``"SendMessage"``); None means every operation.
    ``delay`` is the hold, in seconds, of a ``latency`` fault.
    """

    kind: FaultKind
    rate: float = 1.0
    operations: frozenset[str] | None = None
    delay: float = 0.0

    def __init__(
        self,
        kind: FaultKind,
        rate: float = 1.0,
        operations: Iterable[str] | None = None,
        delay: float = 0.0,
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} is not one of {', '.join(FAULT_KINDS)}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate={rate!r} must be from 0 to 1")
        if kind == "latency" and delay <= 0:
            raise ValueError("a latency fault needs delay= seconds > 0")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "rate", rate)
        object.__setattr__(
            self, "operations", None if operations is None else frozenset(operations)
        )
        object.__setattr__(self, "delay", delay)

    def applies_to(self, operation: str) -> bool:
        return self.operations is None or operation in self.operations


class FaultProxy(Started):
    """A forwarding proxy on 127.0.0.1 (free port) that injects :class:`Fault` s."""

    def __init__(self, upstream_url: str, *, seed: int = 0, faults: Iterable[Fault] = ()) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream_url {upstream_url!r} must be http://HOST:PORT")
        self._upstream = (parts.hostname, parts.port or 80)
        self._seed = seed
        self._lock = threading.Lock()
        self._faults: tuple[Fault, ...] = tuple(faults)
        self._rngs: dict[str, random.Random] = {}
        self._requests: Counter[str] = Counter()
        self._injected: Counter[tuple[str, str]] = Counter()
        self._sockets: set[socket.socket] = set()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint_url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        # Join connection threads at server_close(); stop() unblocks them first.
        server.daemon_threads = False
        server.block_on_close = True
        self._server = server
        self.endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="faultproxy"
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        # Shutdown order: (1) stop accepting; (2) wake held latency faults and close every
        # client and upstream socket, so connection threads blocked in a read return;
        # (3) join those threads (server_close with block_on_close).
        server.shutdown()
        self._closing.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    # -- configuration and figures -----------------------------------------------------------

    def set_faults(self, *faults: Fault) -> None:
        """Replace the active faults (none: forward everything)."""
        with self._lock:
            self._faults = faults

    def requests(self) -> dict[str, int]:
        """Requests received per operation, faulted or not."""
        with self._lock:
            return dict(self._requests)

    def injected(self) -> dict[tuple[str, str], int]:
        """Faults injected, per (operation, kind)."""
        with self._lock:
            return dict(self._injected)

    def reset_counts(self) -> None:
        with self._lock:
            self._requests.clear()
            self._injected.clear()

    # -- used by the handler -----------------------------------------------------------------

    def _decide(self, operation: str) -> Fault | None:
        with self._lock:
            self._requests[operation] += 1
            rng = self._rngs.get(operation)
            if rng is None:
                rng = self._rngs[operation] = random.Random(f"{self._seed}:{operation}")
            draw = rng.random()  # one draw per request, whatever the faults: reproducible
            for fault in self._faults:
                if fault.applies_to(operation) and draw < fault.rate:
                    self._injected[(operation, fault.kind)] += 1
                    return fault
            return None

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)


def _operation(headers: Message, body: bytes) -> str:
    target = headers.get("X-Amz-Target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    # The older query protocol names the action in the form body.
    for pair in body.split(b"&"):
        if pair.startswith(b"Action="):
            return pair[7:].decode("ascii", "replace")
    return "Unknown"


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer sees a connection reset, not a clean close."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _handler_class(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects

        def setup(self) -> None:
            super().setup()
            proxy._track(self.connection, True)
            self._upstream: http.client.HTTPConnection | None = None

        def finish(self) -> None:
            proxy._track(self.connection, False)
            self._close_upstream()
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the counters are the record

        def do_POST(self) -> None:
            self._proxy()

        def do_GET(self) -> None:
            self._proxy()

        def _proxy(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            operation = _operation(self.headers, body)
            fault = proxy._decide(operation)
            kind = fault.kind if fault is not None else None
            if fault is not None and kind == "latency" and proxy._closing.wait(fault.delay):
                self.close_connection = True  # stopping: give up the held request
                return
            if kind == "reset-before":
                self._reset()
                return
            if kind in _ERRORS:
                self._error(_ERRORS[str(kind)])
                return
            try:
                status, reason, headers, payload = self._forward(body)
            except OSError:
                self._reset()  # the upstream went away: so does this connection
                return
            if kind == "reset-after":
                self._reset()
                return
            self.send_response_only(status, reason)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(
                    *proxy._upstream, timeout=UPSTREAM_TIMEOUT
                )
            conn = self._upstream
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                if conn.sock is not None:
                    proxy._track(conn.sock, True)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                self._close_upstream()
                raise OSError("upstream request failed") from None
            return response.status, response.reason, response.getheaders(), payload

        def _close_upstream(self) -> None:
            conn, self._upstream = self._upstream, None
            if conn is not None:
                if conn.sock is not None:
                    proxy._track(conn.sock, False)
                conn.close()

        def _error(self, error: tuple[int, str, str]) -> None:
            status, type_, query_error = error
            payload = json.dumps({"__type": type_, "message": "injected by faultproxy"}).encode()
            self.send_response_only(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("x-amzn-query-error", query_error)
            self.send_header("x-amzn-RequestId", "faultproxy")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _reset(self) -> None:
            self.close_connection = True
            proxy._track(self.connection, False)
            with contextlib.suppress(OSError):
                _reset(self.connection)

    return Handler
