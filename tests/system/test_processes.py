"""PollerPool and ``serve --processes``: real spawned children on the embedded SQS server.

Each test waits on conditions (a log line, a pid, a counter), never on a fixed sleep. A
spawned child imports boto3 and sqs-rpc before it polls: a few seconds on a loaded machine,
hence the generous deadlines.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sqs_rpc import PollerPool, PoolFailed, RpcClient
from tests.support.child_process import Child
from tests.support.helpers import ROOT, Endpoint, messages_in, wait_for
from tests.support.pool_factories import CrashOnMessage, EchoPoller

BOOT = 60.0  # seconds for spawned children to import and start polling


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, exited but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def pools() -> Iterator[Callable[..., PollerPool]]:
    """Start a PollerPool; every pool started here is stopped (and its children reaped)."""
    started: list[PollerPool] = []

    def start(factory: Any, **options: Any) -> PollerPool:
        options.setdefault("stats_interval", 0.1)
        pool = PollerPool(factory, **options)
        started.append(pool)
        pool.start()
        return pool

    yield start
    for pool in started:
        pool.stop(10)


@pytest.mark.timeout(180)
def test_every_child_serves_calls_and_the_stats_are_summed(
    endpoint: Endpoint, queue_url: str, sqs: Any, pools: Callable[..., PollerPool]
) -> None:
    factory = EchoPoller(queue_url, endpoint.endpoint_url, endpoint.region_name)
    pool = pools(factory, processes=2)
    children = wait_for(lambda: len(pool.pids()) == 2 and pool.pids(), timeout=BOOT)
    with RpcClient(sqs_client=sqs) as client:
        # 0.2 s each, 30 at once: more than one child's 10 workers hold, so both answer.
        futures = [
            client.call_async(queue_url, {"sleep": 0.2, "i": i}, timeout=60) for i in range(30)
        ]
        replies = [future.result() for future in futures]
    assert [reply["body"]["i"] for reply in replies] == list(range(30))
    assert {reply["pid"] for reply in replies} == set(children)
    # Deletes go out in batches after the replies: wait for the last report to count them.
    stats = wait_for(lambda: (now := pool.stats()).deleted == 30 and now, timeout=10)
    assert (stats.replies_sent, stats.deleted, stats.failed, stats.in_flight) == (30, 30, 0, 0)
    assert stats.latency.count == 30
    assert stats.requests["ReceiveMessage"] >= 2
    assert pool.stop(30) is True
    assert not any(_alive(pid) for pid in children)
    assert pool.stats().handled == 30  # the counters of exited children are kept


@pytest.mark.timeout(180)
def test_a_killed_child_is_restarted_and_calls_keep_succeeding(
    endpoint: Endpoint, make_queue: Callable[..., str], sqs: Any, pools: Callable[..., PollerPool]
) -> None:
    # The victim's long poll outlives it at the server, and may take the next request into a
    # dead socket: hidden for the visibility timeout (the cost of a forced exit), so keep it
    # short rather than let a call wait out the default 30 s.
    queue_url = make_queue(VisibilityTimeout="2")
    factory = EchoPoller(queue_url, endpoint.endpoint_url, endpoint.region_name)
    pool = pools(factory, processes=2)
    wait_for(lambda: len(pool.pids()) == 2, timeout=BOOT)
    with RpcClient(sqs_client=sqs) as client:
        victim = client.call(queue_url, "who", timeout=30)["pid"]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: pool.restarts == 1, timeout=10)
        # While the slot restarts, the other child answers.
        assert client.call(queue_url, "still", timeout=30)["pid"] != victim
        children = wait_for(
            lambda: len(pool.pids()) == 2 and victim not in pool.pids() and pool.pids(),
            timeout=BOOT,
        )
        futures = [client.call_async(queue_url, {"sleep": 0.2}, timeout=60) for _ in range(30)]
        assert {future.result()["pid"] for future in futures} == set(children)
    # The victim's last call may have come after its last stats report: 31, not 32.
    wait_for(lambda: pool.stats().handled >= 31, timeout=10)
    assert pool.stop(30) is True


@pytest.mark.timeout(180)
def test_a_child_past_the_graceful_timeout_is_killed_and_its_call_redelivered(
    endpoint: Endpoint, make_queue: Callable[..., str], sqs: Any, pools: Callable[..., PollerPool]
) -> None:
    queue_url = make_queue(VisibilityTimeout="2")
    # The handler holds the call 60 s and the poller would wait for it: the pool will not.
    factory = EchoPoller(queue_url, endpoint.endpoint_url, endpoint.region_name, 120)
    pool = pools(factory, processes=1, graceful_timeout=1)
    wait_for(lambda: len(pool.pids()) == 1, timeout=BOOT)
    [child] = pool.pids()
    with RpcClient(sqs_client=sqs) as client:
        future = client.call_async(queue_url, {"sleep": 60, "first_only": True}, timeout=120)
        wait_for(lambda: pool.stats().in_flight == 1, timeout=30)
        began = time.monotonic()
        assert pool.stop() is False  # SIGKILLed
        assert time.monotonic() - began < 1 + 5
        assert not _alive(child)
        assert messages_in(sqs, queue_url) == 1  # not deleted: it comes back
        # Another server gets the redelivery once the dead child's visibility runs out.
        again = pools(factory, processes=1)
        reply = future.result(timeout=BOOT)
    assert reply["pid"] in again.pids()
    assert reply["pid"] != child
    assert again.stop(30) is True


@pytest.mark.timeout(180)
def test_a_hung_child_is_killed_and_replaced_but_a_long_handler_is_not(
    endpoint: Endpoint,
    queue_url: str,
    sqs: Any,
    pools: Callable[..., PollerPool],
    caplog: pytest.LogCaptureFixture,
) -> None:
    factory = EchoPoller(queue_url, endpoint.endpoint_url, endpoint.region_name)
    pool = pools(factory, processes=2, liveness_timeout=2)
    wait_for(lambda: len(pool.pids()) == 2, timeout=BOOT)
    with RpcClient(sqs_client=sqs) as client:
        # A handler busy twice the liveness bound: its child keeps reporting, so it lives.
        reply = client.call(queue_url, {"sleep": 4}, timeout=60)
        assert reply["pid"] in pool.pids()
        assert pool.restarts == 0
        # A stopped process reports nothing, as a wedged one would.
        victim = pool.pids()[0]
        os.kill(victim, signal.SIGSTOP)
        wait_for(lambda: pool.restarts == 1, timeout=2 + 10)
        assert f"(pid {victim}) sent no report for" in caplog.text
        wait_for(lambda: not _alive(victim), timeout=10)
        children = wait_for(
            lambda: len(pool.pids()) == 2 and victim not in pool.pids() and pool.pids(),
            timeout=BOOT,
        )
        assert {client.call(queue_url, "again", timeout=30)["pid"]} <= set(children)
    assert pool.restarts == 1
    assert pool.stop(30) is True


@pytest.mark.timeout(120)
def test_a_factory_that_fails_at_start_makes_run_give_up(
    pools: Callable[..., PollerPool],
) -> None:
    # A "module:function" factory, imported in each child.
    pool = PollerPool("tests.support.pool_factories:crash_at_start", processes=2)
    began = time.monotonic()
    with pytest.raises(PoolFailed, match="failed to start: RuntimeError: the handler's database"):
        pool.run()
    assert time.monotonic() - began < BOOT
    assert pool.restarts == 0
    assert pool.pids() == []


@pytest.mark.timeout(180)
def test_a_child_that_keeps_dying_makes_the_pool_give_up(
    endpoint: Endpoint, make_queue: Callable[..., str], sqs: Any
) -> None:
    queue_url = make_queue(VisibilityTimeout="1")
    sqs.send_message(QueueUrl=queue_url, MessageBody='"poison"')  # kills each child it reaches
    factory = CrashOnMessage(EchoPoller(queue_url, endpoint.endpoint_url, endpoint.region_name))
    pool = PollerPool(factory, processes=1, max_restarts=2, stats_interval=0.1)
    with pytest.raises(
        PoolFailed, match=r"exited with code 7; it exited 3 times within 60 s"
    ) as info:
        pool.run()
    assert (info.value.worker, info.value.exit_code, pool.restarts) == (0, 7, 2)


# Starts a pool and never stops it: the program ends ("end") or raises ("raise") with the
# children serving, or ends while a handler holds a message for 60 s ("busy"; its poller
# would wait 120 s, the pool's graceful_timeout is 2 s). Only the pool's exit finalizer
# stands between it and a hang.
ABANDONED_POOL = """
import sys

from sqs_rpc import PollerPool

if __name__ == "__main__":
    root, queue_url, endpoint_url, region_name, ending = sys.argv[1:]
    sys.path.insert(0, root)  # spawned children get this sys.path too
    from tests.support.helpers import wait_for
    from tests.support.pool_factories import EchoPoller

    factory = EchoPoller(queue_url, endpoint_url, region_name, 120)
    graceful = 2 if ending == "busy" else 20
    pool = PollerPool(factory, processes=2, graceful_timeout=graceful, stats_interval=0.1)
    pool.start()
    wait_for(lambda: len(pool.pids()) == 2, timeout=60)
    print("children", *pool.pids(), flush=True)
    if ending == "busy":
        import boto3

        sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name=region_name)
        sqs.send_message(QueueUrl=queue_url, MessageBody='{"sleep": 60}')
        wait_for(lambda: pool.stats().in_flight == 1, timeout=30)
    if ending == "raise":
        raise RuntimeError("the main program failed")
"""


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("ending", "exit_code", "bound"), [("end", 0, 20), ("raise", 1, 20), ("busy", 0, 2 + 5 + 10)]
)
def test_a_pool_never_stopped_is_stopped_at_exit(
    endpoint: Endpoint, queue_url: str, ending: str, exit_code: int, bound: float
) -> None:
    args = [str(ROOT), queue_url, endpoint.endpoint_url, endpoint.region_name, ending]
    with Child(["-c", ABANDONED_POOL, *args]) as child:
        children = [int(pid) for pid in child.wait_for_line("children", timeout=BOOT).split()[1:]]
        assert len(children) == 2
        if ending == "busy":
            child.wait_for_line("holding")
        # Idle children drain in a second (their long poll) within graceful_timeout (20 s); a
        # busy one is SIGKILLed at graceful_timeout (2 s), and reaped within 5 s more.
        assert child.wait(timeout=bound) == exit_code, child.output
    assert not any(_alive(pid) for pid in children)
    assert "a PollerPool was never stopped" in child.output
    assert ("still running: SIGKILL" in child.output) == (ending == "busy"), child.output
    if ending == "raise":
        assert "RuntimeError: the main program failed" in child.output


def _serve(endpoint: Endpoint, queue_url: str, *options: str) -> list[str]:
    where = ["--endpoint-url", endpoint.endpoint_url, "--region", endpoint.region_name]
    return [
        "-m",
        "sqs_rpc",
        "serve",
        "tests.support.pool_factories:PidEcho",
        "--app-dir",
        str(ROOT),
        "--queue-url",
        queue_url,
        "--wait-time",
        "1",
        *options,
        *where,
    ]


def _ready_pids(child: Child, processes: int) -> list[int]:
    return [
        int(child.wait_for_line(f"worker {index} ready (pid", timeout=BOOT).split()[-1][:-1])
        for index in range(processes)
    ]


@pytest.mark.timeout(180)
def test_sigterm_to_serve_drains_every_child_and_answers_the_call_in_flight(
    endpoint: Endpoint, queue_url: str, sqs: Any
) -> None:
    with Child(
        _serve(endpoint, queue_url, "--processes", "2", "--shutdown-timeout", "20")
    ) as child:
        children = _ready_pids(child, 2)
        with RpcClient(sqs_client=sqs) as client:
            future = client.call_async(queue_url, {"sleep": 2}, timeout=60)
            child.wait_for_line("holding")  # logged by a child, prefixed with it
            sent = child.signal(signal.SIGTERM)
            assert child.wait(timeout=20 + 15 + 10) == 0
            took = time.monotonic() - sent
            reply = future.result(timeout=10)
    assert reply["pid"] in children
    assert took < 20, child.output  # the 2 s call drained; nobody was killed
    assert not any(_alive(pid) for pid in children)
    assert messages_in(sqs, queue_url) == 0
    assert "still running: SIGKILL" not in child.output
    assert "stopped; totals: received 1, handled 1" in child.output


@pytest.mark.timeout(120)
def test_children_exit_when_their_supervisor_is_killed(endpoint: Endpoint, queue_url: str) -> None:
    with Child(_serve(endpoint, queue_url, "--processes", "2")) as child:
        children = _ready_pids(child, 2)
        child.signal(signal.SIGKILL)
        child.wait(timeout=10)
        wait_for(lambda: not any(_alive(pid) for pid in children), timeout=30)


@pytest.mark.timeout(120)
def test_serve_gives_up_on_a_handler_that_crashes_at_import(
    endpoint: Endpoint, queue_url: str, tmp_path: Path
) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('no config file')\n")
    args = _serve(endpoint, queue_url, "--processes", "2")
    args[3:6] = ["broken:Handler", "--app-dir", str(tmp_path)]
    with Child(args) as child:
        began = time.monotonic()
        assert child.wait(timeout=BOOT) == 2, child.output  # ExitCode.USAGE, as with 1 process
    assert time.monotonic() - began < BOOT
    assert "no worker ever started, so the pool gives up" in child.output
    assert "importing 'broken' failed: RuntimeError: no config file" in child.output
    assert child.output.count("ready (pid") == 0


@pytest.mark.timeout(120)
def test_serve_processes_exits_5_when_the_queue_does_not_exist(endpoint: Endpoint) -> None:
    missing = f"{endpoint.endpoint_url}/123456789012/no-such-queue"
    with Child(_serve(endpoint, missing, "--processes", "2")) as child:
        assert child.wait(timeout=BOOT) == 5, child.output  # ExitCode.SQS_ERROR
    assert "failed to start: QueueDoesNotExist" in child.output
