"""Every way a client ends leaves no queue and no thread: exit, fork, a queue lost underneath."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import warnings
from multiprocessing.connection import Connection
from typing import Any

import boto3
import pytest

from sqs_rpc import ClientClosedError, MessagePoller, ReplyQueueLost, RpcClient
from sqs_rpc._loop import owner_id, thread_name
from tests.support.handlers import Echo
from tests.support.helpers import Endpoint, wait_for


def exists(sqs: Any, url: str) -> bool:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return url in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [])


def _env() -> dict[str, str]:
    return {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _session(endpoint: Endpoint) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=endpoint.region_name,
    )


EXITS_WITHOUT_CLOSE = """
import sys, threading
from sqs_rpc import RpcClient
client = RpcClient(endpoint_url=sys.argv[1], region_name=sys.argv[2])
client.call_async(sys.argv[3], "never answered", timeout=600)
print(client.reply_queue_url, flush=True)
print(sorted(t.name for t in threading.enumerate() if t.name.startswith("sqs-rpc-")), flush=True)
# No close(): the interpreter exits with the client open and its threads running.
"""


@pytest.mark.timeout(90)
def test_interpreter_exit_without_close_deletes_the_queue(
    endpoint: Endpoint, sqs: Any, queue_url: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", EXITS_WITHOUT_CLOSE, endpoint.endpoint_url,
         endpoint.region_name, queue_url],
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
        env=_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "could not close" not in result.stderr
    url, threads = result.stdout.splitlines()
    assert "replies" in threads  # the client was really running when the interpreter exited
    assert not exists(sqs, url)


FORKS_LIKE_GUNICORN = """
import os, sys
from sqs_rpc import RpcClient
client = RpcClient(endpoint_url=sys.argv[1], region_name=sys.argv[2])
client.call_async(sys.argv[3], "from the parent", timeout=600)
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:  # a worker: uses the inherited client, then exits normally without close()
    os.close(read_end)
    client.call_async(sys.argv[3], "from the child", timeout=600)
    os.write(write_end, client.reply_queue_url.encode())
    os.close(write_end)
    sys.exit(0)  # atexit runs here, in the child
os.close(write_end)
with os.fdopen(read_end) as pipe:
    child_url = pipe.read()
_, status = os.waitpid(pid, 0)
print(client.reply_queue_url, child_url, os.waitstatus_to_exitcode(status), flush=True)
input()  # the test checks the queues now; then the parent exits without close() too
"""


@pytest.mark.timeout(90)
def test_a_worker_forked_like_gunicorn_exits_without_touching_the_parents_queue(
    endpoint: Endpoint, sqs: Any, queue_url: str
) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", FORKS_LIKE_GUNICORN, endpoint.endpoint_url,
         endpoint.region_name, queue_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    ) as parent:  # fmt: skip
        assert parent.stdout is not None
        assert parent.stdin is not None
        parent_url, child_url, child_exit = parent.stdout.readline().split()
        assert child_exit == "0"
        assert child_url != parent_url
        assert not exists(sqs, child_url)  # the child's atexit deleted the child's own queue
        assert exists(sqs, parent_url)  # and left the parent's alone
        parent.stdin.write("\n")
        parent.stdin.flush()
        _, stderr = parent.communicate(timeout=60)
    assert parent.returncode == 0, stderr
    assert not exists(sqs, parent_url)  # the parent's atexit deleted the parent's


def _library_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("sqs-rpc-"))


def _call_in_child(client: RpcClient, queue_url: str, conn: Connection) -> None:
    """Runs in a forked child: use the inherited client, close it, report."""
    try:
        try:
            outcome: tuple[str, Any, str | None] = (
                "ok",
                client.call(queue_url, {"from": "child"}, timeout=30),
                client.reply_queue_url,
            )
        except Exception as exc:
            outcome = ("error", f"{type(exc).__name__}: {exc}", None)
        threads_before_close = _library_threads()
        client.close()  # joins every thread it stops: none may be left right after it
        conn.send((*outcome, threads_before_close, _library_threads()))
    finally:
        conn.close()


def _fork(target: Any, *args: Any) -> tuple[Any, int | None]:
    context = multiprocessing.get_context("fork")
    parent_end, child_end = context.Pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads may deadlock; sqs-rpc's
        # fork hook is exactly what makes that safe for its own locks and threads.
        warnings.simplefilter("ignore", DeprecationWarning)
        process = context.Process(target=target, args=(*args, child_end), daemon=True)
        process.start()
    child_end.close()
    try:
        if not parent_end.poll(60):
            pytest.fail("the forked child did not report within 60 s")
        outcome = parent_end.recv()
    finally:
        process.join(30)
        if process.is_alive():
            process.kill()
            process.join(10)
        parent_end.close()
    return outcome, process.exitcode


@pytest.mark.timeout(120)
def test_a_forked_child_gets_its_own_queue_and_the_parent_keeps_working(
    endpoint: Endpoint, sqs: Any, queue_url: str, serve: Any
) -> None:
    serve(queue_url, Echo())
    with RpcClient(session=_session(endpoint), endpoint_url=endpoint.endpoint_url) as client:
        assert client.call(queue_url, "parent first", timeout=30) == {"echo": "parent first"}
        parent_url = client.reply_queue_url
        assert parent_url is not None

        outcome, exitcode = _fork(_call_in_child, client, queue_url)
        status, reply, child_url, threads_in_use, threads_after_close = outcome

        assert exitcode == 0
        assert (status, reply) == ("ok", {"echo": {"from": "child"}})
        # The child ran its own poller and heartbeat (the parent's threads do not survive a
        # fork), and close() ended them all.
        assert "sqs-rpc-heartbeat" in threads_in_use
        assert any(name.startswith("sqs-rpc-replies-") for name in threads_in_use)
        assert threads_after_close == []
        assert child_url != parent_url  # never the parent's queue: no reply stolen
        assert not exists(sqs, child_url)  # the child's close() deleted its own queue
        # The parent's queue, poller and heartbeat were untouched by the child.
        assert exists(sqs, parent_url)
        assert client.reply_queue_url == parent_url
        assert client.call(queue_url, "parent after", timeout=30) == {"echo": "parent after"}
    assert not exists(sqs, parent_url)


@pytest.mark.timeout(120)
def test_a_forked_child_with_an_injected_client_gets_a_clear_error(
    sqs: Any, queue_url: str
) -> None:
    with RpcClient(sqs_client=sqs) as client:
        client.call_async(queue_url, "x", timeout=60)
        parent_url = client.reply_queue_url
        (status, message, _, _, leftover), exitcode = _fork(_call_in_child, client, queue_url)
        assert leftover == []
        assert exitcode == 0
        assert status == "error"
        assert message.startswith(ClientClosedError.__name__)
        assert "create the RpcClient" in message
        assert "in the child" in message
        assert parent_url is not None
        assert exists(sqs, parent_url)


def test_a_queue_deleted_underneath_fails_waiting_calls_and_is_replaced(
    sqs: Any, queue_url: str, make_queue: Any
) -> None:
    silent = make_queue()  # nobody answers here: the call waits
    with RpcClient(
        sqs_client=sqs, reply_wait_time_seconds=1, heartbeat_interval=0.5, idle_retention=5
    ) as client:
        waiting = client.call_async(silent, "waits", timeout=60)
        lost_url = client.reply_queue_url
        assert lost_url is not None
        sqs.delete_queue(QueueUrl=lost_url)

        error = waiting.exception(timeout=30)
        assert isinstance(error, ReplyQueueLost)
        assert "Retrying is safe" in str(error)
        # The old queue's threads end by themselves: no hot loop on a missing queue.
        queue_threads = {thread_name(role, owner_id(client)) for role in ("replies", "timeouts")}
        wait_for(
            lambda: not [t for t in threading.enumerate() if t.name in queue_threads],
            timeout=20,
        )
        assert client.reply_queue_url is None

        with MessagePoller(queue_url, Echo(), sqs_client=sqs, wait_time_seconds=1):
            assert client.call(queue_url, "again", timeout=30) == {"echo": "again"}
        new_url = client.reply_queue_url
        assert new_url is not None
        assert new_url != lost_url
    assert not exists(sqs, new_url)
