"""Process faults: a server SIGKILLed mid-handler, a client SIGKILLed with calls in flight,
and the SQS server restarted under load."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from sqs_rpc import (
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    RpcClient,
    SqsRpcError,
    Sweeper,
)
from sqs_rpc._aws import make_sqs_client
from sqs_rpc._loop import owner_id, thread_name
from tests.support.handlers import Echo
from tests.support.helpers import Endpoint, messages_in, wait_for

RECORDING_SERVER = Path(__file__).resolve().parents[1] / "support" / "recording_server.py"


class ServerProcess:
    """tests/support/recording_server.py in a subprocess, its output in files (a pipe could
    fill up)."""

    def __init__(
        self, endpoint: Endpoint, queue_url: str, executions: Path, logs: Path, hold: float
    ) -> None:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        self.stdout = logs.with_suffix(".out")
        self.stderr = logs.with_suffix(".err")
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(RECORDING_SERVER),
                    queue_url,
                    str(executions),
                    "--endpoint-url",
                    endpoint.endpoint_url,
                    "--region",
                    endpoint.region_name,
                    "--hold",
                    str(hold),
                ],
                env=env,
                stdout=out,
                stderr=err,
                text=True,
            )
        self.pid = self.process.pid

    def wait_ready(self) -> None:
        wait_for(lambda: "ready" in self.stdout.read_text() or self.process.poll(), timeout=60)
        assert self.process.poll() is None, self.stderr.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def spawn(endpoint: Endpoint, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start a server process; every one still running is stopped at teardown."""
    started: list[ServerProcess] = []

    def start(queue_url: str, executions: Path, name: str, hold: float) -> ServerProcess:
        server = ServerProcess(endpoint, queue_url, executions, tmp_path / name, hold)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


def _executions(path: Path) -> list[tuple[str, int, int]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        body, pid, count = line.split(" ")
        rows.append((body, int(pid), int(count)))
    return rows


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_server_killed_mid_handler_leaves_its_request_to_another(
    make_queue: Any,
    sqs: Any,
    spawn: Callable[..., ServerProcess],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="sqs_rpc._client.reply_poller")
    # A short visibility timeout: the killed server's heartbeat stops extending it, and the
    # request is visible again within 2 s.
    queue_url = make_queue(VisibilityTimeout="2")
    executions = tmp_path / "executions.txt"
    first = spawn(queue_url, executions, "first", hold=300)
    with RpcClient(sqs_client=sqs) as client:
        future = client.call_async(queue_url, "job", timeout=90)
        wait_for(lambda: _executions(executions), timeout=60)  # the handler is running
        # The second server polls the same queue; the first one's visibility heartbeat keeps
        # the running request hidden from it.
        second = spawn(queue_url, executions, "second", hold=0)
        assert len(_executions(executions)) == 1
        first.process.send_signal(signal.SIGKILL)
        assert first.process.wait(30) == -signal.SIGKILL
        reply = future.result(timeout=90)
        assert reply == {"body": "job", "pid": second.pid}  # answered by the second server
        # Executed twice (at-least-once): by the first server (killed), then by the second,
        # on the request's second delivery.
        assert _executions(executions) == [("job", first.pid, 1), ("job", second.pid, 2)]
        wait_for(lambda: messages_in(sqs, queue_url) == 0, timeout=30)  # and deleted
        # Both servers' work reached the caller as one reply: nothing else came back.
        assert client.call(queue_url, "after", timeout=60) == {"body": "after", "pid": second.pid}
        assert client.pending_calls == 0
    assert "dropping reply" not in caplog.text


# -- a client SIGKILLed with calls in flight ----------------------------------------------------

DOOMED_CLIENT = """
import sys
from sqs_rpc import RpcClient
endpoint, region, prefix, queue_url = sys.argv[1:5]
client = RpcClient(endpoint_url=endpoint, region_name=region, reply_queue_prefix=prefix,
                   heartbeat_interval=0.5, idle_retention=5)
for body in ("early", "late"):
    client.call_async(queue_url, body, timeout=600)
print(client.reply_queue_url, flush=True)
sys.stdin.read()  # wait to be killed
"""


class Gate(MessageHandler):
    """Holds each call until the test releases it by body."""

    def __init__(self) -> None:
        self.started: set[str] = set()
        self.release = {"early": threading.Event(), "late": threading.Event()}

    def handle(self, message: IncomingMessage) -> Any:
        self.started.add(message.body)
        assert self.release[message.body].wait(60)
        return message.body


def _exists(sqs: Any, url: str) -> bool:
    try:
        sqs.get_queue_attributes(QueueUrl=url)
    except sqs.exceptions.QueueDoesNotExist:
        return False
    return True


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_killed_clients_replies_go_to_its_queue_until_swept_then_are_dropped(
    endpoint: Endpoint,
    queue_url: str,
    sqs: Any,
    serve: Callable[..., MessagePoller],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sqs_rpc")
    prefix = f"sqs-rpc-reply-k{uuid.uuid4().hex[:8]}-"  # this test's queues only
    gate = Gate()
    poller = serve(queue_url, gate, concurrency=2)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    argv = [endpoint.endpoint_url, endpoint.region_name, prefix, queue_url]
    with subprocess.Popen(
        [sys.executable, "-c", DOOMED_CLIENT, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as child:
        try:
            assert child.stdout is not None
            dead_queue = child.stdout.readline().strip()
            wait_for(lambda: gate.started == {"early", "late"}, timeout=60)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    # The first reply goes to the dead client's queue, which still exists: a normal reply.
    gate.release["early"].set()
    wait_for(lambda: poller.stats().deleted == 1, timeout=30)
    assert poller.stats().replies_sent == 1

    # Nobody reads that queue any more; once its heartbeat is older than its retention (5 s)
    # a sweeper deletes it, with the reply it holds: a reply to a dead client is garbage.
    sweeper = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix)

    def swept() -> bool:
        sweeper.sweep()
        return not _exists(sqs, dead_queue)

    wait_for(swept, timeout=60, interval=0.5)
    # The second reply finds the queue gone: dropped, its request deleted, no error.
    gate.release["late"].set()
    wait_for(lambda: poller.stats().deleted == 2, timeout=30)
    stats = poller.stats()
    assert (stats.handled, stats.replies_sent, stats.failed) == (2, 1, 0)
    assert "is gone; dropping the reply" in caplog.text
    assert not [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and "redrive" not in r.getMessage()
    ]
    wait_for(lambda: messages_in(sqs, queue_url) == 0, timeout=30)
    assert poller.health().healthy


# -- the SQS server restarted under load ------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
CALL_TIMEOUT = 5.0
OUTAGE = 15.0  # long enough for the receive loops to back off to seconds between steps


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MotoProcess:
    """moto's server in its own process (tests/support/sqs_process.py) on a chosen port: killing
    it loses every queue and message, as a restarted SQS server without persistence would."""

    def __init__(self, port: int, logs: Path) -> None:
        self.out = logs.with_suffix(".out")
        with self.out.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.sqs_process", "--port", str(port)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        wait_for(lambda: self.out.read_text().strip() or self.process.poll(), timeout=60)
        assert self.process.poll() is None, "moto's server did not start"
        self.url = self.out.read_text().strip()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)
        assert self.process.stdin is not None
        self.process.stdin.close()


class Attempts:
    """Every HTTP attempt a boto3 client makes (botocore's retries included), with its time."""

    def __init__(self, *clients: Any) -> None:
        self._lock = threading.Lock()
        self.times: list[tuple[float, str]] = []
        for sqs in clients:
            sqs.meta.events.register("before-send.sqs", self._on_send)

    def _on_send(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.times.append((time.monotonic(), event_name.rsplit(".", 1)[-1]))

    def between(self, start: float, end: float) -> Counter[str]:
        """Attempts per operation in the window."""
        with self._lock:
            return Counter(op for t, op in self.times if start <= t < end)


class Load:
    """Callers making calls back to back until stopped; every outcome recorded with its time."""

    def __init__(self, client: RpcClient, queue_url: str, threads: int = 2) -> None:
        self._client = client
        self._queue_url = queue_url
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.outcomes: list[tuple[float, float, str]] = []  # (started, seconds, outcome)
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"load-{i}") for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, index: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            payload = f"{index}-{n}"
            started = time.monotonic()
            try:
                reply = self._client.call(self._queue_url, payload, timeout=CALL_TIMEOUT)
                outcome = "ok" if reply == {"echo": payload} else f"wrong {reply!r}"
            except SqsRpcError as exc:
                outcome = type(exc).__name__
            with self._lock:
                self.outcomes.append((started, time.monotonic() - started, outcome))
            if outcome != "ok":
                self._stop.wait(0.2)  # a failed call is retried a little later, as callers do

    def started_between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(1 for t, _, _ in self.outcomes if start <= t < end) + len(self._threads)

    def ok_since(self, moment: float) -> int:
        with self._lock:
            return sum(1 for t, _, o in self.outcomes if o == "ok" and t >= moment)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(CALL_TIMEOUT + 30)
            assert not thread.is_alive(), "a caller is stuck past its call's timeout"


def _threads_alive(fragment: str) -> list[str]:
    return [t.name for t in threading.enumerate() if fragment in t.name and t.is_alive()]


def _assert_backed_off(during: Counter[str], calls: int, seconds: float) -> None:
    """No hot retry loop: HTTP attempts during an outage are bounded by backoff and by calls."""
    print(f"SQS down {seconds:.1f}s, {calls} calls: HTTP attempts {dict(during)}")
    # The two receive loops (server, reply poller) back off: each failed step is at most
    # botocore's 5 attempts (fewer once its retry quota is spent), and the loops wait 0.1 s
    # doubling to 10 s between steps. Sends and deletes are made only for calls.
    assert during["ReceiveMessage"] < 80, during
    assert during["SendMessageBatch"] <= 5 * calls, (during, calls)
    # Deletes: of the request and of the reply of a call that was in flight at the crash.
    assert during["DeleteMessageBatch"] <= 5 * 2 * (calls + 2), during


@pytest.mark.embedded_server  # restarts its own moto server; cannot restart another endpoint
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_both_sides_recover_when_the_sqs_server_restarts_under_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    port = _free_port()
    moto = MotoProcess(port, tmp_path / "moto-1")
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )

    def sqs_client() -> Any:  # as sqs-rpc builds them for users: standard retries, 5 attempts
        return make_sqs_client(
            sqs_client=None, session=session, endpoint_url=moto.url, region_name="us-east-1"
        )

    admin, server_sqs, client_sqs = sqs_client(), sqs_client(), sqs_client()
    queue_url = admin.create_queue(QueueName="requests")["QueueUrl"]
    attempts = Attempts(server_sqs, client_sqs)
    poller = MessagePoller(queue_url, Echo(), sqs_client=server_sqs, wait_time_seconds=1)
    poller.start()
    client = RpcClient(sqs_client=client_sqs)
    load: Load | None = None
    try:
        load = Load(client, queue_url)
        wait_for(lambda: load.ok_since(0) >= 10, timeout=60)
        first_queue = client.reply_queue_url
        # The crash: every queue and message is gone with the process.
        moto.kill()
        down = time.monotonic()
        # The outage is a measurement window, not a synchronisation: how hard do both sides
        # retry while nothing answers? Connection refused is instant, so a loop without
        # backoff would make thousands of attempts here.
        threading.Event().wait(OUTAGE)
        moto = MotoProcess(port, tmp_path / "moto-2")
        up = time.monotonic()
        _assert_backed_off(attempts.between(down, up), load.started_between(down, up), up - down)
        # An operator (or infrastructure as code) recreates the request queue; the reply
        # queue is the client's own business.
        assert admin.create_queue(QueueName="requests")["QueueUrl"] == queue_url
        recreated = time.monotonic()
        # New calls succeed again, without restarting anything.
        wait_for(lambda: load.ok_since(recreated) >= 5, timeout=60)
        recovered = time.monotonic() - recreated
        print(f"calls succeed again {recovered:.1f}s after the queue was recreated")
        # No thread died: the server's receiver and outbox run on, and the client polls a
        # new reply queue (the old one went with the crash) on a live poller.
        assert poller.health().receiver_alive
        assert _threads_alive(thread_name("outbox", owner_id(poller)))
        assert client.reply_queue_url not in (None, first_queue)
        # One live poller: the new queue's. The lost queue's poller ended by itself.
        replies = thread_name("replies", owner_id(client))
        wait_for(lambda: len(_threads_alive(replies)) == 1, timeout=30)
        load.stop()
        outcomes = load.outcomes
        load = None
    finally:
        if load is not None:
            load.stop()
        client.close()
        poller.stop()
        moto.kill()
    kinds = Counter(o for _, _, o in outcomes)
    print(f"outcomes: {dict(kinds)}")
    # Every call ended with its reply or a clear error, and within its timeout.
    assert set(kinds) <= {"ok", "RpcTimeout", "ReplyQueueLost", "SqsError", "QueueDoesNotExist"}
    assert max(seconds for _, seconds, _ in outcomes) < CALL_TIMEOUT + 2
    assert client.reply_queue_url is None  # closed
    assert first_queue is not None
    assert "unexpected error" not in caplog.text
