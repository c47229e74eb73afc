"""Many clients in one process: every reply queue is refreshed within its own interval.

The process shares one heartbeat thread, but not one rate: with N clients a single TagQueue
per interval would refresh each queue every N intervals, and a sweeper would delete live
queues. Here a sweeper runs over and over while every client has a call in flight.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import pytest

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, RpcClient, Sweeper, SweepReport
from sqs_rpc._client.heartbeat import MAX_TAG_RATE
from tests.support.handlers import Echo
from tests.support.helpers import Endpoint, heartbeating_clients, wait_for

CLIENTS = 8
HEARTBEAT_INTERVAL = 1.0
IDLE_RETENTION = 3


class Held(MessageHandler):
    """Answers every call, but only once the test releases them."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0
        self.lock = threading.Lock()

    def handle(self, message: IncomingMessage) -> Any:
        with self.lock:
            self.started += 1
        assert self.release.wait(60)
        return message.body


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_eight_clients_in_one_process_keep_their_queues_through_repeated_sweeps(
    endpoint: Endpoint,
    sqs: Any,
    make_queue: Callable[..., str],
    serve: Callable[..., MessagePoller],
) -> None:
    prefix = f"sqs-rpc-reply-m{uuid.uuid4().hex[:8]}-"
    held_queue, echo_queue = make_queue(), make_queue()
    held = Held()
    serve(held_queue, held, concurrency=CLIENTS)
    serve(echo_queue, Echo())
    reports: list[SweepReport] = []
    try:
        with ExitStack() as stack:
            clients = [
                stack.enter_context(
                    RpcClient(
                        session=endpoint.session(),
                        endpoint_url=endpoint.endpoint_url,
                        reply_queue_prefix=prefix,
                        heartbeat_interval=HEARTBEAT_INTERVAL,
                        idle_retention=IDLE_RETENTION,
                    )
                )
                for _ in range(CLIENTS)
            ]
            # Every client has a call in flight for the whole test: nothing but the heartbeat
            # keeps its queue fresh (a new call would check a stale queue first).
            in_flight = [
                client.call_async(held_queue, i, timeout=90) for i, client in enumerate(clients)
            ]
            urls = {client.reply_queue_url for client in clients}
            assert len(urls) == CLIENTS
            wait_for(lambda: held.started == CLIENTS, timeout=30)

            sweeper = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix)
            end = time.monotonic() + 4 * IDLE_RETENTION

            def swept_until_the_end() -> bool:
                reports.append(sweeper.sweep())
                return time.monotonic() >= end

            wait_for(swept_until_the_end, timeout=60, interval=0.2)
            held.release.set()
            assert [future.result(30) for future in in_flight] == list(range(CLIENTS))
            for i, client in enumerate(clients):
                assert client.call(echo_queue, i, timeout=30) == {"echo": i}
                assert client.reply_queue_url in urls  # the same queue all along
    finally:
        held.release.set()
    assert len(reports) >= 10
    for report in reports:
        assert {d.queue_url: d.action for d in report.decisions} == dict.fromkeys(urls, "kept")


def test_refreshes_are_spread_and_each_queue_is_refreshed_within_its_interval(
    endpoint: Endpoint, queue_url: str
) -> None:
    interval = 0.5
    with heartbeating_clients(endpoint, queue_url, interval) as (clients, calls):
        urls = {client.reply_queue_url for client in clients}
        start = time.monotonic()
        wait_for(lambda: time.monotonic() - start > 6 * interval, timeout=30, interval=0.05)
    for url in urls:
        beats = [t for t, u in calls if u == url]
        gaps = [b - a for a, b in itertools.pairwise(beats)]
        assert len(beats) >= 4
        # Within its interval, plus the cap's spacing behind the other queues due at the
        # same moment, plus request latency. (One TagQueue per interval for the process
        # refreshed each queue every 3 intervals.)
        assert max(gaps) <= interval + (len(urls) - 1) / MAX_TAG_RATE + 0.15, gaps
    # One process never exceeds its own cap, whatever the number of clients.
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(calls)]
    assert min(gaps) >= 1 / MAX_TAG_RATE - 0.02, gaps
