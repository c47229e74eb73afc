"""SIGTERM and Ctrl-C: what they leave behind, each in a process of its own.

- ``MessagePoller.run()`` closes every client of its process once stopped, so a client that
  handler code made is closed, and its reply queue deleted, even if a call of it still waits.
- A plain client process: Python's default SIGTERM action runs no ``atexit``, so the queue is
  left for the sweeper, unless the application installs the documented one-line handler.
- A stop does not wait out the long poll in progress: that receive ends on its own and
  releases what it brings (visibility 0), so the next poller answers it at once.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sqs_rpc import MessagePoller, RpcClient
from sqs_rpc._loop import owner_id, thread_name
from tests.support.child_process import Child
from tests.support.handlers import Echo
from tests.support.helpers import ROOT, Endpoint, wait_for
from tests.support.helpers import queue_listed as exists

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SERVER_WITH_A_CLIENT = """
import logging, sys
from sqs_rpc import MessageHandler, MessagePoller, RpcClient

endpoint, region, requests, downstream = sys.argv[1:5]
client = RpcClient(endpoint_url=endpoint, region_name=region)  # the handlers' client


class CallsDownstream(MessageHandler):
    def handle(self, message):
        future = client.call_async(downstream, "never answered", timeout=600)
        print("reply queue", client.reply_queue_url, flush=True)
        return future.result()  # still waiting at SIGTERM, past the shutdown timeout


logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s: %(message)s")
poller = MessagePoller(
    requests, CallsDownstream(), endpoint_url=endpoint, region_name=region,
    shutdown_timeout=1, wait_time_seconds=1,
)
poller.run()
print("run() returned; client closed:", client.closed, flush=True)
"""


@pytest.mark.timeout(60)
def test_sigterm_to_run_closes_the_clients_of_the_handlers(
    endpoint: Endpoint, sqs: Any, make_queue: Callable[..., str]
) -> None:
    requests, downstream = make_queue(), make_queue()
    args = ["-c", SERVER_WITH_A_CLIENT, endpoint.endpoint_url, endpoint.region_name]
    with Child([*args, requests, downstream]) as child:
        child.wait_for_line("polling")
        sqs.send_message(QueueUrl=requests, MessageBody='"work"')  # one-way: no reply
        reply_queue = child.wait_for_line("reply queue").split()[-1]
        assert exists(sqs, reply_queue)
        sent = child.signal(signal.SIGTERM)
        assert child.wait(timeout=20) == 0
        took = time.monotonic() - sent
    assert "run() returned; client closed: True" in child.output
    assert not exists(sqs, reply_queue), child.output
    assert took < 1 + 8, child.output  # shutdown_timeout + a few seconds


HANDLER_WITH_A_CLIENT = """
from sqs_rpc import MessageHandler, RpcClient

clients = []


class CallsDownstream(MessageHandler):
    def handle(self, message):
        where = message.body
        client = RpcClient(endpoint_url=where["endpoint"], region_name=where["region"])
        clients.append(client)
        future = client.call_async(where["downstream"], "never answered", timeout=600)
        print("reply queue", client.reply_queue_url, flush=True)
        return future.result()
"""


@pytest.mark.timeout(60)
def test_sigterm_to_serve_closes_the_clients_of_the_handlers(
    endpoint: Endpoint, sqs: Any, make_queue: Callable[..., str], tmp_path: Path
) -> None:
    requests, downstream = make_queue(), make_queue()
    (tmp_path / "calls_downstream.py").write_text(HANDLER_WITH_A_CLIENT)
    where = ["--endpoint-url", endpoint.endpoint_url, "--region", endpoint.region_name]
    serve = ["-m", "sqs_rpc", "serve", "calls_downstream:CallsDownstream"]
    options = ["--app-dir", str(tmp_path), "--queue-url", requests, "--shutdown-timeout", "1"]
    with Child([*serve, *options, "--wait-time", "1", *where]) as child:
        child.wait_for_line("polling")
        body = {
            "endpoint": endpoint.endpoint_url,
            "region": endpoint.region_name,
            "downstream": downstream,
        }
        sqs.send_message(QueueUrl=requests, MessageBody=json.dumps(body))
        reply_queue = child.wait_for_line("reply queue").split()[-1]
        sent = child.signal(signal.SIGTERM)
        assert child.wait(timeout=20) == 0
        took = time.monotonic() - sent
    assert "closed 1 RpcClient(s) still open in this process" in child.output
    assert not exists(sqs, reply_queue), child.output
    assert took < 1 + 8, child.output


SIGNAL_TAKEN_BY_A_THREAD = """
import signal, sys, threading, time

root, mode, queue_url, endpoint_url, region_name = sys.argv[1:]
sys.path.insert(0, root)  # spawned children get this sys.path too
from sqs_rpc import MessagePoller, PollerPool
from sqs_rpc._cli.main import main
from tests.support.handlers import Echo
from tests.support.pool_factories import EchoPoller


def main_thread_waits_to_stop():
    # The main thread sleeps in the kernel, in a wait called from run() (serve: _run()).
    main_thread = threading.main_thread()
    frame = sys._current_frames().get(main_thread.ident)
    names = []
    while frame is not None and len(names) < 5:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    with open(f"/proc/self/task/{main_thread.native_id}/stat") as stat:
        asleep = stat.read().rsplit(")", 1)[1].split()[0] == "S"
    return asleep and "wait" in names and bool({"run", "_run"} & set(names))


def take_the_signal():
    # The kernel may hand a process's SIGTERM to any of its threads: this one takes it.
    while not main_thread_waits_to_stop():
        time.sleep(0.01)
    print("signalling", flush=True)
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)


if __name__ == "__main__":
    threading.Thread(target=take_the_signal, daemon=True).start()
    where = {"endpoint_url": endpoint_url, "region_name": region_name}
    if mode == "MessagePoller.run":
        MessagePoller(queue_url, Echo(), wait_time_seconds=1, **where).run()
    elif mode == "PollerPool.run":
        factory = EchoPoller(queue_url, endpoint_url, region_name)
        PollerPool(factory, processes=1, stats_interval=0.1).run()
    else:
        options = ["--wait-time", "1", "--endpoint-url", endpoint_url, "--region", region_name]
        code = main(["serve", "tests.support.handlers:Echo", "--queue-url", queue_url, *options])
        print("serve exited", code, flush=True)
    print("returned", flush=True)
"""


@pytest.mark.timeout(120)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
@pytest.mark.parametrize("mode", ["MessagePoller.run", "serve", "PollerPool.run"])
def test_a_sigterm_taken_by_another_thread_still_stops_the_process(
    endpoint: Endpoint, queue_url: str, mode: str
) -> None:
    """A main thread blocked in a plain Event.wait() never ran the handler: CI saw it hang."""
    args = [str(ROOT), mode, queue_url, endpoint.endpoint_url, endpoint.region_name]
    with Child(["-c", SIGNAL_TAKEN_BY_A_THREAD, *args]) as child:
        child.wait_for_line("signalling", timeout=60)
        assert child.wait(timeout=30) == 0, child.output
    assert "returned" in child.output
    assert "serve exited 0" in child.output or mode != "serve"


PLAIN_CLIENT = """
import signal, sys, threading
from sqs_rpc import RpcClient

if sys.argv[4] == "recipe":
    # docs/operations.md: turn SIGTERM into a normal exit, so that atexit closes the clients.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
client = RpcClient(endpoint_url=sys.argv[1], region_name=sys.argv[2])
client.call_async(sys.argv[3], "never answered", timeout=600)
print("reply queue", client.reply_queue_url, flush=True)
done = threading.Event()
while not done.wait(1):  # docs/operations.md: a timeout, so the main thread runs the handler
    pass
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("handling", ["recipe", "default"])
def test_sigterm_to_a_plain_client_with_and_without_the_recipe(
    endpoint: Endpoint, sqs: Any, queue_url: str, handling: str
) -> None:
    args = ["-c", PLAIN_CLIENT, endpoint.endpoint_url, endpoint.region_name, queue_url]
    with Child([*args, handling]) as child:
        reply_queue = child.wait_for_line("reply queue").split()[-1]
        child.signal(signal.SIGTERM)
        code = child.wait(timeout=30)
    if handling == "recipe":
        assert code == 143, child.output
        assert not exists(sqs, reply_queue), child.output
    else:
        # Python's default: killed at once, no atexit. The sweeper's case; clean up here.
        assert code == -signal.SIGTERM
        assert exists(sqs, reply_queue)
        sqs.delete_queue(QueueUrl=reply_queue)


@pytest.mark.timeout(60)
def test_serve_exits_promptly_on_ctrl_c_during_a_long_poll(
    endpoint: Endpoint, queue_url: str
) -> None:
    where = ["--endpoint-url", endpoint.endpoint_url, "--region", endpoint.region_name]
    command = ["-m", "sqs_rpc", "-vv", "serve", "echo_server:Echo", "--app-dir", str(EXAMPLES)]
    with Child([*command, "--queue-url", queue_url, "--wait-time", "20", *where]) as child:
        child.wait_for_line("OperationModel(name=ReceiveMessage)")  # the long poll is on
        sent = child.signal(signal.SIGINT)
        assert child.wait(timeout=30) == 0
        took = time.monotonic() - sent
    assert took < 5, child.output  # not the 20 s of the long poll


@pytest.mark.timeout(60)
def test_stop_cuts_the_long_poll_short_and_its_late_message_is_released(
    sqs: Any, make_queue: Callable[..., str], serve: Callable[..., MessagePoller]
) -> None:
    # A message hidden by a lost receive would come back only after 60 s: the call would time out.
    queue = make_queue(VisibilityTimeout="60")
    receiving = threading.Event()

    def on_receive(**_: Any) -> None:
        receiving.set()

    sqs.meta.events.register("before-send.sqs.ReceiveMessage", on_receive)
    first = MessagePoller(queue, Echo(), sqs_client=sqs, wait_time_seconds=20)
    first.start()
    assert receiving.wait(10)
    started = time.monotonic()
    assert first.stop()
    assert time.monotonic() - started < 3  # not the 20 s of the long poll
    sqs.meta.events.unregister("before-send.sqs.ReceiveMessage", on_receive)

    receiver = thread_name("receiver", owner_id(first))
    with RpcClient(sqs_client=sqs) as client:
        asked = time.monotonic()
        future = client.call_async(queue, f"late-{uuid.uuid4().hex[:6]}", timeout=30)
        # The stopped poller's receive was still waiting: it takes the request, releases it
        # (visibility 0) and its thread ends.
        wait_for(lambda: receiver not in {t.name for t in threading.enumerate()}, timeout=25)
        assert first.stats().received == 1
        serve(queue, Echo())
        assert future.result(timeout=10)["echo"].startswith("late-")
        assert time.monotonic() - asked < 25
