"""A network-latency proxy between SQS clients and an SQS server, on 127.0.0.1 (asyncio).

    python -m tests.support.latency_proxy UPSTREAM_URL [--delay-ms 10] [--jitter-ms 1] [--seed 0]

Prints its endpoint URL on stdout and serves until its stdin closes (or SIGTERM). The
benchmarks run it as a process of its own, so that its CPU is measured apart from the SQS
server's and the RPC processes'; :class:`LatencyProxyProcess` starts and stops it.

What it models is a network link, which is what makes a local SQS emulator look like SQS over
the network: every request takes ``delay`` longer, and costs no CPU of the callers' while it
waits. Half of the delay is added on the way in, to each HTTP request as a whole (parsed:
``Content-Length`` or chunked bodies), the other half on the way back, to the response's bytes
as they arrive. So a long poll that ends because a message arrived returns half a delay later,
as over a network, and keep-alive connections are kept (botocore's pool reuses them).

Each client connection has its own upstream connection and its own two tasks, so a long-poll
``ReceiveMessage`` holding one connection never holds up requests on another. Jitter is uniform
in +-``jitter``/2 per direction, drawn from ``random.Random(seed)``: the same sequence of draws
on each run (which request gets which draw depends on arrival order). Within a connection the
delivery times never go backwards, so jitter cannot reorder bytes.

Example::

    with LatencyProxyProcess(upstream_url, delay=0.010, jitter=0.001, seed=7) as proxy:
        sqs = boto3.client("sqs", endpoint_url=proxy.endpoint_url, ...)
        proxy.pid  # for CPU measurements
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_DELAY",
    "DEFAULT_JITTER",
    "LatencyProxy",
    "LatencyProxyProcess",
    "main",
]

DEFAULT_DELAY = 0.010  # seconds added to each request's round trip
DEFAULT_JITTER = 0.001  # seconds, the width of the uniform jitter on that round trip
START_TIMEOUT = 30.0
MAX_HEADER_BYTES = 64 * 1024
READ_SIZE = 64 * 1024


class LatencyProxy:
    """The proxy itself, on a running asyncio loop: ``await start()``, ``await stop()``."""

    def __init__(
        self,
        upstream_url: str,
        *,
        delay: float = DEFAULT_DELAY,
        jitter: float = DEFAULT_JITTER,
        seed: int = 0,
        port: int = 0,
    ) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream_url {upstream_url!r} must be http://HOST:PORT")
        if delay < 0 or jitter < 0 or jitter > delay:
            raise ValueError(f"need 0 <= jitter <= delay (got delay={delay}, jitter={jitter})")
        self._upstream = (parts.hostname, parts.port or 80)
        self._one_way = delay / 2
        self._half_jitter = jitter / 2
        self._random = random.Random(seed)
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.endpoint_url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self._port)
        port = self._server.sockets[0].getsockname()[1]
        self.endpoint_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        # Stop order: stop accepting, then cancel each connection (its tasks close both sockets).
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    def _latency(self) -> float:
        """One direction's delay: half the round trip, +- half the jitter."""
        return self._one_way + self._random.uniform(-self._half_jitter, self._half_jitter)

    async def _connection(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
            for writer in (client_writer, upstream_writer):
                sock = writer.get_extra_info("socket")
                if sock is not None:  # small requests: do not wait for Nagle
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            inbound = asyncio.create_task(self._requests(client_reader, upstream_writer))
            outbound = asyncio.create_task(self._responses(upstream_reader, client_writer))
            # Either side closing ends the connection; the response pump delivers what it
            # holds before it returns, so a "Connection: close" response still arrives.
            try:
                await asyncio.wait({inbound, outbound}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in (inbound, outbound):
                    pump.cancel()
                await asyncio.gather(inbound, outbound, return_exceptions=True)
        except OSError:
            pass  # the upstream refused or went away: close the client's connection
        except asyncio.CancelledError:
            # stop() cancels us. End quietly rather than re-raise: asyncio's streams call
            # exception() on this task when it ends, which raises for a cancelled one.
            pass
        finally:
            for closing in (client_writer, upstream_writer):
                if closing is not None:
                    closing.close()
                    with contextlib.suppress(OSError, asyncio.CancelledError):
                        await closing.wait_closed()
            self._connections.discard(task)

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward each whole request, half a delay after it arrived."""
        loop = asyncio.get_running_loop()
        last_due = 0.0
        while True:
            try:
                request = await _read_request(reader)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                return  # the client closed, or sent something that is not HTTP/1.1
            due = last_due = max(loop.time() + self._latency(), last_due)
            await asyncio.sleep(due - loop.time())
            writer.write(request)
            await writer.drain()

    async def _responses(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Deliver the upstream's bytes half a delay after each arrived (a link, not a parser)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def feed() -> None:
            last_due = 0.0
            while True:
                try:
                    chunk = await reader.read(READ_SIZE)
                except OSError:
                    chunk = b""  # a reset upstream: end the connection like a close
                last_due = max(loop.time() + self._latency(), last_due)
                queue.put_nowait((last_due, chunk))
                if not chunk:
                    return

        feeder = asyncio.create_task(feed())
        try:
            while True:
                due, chunk = await queue.get()
                await asyncio.sleep(max(due - loop.time(), 0.0))
                if not chunk:
                    return  # the upstream closed: so does the client's connection
                writer.write(chunk)
                await writer.drain()
        finally:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 request, head and body, as bytes (raises IncompleteReadError at EOF)."""
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError("request head too long")
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return head + (await reader.readexactly(length) if length else b"")
    parts = [head]
    while True:  # chunk-size line, chunk, CRLF ... 0-size chunk, trailers, CRLF
        size_line = await reader.readuntil(b"\r\n")
        parts.append(size_line)
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while True:
                trailer = await reader.readuntil(b"\r\n")
                parts.append(trailer)
                if trailer == b"\r\n":
                    return b"".join(parts)
        parts.append(await reader.readexactly(size + 2))


async def _serve(proxy: LatencyProxy) -> None:
    """Serve until stdin closes or SIGTERM/SIGINT arrives; print the endpoint first."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    def watch_stdin() -> None:
        sys.stdin.read()  # the parent closes our stdin to stop us
        loop.call_soon_threadsafe(stopping.set)

    await proxy.start()
    print(proxy.endpoint_url, flush=True)
    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    await stopping.wait()
    await proxy.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("upstream", help="the SQS server, http://HOST:PORT")
    parser.add_argument("--delay-ms", type=float, default=DEFAULT_DELAY * 1000)
    parser.add_argument("--jitter-ms", type=float, default=DEFAULT_JITTER * 1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 (default): a free one")
    args = parser.parse_args(argv)
    proxy = LatencyProxy(
        args.upstream,
        delay=args.delay_ms / 1000,
        jitter=args.jitter_ms / 1000,
        seed=args.seed,
        port=args.port,
    )
    asyncio.run(_serve(proxy))
    return 0


class LatencyProxyProcess:
    """``python -m tests.support.latency_proxy`` in a child process; a context manager."""

    def __init__(
        self,
        upstream_url: str,
        *,
        delay: float = DEFAULT_DELAY,
        jitter: float = DEFAULT_JITTER,
        seed: int = 0,
    ) -> None:
        self._argv = [
            sys.executable,
            "-m",
            "tests.support.latency_proxy",
            upstream_url,
            f"--delay-ms={delay * 1000:g}",
            f"--jitter-ms={jitter * 1000:g}",
            f"--seed={seed}",
        ]
        self._process: subprocess.Popen[str] | None = None
        self.endpoint_url = ""

    def __enter__(self) -> LatencyProxyProcess:
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
    def pid(self) -> int | None:
        """The proxy's process id while it runs (for CPU measurements), else None."""
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        process = subprocess.Popen(
            self._argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        self._process = process
        assert process.stdout is not None
        line: list[str] = []
        stdout = process.stdout
        reader = threading.Thread(target=lambda: line.append(stdout.readline()))
        reader.start()
        reader.join(START_TIMEOUT)
        if not line or not line[0].startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the latency proxy did not start in {START_TIMEOUT:g}s: {line!r}")
        self.endpoint_url = line[0].strip()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
