"""A client dropped without close() warns, like an unclosed file, and is released when collected:
its reply queue is deleted and its threads end, long before the interpreter exits."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import pytest

from sqs_rpc import RpcClient
from sqs_rpc._loop import THREAD_PREFIX
from tests.support.helpers import queue_listed as exists
from tests.support.helpers import wait_for


def _library_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)}


@pytest.mark.timeout(60)
def test_dropped_clients_warn_and_release_their_queues_and_threads(
    sqs: Any, queue_url: str
) -> None:
    before = _library_threads()
    clients = [RpcClient(sqs_client=sqs) for _ in range(3)]
    for client in clients:
        client.call_async(queue_url, "never answered", timeout=60)  # a call still waits
    urls = [client.reply_queue_url for client in clients]
    assert all(url is not None and exists(sqs, url) for url in urls)
    dropped = [weakref.ref(client) for client in clients]
    del client
    # Nothing but the list holds them: they are collected (and warn) as it lets them go.
    with pytest.warns(ResourceWarning, match=r"unclosed RpcClient \(reply queue ") as caught:
        clients.clear()
    assert len(caught) == 3
    del caught  # its records hold each client, as the warnings' source
    gc.collect()
    assert all(ref() is None for ref in dropped)  # no thread kept a client alive
    wait_for(lambda: not any(exists(sqs, url) for url in urls if url), timeout=30)
    wait_for(lambda: _library_threads() <= before, timeout=30)


def test_a_client_never_used_or_closed_does_not_warn(sqs: Any) -> None:
    client = RpcClient(sqs_client=sqs)
    with RpcClient(sqs_client=sqs) as closed:
        pass
    assert closed.closed
    del client, closed
    gc.collect()  # filterwarnings = error: a warning here would fail the test
