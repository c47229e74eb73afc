from __future__ import annotations

import threading
import time

import pytest

from sqs_rpc._loop import (
    RECEIVE_LINGER,
    BackgroundLoop,
    owner_id,
    receive_pause,
    stop_all,
    thread_name,
)
from tests.support.helpers import wait_for


def test_runs_until_stopped_and_stop_is_idempotent() -> None:
    runs = []
    loop = BackgroundLoop("sqs-rpc-test-loop", lambda: runs.append(1) or 0.001)
    loop.start()
    wait_for(lambda: len(runs) >= 3)
    assert loop.stop(5)
    assert loop.stop(5)
    assert not loop.is_alive()


def test_a_failing_step_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def step() -> float:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("boom")
        return 60.0

    loop = BackgroundLoop("sqs-rpc-test-flaky", step, min_backoff=0.001)
    loop.start()
    wait_for(lambda: len(calls) >= 3)
    assert loop.stop(5)
    assert loop.errors == 2
    assert "boom" in caplog.text


def test_stop_cuts_a_long_wait_short() -> None:
    started = threading.Event()
    loop = BackgroundLoop("sqs-rpc-test-long", lambda: started.set() or 3600.0)
    loop.start()
    assert started.wait(5)
    assert loop.stop(5)  # would time out if the hour-long wait were not interrupted


def test_wake_runs_the_next_step_now() -> None:
    runs = []
    loop = BackgroundLoop("sqs-rpc-test-wake", lambda: runs.append(1) or None)
    loop.start()
    wait_for(lambda: len(runs) == 1)
    loop.wake()
    wait_for(lambda: len(runs) == 2)
    assert loop.stop(5)


def test_a_stopped_loop_does_not_restart() -> None:
    loop = BackgroundLoop("sqs-rpc-test-restart", lambda: None)
    loop.stop()
    loop.start()
    assert not loop.is_alive()


def test_receive_loops_pause_only_under_load() -> None:
    assert receive_pause(0, 10, busy=True) == 0  # nothing came: the long poll waits anyway
    assert receive_pause(1, 10) == 0  # a lone message (sequential calls): receive at once
    assert receive_pause(1, 10, busy=True) == RECEIVE_LINGER  # more are on their way
    assert receive_pause(3, 10) == RECEIVE_LINGER  # a clump: let the next ones gather
    assert receive_pause(10, 10, busy=True) == 0  # a full receive: the queue is backed up


def test_the_receive_pause_is_one_round_trip_at_most_the_linger() -> None:
    # A fast SQS (a 5 ms receive) gets a 5 ms pause; a slow one is capped at RECEIVE_LINGER.
    assert receive_pause(3, 10, round_trip=0.005) == 0.005
    assert receive_pause(3, 10, round_trip=RECEIVE_LINGER * 5) == RECEIVE_LINGER
    assert receive_pause(1, 10, busy=True, round_trip=0.002) == 0.002
    assert receive_pause(1, 10, round_trip=0.002) == 0  # still no pause without load
    assert receive_pause(3, 10, round_trip=-1.0) == 0  # a clock step never makes it negative


def test_stop_all_stops_every_loop() -> None:
    loops = [BackgroundLoop(f"sqs-rpc-test-{name}", lambda: None) for name in ("a", "b")]
    for loop in loops:
        loop.start()
    assert stop_all([loops[0], None, loops[1]], timeout=5)  # None: never started, skipped
    assert not any(loop.is_alive() for loop in loops)


def test_stop_all_shares_one_budget_and_reports_a_loop_that_did_not_stop() -> None:
    release = threading.Event()
    entered = threading.Event()

    def stuck() -> None:
        entered.set()
        release.wait(30)  # a step that cannot be interrupted, like a long poll

    hung = BackgroundLoop("sqs-rpc-test-hung", stuck)
    idle = BackgroundLoop("sqs-rpc-test-idle", lambda: None)
    hung.start()
    idle.start()
    assert entered.wait(5)
    started = time.monotonic()
    try:
        assert not stop_all([hung, idle], timeout=0.2)
        assert time.monotonic() - started < 5  # one budget, not a wait per loop
        assert idle.stopping  # asked to stop although the budget was spent
    finally:
        release.set()
        assert stop_all([hung, idle], timeout=5)


def test_thread_names_follow_one_scheme() -> None:
    owner = object()
    assert thread_name("replies", owner_id(owner)) == f"sqs-rpc-replies-{id(owner):x}"
    assert thread_name("heartbeat") == "sqs-rpc-heartbeat"  # process-wide: no owner
