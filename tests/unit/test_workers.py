"""The worker pool grows for sync handlers only: short steps share a few spare threads."""

from __future__ import annotations

import threading

from sqs_rpc._server.workers import Workers


def test_short_steps_share_the_spare_threads_and_sync_handlers_add_their_own() -> None:
    workers = Workers(100, "sqs-rpc-worker-test", spare=2)
    release = threading.Event()
    ran = threading.Semaphore(0)

    def step() -> None:
        release.wait(10)
        ran.release()

    try:
        for _ in range(20):
            workers.submit(step)
        assert workers.threads == 2  # 20 steps queued behind 2 threads, not 20 threads
        entered = threading.Barrier(4)
        leave = threading.Event()

        def sync_handler() -> None:
            with workers.blocking():
                entered.wait(10)
                leave.wait(10)

        # Each sync handler holds its thread: the pool grows by one per handler.
        for _ in range(3):
            workers.submit(sync_handler)
        release.set()
        entered.wait(10)
        assert 3 <= workers.threads <= 3 + 2
        leave.set()
        for _ in range(20):
            assert ran.acquire(timeout=10)
    finally:
        release.set()
        workers.shutdown(wait=True)
    assert not [t for t in threading.enumerate() if t.name.startswith("sqs-rpc-worker-test")]
