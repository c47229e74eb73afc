"""The sweeper at scale and after a process fault: past 1,000 queues it follows ListQueues'
pages; a SIGKILLed client's queue is swept once its retention passes, a live one is kept.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sqs_rpc import RequestCounter, RpcClient, Sweeper, SweepReport
from tests.support.helpers import Endpoint, queue_listed, wait_for


@pytest.fixture
def prefix() -> str:
    """A prefix no other test uses, so each test sweeps only its own queues."""
    return f"t{uuid.uuid4().hex[:10]}-"


def actions(report: SweepReport) -> dict[str, str]:
    return {d.queue_url: d.action for d in report.decisions}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_lists_every_page_beyond_1000_queues(sqs: Any, endpoint: Endpoint, prefix: str) -> None:
    # Over HTTP on moto this takes ~6 s to create and ~6 s to delete, with 8 threads.
    count = 1005
    pool_client = endpoint.client()
    names = [f"{prefix}{i:05d}" for i in range(count)]
    with ThreadPoolExecutor(8) as pool:
        urls = set(pool.map(lambda n: pool_client.create_queue(QueueName=n)["QueueUrl"], names))
    try:
        counter = RequestCounter.attach(sqs)
        listed = list(Sweeper(sqs_client=sqs, reply_queue_prefix=prefix).list_queue_urls())
        assert len(listed) == count
        assert set(listed) == urls
        assert counter.snapshot()["ListQueues"] >= 2  # it followed NextToken
    finally:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda url: pool_client.delete_queue(QueueUrl=url), urls))


CHILD = """
import sys
from sqs_rpc import RpcClient
client = RpcClient(endpoint_url=sys.argv[1], region_name=sys.argv[2],
                   reply_queue_prefix=sys.argv[3], heartbeat_interval=0.5, idle_retention=5)
client.call_async(sys.argv[4], "never answered", timeout=600)
print(client.reply_queue_url, flush=True)
sys.stdin.read()  # wait to be killed
"""


@pytest.mark.timeout(90)
def test_a_sigkilled_clients_queue_is_swept_after_its_retention_a_live_one_is_kept(
    endpoint: Endpoint, sqs: Any, prefix: str, queue_url: str
) -> None:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, endpoint.endpoint_url, endpoint.region_name, prefix,
         queue_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as child:  # fmt: skip
        try:
            assert child.stdout is not None
            dead_url = child.stdout.readline().strip()
            assert dead_url.startswith("http")
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert queue_listed(sqs, dead_url)  # SIGKILL ran no cleanup: only the sweeper can help now

    with RpcClient(
        sqs_client=sqs, reply_queue_prefix=prefix, heartbeat_interval=0.5, idle_retention=5
    ) as live:
        live.call_async(queue_url, "also never answered", timeout=600)
        live_url = live.reply_queue_url
        sweeper = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix)
        reports: list[SweepReport] = []

        def swept() -> bool:
            reports.append(sweeper.sweep())
            return actions(reports[-1]).get(dead_url) == "deleted"

        wait_for(swept, timeout=60, interval=0.5)
        # Every sweep, including the ones that waited out the retention, kept the live queue.
        assert all(actions(r)[live_url] == "kept" for r in reports)
        assert not queue_listed(sqs, dead_url)
        assert queue_listed(sqs, live_url)
