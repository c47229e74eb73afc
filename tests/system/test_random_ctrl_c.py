"""Real Ctrl-Cs at random moments of many first calls, in a process of its own.

Queue creation is all or nothing (``tests/integration/test_creation_interrupted.py`` checks
every point of it in process); this is the same with real SIGINTs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sqs_rpc._attributes import HEARTBEAT_TAG, RETENTION_TAG
from tests.support.child_process import Child
from tests.support.helpers import Endpoint


@pytest.fixture
def prefix(sqs: Any) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}-"
    yield name
    for url in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)


RANDOM_CTRL_C = """
import os, random, signal, sys, threading
from sqs_rpc import RpcClient

endpoint, region, queue_url, prefix = sys.argv[1:5]
calling = threading.Event()


def on_sigint(signum, frame):
    if calling.is_set():  # only while a first call runs: close() is not what is tested
        raise KeyboardInterrupt


signal.signal(signal.SIGINT, on_sigint)
rng = random.Random(7)
interrupted = 0
for _ in range(60):
    client = RpcClient(endpoint_url=endpoint, region_name=region, reply_queue_prefix=prefix)
    ctrl_c = threading.Timer(rng.uniform(0, 0.03), os.kill, (os.getpid(), signal.SIGINT))
    try:
        calling.set()
        ctrl_c.start()
        try:
            client.call_async(queue_url, "first", timeout=30)
        finally:
            calling.clear()
    except KeyboardInterrupt:
        interrupted += 1
    ctrl_c.join()
    client.close()
threads = [t.name for t in threading.enumerate() if t.name.startswith("sqs-rpc-")]
print("interrupted", interrupted, "threads", threads, flush=True)
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_real_ctrl_cs_at_random_moments_of_first_calls_leave_nothing(
    endpoint: Endpoint, sqs: Any, queue_url: str, prefix: str
) -> None:
    args = [endpoint.endpoint_url, endpoint.region_name, queue_url, prefix]
    with Child(["-c", RANDOM_CTRL_C, *args]) as child:
        assert child.wait(timeout=100) == 0, child.output
    line = child.wait_for_line("interrupted")
    assert line.endswith("threads []"), child.output
    assert int(line.split()[1]) > 20  # most calls were interrupted somewhere
    # An interrupted CreateQueue may still reach SQS after the client looked for its queue (a
    # second later, under load): such a queue must carry its heartbeat tags, for the sweeper.
    for url in sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []):
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        assert {HEARTBEAT_TAG, RETENTION_TAG} <= set(tags), (url, tags)
