"""A dead client's reply queue goes in the first sweep after its idle retention, whatever it holds.

A client that dies nearly always leaves messages in its queue: a received reply's delete waits
up to 0.2 s to share a batch, and the replies of calls in flight keep arriving. Those replies
are garbage, so they must not keep the queue alive.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, RpcClient, Sweeper
from sqs_rpc._attributes import HEARTBEAT_TAG, RETENTION_TAG
from sqs_rpc._sweeper import JAVA_HEARTBEAT_TAG, JAVA_RETENTION_TAG
from tests.support.handlers import Echo
from tests.support.helpers import Endpoint, messages_in, wait_for

IDLE_RETENTION = 3

# The dying client: one call answered at once, one held by the test's server. It prints its
# reply queue's URL, then dies as the scenario says: SIGKILLed by itself right after the
# first reply arrived (its delete not sent yet), or by the test while the second call is in
# flight (its reply comes after the death).
DYING_CLIENT = """
import os, signal, sys
from sqs_rpc import RpcClient
endpoint, region, prefix, retention, echo_queue, held_queue, moment = sys.argv[1:8]
client = RpcClient(endpoint_url=endpoint, region_name=region, reply_queue_prefix=prefix,
                   heartbeat_interval=1, idle_retention=int(retention))
if moment == "in_flight":
    client.call_async(held_queue, "held", timeout=600)
    print(client.reply_queue_url, flush=True)
    sys.stdin.read()  # wait to be killed
else:
    client.call(echo_queue, "answered", timeout=30)
    print(client.reply_queue_url, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


class Held(MessageHandler):
    """Holds each call until the test releases it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def handle(self, message: IncomingMessage) -> Any:
        self.started.set()
        assert self.release.wait(60)
        return "too late"


class Servers:
    """Two request queues: one answered at once, one whose calls the test holds."""

    def __init__(self, make_queue: Callable[..., str], serve: Callable[..., MessagePoller]):
        self.echo_queue, self.held_queue = make_queue(), make_queue()
        serve(self.echo_queue, Echo())
        self.held = Held()
        self.held_server = serve(self.held_queue, self.held)


@pytest.fixture
def servers(
    make_queue: Callable[..., str], serve: Callable[..., MessagePoller]
) -> Iterator[Servers]:
    servers = Servers(make_queue, serve)
    yield servers
    servers.held.release.set()  # before the pollers stop: a held handler would delay them


@pytest.fixture
def prefix() -> str:
    """A reply queue prefix no other test uses, so each test sweeps only its own queues."""
    return f"sqs-rpc-reply-s{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def tagged_queue(sqs: Any, prefix: str) -> Iterator[Callable[[dict[str, str]], str]]:
    created: list[str] = []

    def make(tags: dict[str, str]) -> str:
        url: str = sqs.create_queue(QueueName=prefix + uuid.uuid4().hex, tags=tags)["QueueUrl"]
        created.append(url)
        return url

    yield make
    for url in created:
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=url)


def exists(sqs: Any, url: str) -> bool:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return url in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [])


def messages_held(sqs: Any, url: str) -> int:
    """Messages in a queue, visible, in flight or delayed."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return messages_in(sqs, url) + int(attributes.get("ApproximateNumberOfMessagesDelayed", 0))


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("moment", ["after_a_reply", "in_flight"])
def test_a_killed_clients_queue_goes_in_the_first_sweep_after_its_retention(
    endpoint: Endpoint, sqs: Any, servers: Servers, prefix: str, moment: str
) -> None:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    argv = [endpoint.endpoint_url, endpoint.region_name, prefix, str(IDLE_RETENTION)]
    with subprocess.Popen(
        [sys.executable, "-c", DYING_CLIENT, *argv, servers.echo_queue, servers.held_queue, moment],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as child:
        try:
            assert child.stdout is not None
            dead_queue = child.stdout.readline().strip()
            assert dead_queue.startswith("http"), dead_queue
            if moment == "in_flight":
                assert servers.held.started.wait(30), "the held call never reached its server"
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    if moment == "in_flight":
        servers.held.release.set()  # its reply goes to the dead client's queue
        wait_for(lambda: servers.held_server.stats().replies_sent == 1, timeout=30)
    # The reply is left in the queue: received but not deleted, or never received.
    assert messages_held(sqs, dead_queue) == 1

    tags = sqs.list_queue_tags(QueueUrl=dead_queue)["Tags"]
    heartbeat, retention = float(tags[HEARTBEAT_TAG]), float(tags[RETENTION_TAG])
    assert retention == IDLE_RETENTION
    # Nobody beats for a dead client: wait (by the clock, with a deadline) until its last
    # heartbeat is older than its retention, as the sweeper reckons it.
    wait_for(lambda: time.time() - heartbeat > retention, timeout=30, interval=0.1)

    report = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix).sweep()

    assert [(d.queue_url, d.action) for d in report.decisions] == [(dead_queue, "deleted")]
    assert not exists(sqs, dead_queue)


def test_idle_sqs_rpc_queues_go_whatever_they_hold_java_ones_only_when_empty(
    sqs: Any, prefix: str, tagged_queue: Callable[[dict[str, str]], str]
) -> None:
    orphan = {HEARTBEAT_TAG: str(int(time.time() - 3600)), RETENTION_TAG: "60"}
    java_orphan = {
        JAVA_HEARTBEAT_TAG: str(int((time.time() - 3600) * 1000)),
        JAVA_RETENTION_TAG: "60",
    }
    held: dict[str, str] = {}
    for owner, tags in (("sqs-rpc", orphan), ("java", java_orphan)):
        visible, delayed, in_flight = (tagged_queue(tags) for _ in range(3))
        sqs.send_message(QueueUrl=visible, MessageBody="left behind")
        sqs.send_message(QueueUrl=delayed, MessageBody="later", DelaySeconds=600)
        sqs.send_message(QueueUrl=in_flight, MessageBody="being read")
        sqs.receive_message(QueueUrl=in_flight, VisibilityTimeout=600)
        held.update(dict.fromkeys((visible, delayed, in_flight), owner))

    report = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix).sweep()

    expected = {url: "deleted" if owner == "sqs-rpc" else "kept" for url, owner in held.items()}
    assert {d.queue_url: d.action for d in report.decisions} == expected
    assert all("holds 1 message(s)" in d.reason for d in report.kept)
    # include_nonempty is for the Java client's queues.
    report = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix, include_nonempty=True).sweep()
    assert sorted(d.action for d in report.decisions) == ["deleted"] * 3


@pytest.mark.parametrize(("idle_retention", "expected"), [(3, 60), (900, 900), (10**7, 1_209_600)])
def test_reply_queues_keep_replies_no_longer_than_their_idle_retention(
    sqs: Any, queue_url: str, idle_retention: int, expected: int
) -> None:
    with RpcClient(sqs_client=sqs, heartbeat_interval=1, idle_retention=idle_retention) as client:
        client.call_async(queue_url, "never answered", timeout=60)
        assert client.reply_queue_url is not None
        attributes = sqs.get_queue_attributes(
            QueueUrl=client.reply_queue_url, AttributeNames=["MessageRetentionPeriod"]
        )["Attributes"]
    assert int(attributes["MessageRetentionPeriod"]) == expected
