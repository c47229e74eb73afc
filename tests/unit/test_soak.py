"""The soak's own checks (tools/soak/), without running a soak: its mix is reproducible, its
report fails each broken invariant, its options parse. The short run is in tests/system.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.faultproxy import Fault
from tools.soak.memory import flatness
from tools.soak.mix import EXPECTED, KINDS, MIX, kind_of, payload
from tools.soak.report import analyse
from tools.soak.run import parse_args


def test_the_mix_is_reproducible_and_near_its_shares() -> None:
    kinds = [kind_of(7, n) for n in range(20000)]
    assert kinds == [kind_of(7, n) for n in range(20000)]
    for kind in KINDS:
        assert abs(kinds.count(kind) / len(kinds) - MIX[kind]) < 0.01, kind
    assert payload("x", "timeout", 7, 1, 2.0)["sleep"] > 2.0  # sleeps past its caller's timeout


def _client(index: int, outcomes: dict[str, int], **extra: Any) -> dict[str, Any]:
    finished = sum(outcomes.values())
    return {
        "index": index,
        "pid": 100 + index,
        "started": finished,
        "finished": finished,
        "stuck_threads": 0,
        "made": {},
        "outcomes": outcomes,
        "examples": [],
        "stopped_by_limit": False,
        "calls_started_at": 0.0,
        "calls_ended_at": 100.0,
        "rss": [(t, 50_000_000) for t in range(101)],
        **extra,
    }


def test_the_report_fails_each_broken_invariant(tmp_path: Path) -> None:
    # What callers saw, and what servers ran: one of each kind of breakage.
    (tmp_path / "outcomes-client-0.txt").write_text(
        "r-0-0 fast ok\n"  # fine
        "r-0-1 fast ok\n"  # answered, but no server ran it: a reply meant for another call
        "r-0-2 fail ok\n"  # the mix expects remote-error
        "r-0-3 fast lost\n"
    )
    (tmp_path / "executions-server-0.txt").write_text("r-0-0\nr-0-2\nr-0-2\nr-9-9\n")
    (tmp_path / "executions-server-1.txt").write_text("r-0-0\n")  # a redelivery elsewhere: fine
    client = _client(0, {"fast ok": 2, "fail ok": 1, "fast lost": 1})
    growing = {
        "index": 0,
        "pid": 200,
        "stats": {},
        "rss": [(t, 50e6 + t * 1e6) for t in range(101)],
    }
    report = analyse(tmp_path, [client], [growing], left_in_queues=2, exit_codes={"server 0": 0})
    failures = "\n".join(report["failures"])
    assert "lost calls: 1" in failures
    assert "replies to the wrong caller: 1" in failures
    assert "outcomes the mix does not expect: {'fail ok': 1}" in failures
    assert "repeated within one server process: 1" in failures
    assert "calls no caller made: 1" in failures
    assert "left in the request queue and its DLQ: 2" in failures
    assert "memory of server 0" in failures
    assert report["executions"]["run_more_than_once"] == 2  # r-0-0 (two processes), r-0-2


def test_a_clean_record_passes(tmp_path: Path) -> None:
    (tmp_path / "outcomes-client-0.txt").write_text("r-0-0 fast ok\nr-0-1 timeout timeout\n")
    (tmp_path / "executions-server-0.txt").write_text("r-0-0\n")  # the timing-out one expired
    client = _client(0, {"fast ok": 1, "timeout timeout": 1})
    server = {"index": 0, "pid": 200, "stats": {"expired": 1}, "rss": client["rss"]}
    report = analyse(tmp_path, [client], [server], left_in_queues=0, exit_codes={"client 0": 0})
    assert report["failures"] == []
    assert report["executions"]["timing_out_calls_never_run"] == 1
    assert EXPECTED["timeout"] == "timeout"


def test_flatness_ignores_warm_up_and_flags_growth() -> None:
    # Growth during the first 10 % (warm-up) is not counted; steady growth after it is.
    warm = [(t, 40e6 if t < 8 else 50e6) for t in range(101)]
    assert flatness(warm, 0, 100)["flat"] is True
    leak = [(t, 50e6 * (1 + t / 400)) for t in range(101)]
    assert flatness(leak, 0, 100)["flat"] is False
    assert flatness(leak[:3], 0, 100)["flat"] is None  # too few samples to say
    # A reply cache filling for its TTL (here 50 s) is warm-up too, when the soak says so.
    filling = [(t, 50e6 * (1 + min(t, 50) / 100)) for t in range(101)]
    assert flatness(filling, 0, 100)["flat"] is False
    assert flatness(filling, 0, 100, warm_up=50)["flat"] is True


def test_fault_options_parse_into_proxy_faults(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse_args(["--fault", "reset-before:0.5:DeleteMessageBatch", "--fault", "503:0.1"])
    assert args.fault == [
        Fault("reset-before", 0.5, {"DeleteMessageBatch"}),
        Fault("503", 0.1),
    ]
    for bad in ("teapot:0.5", "503:2", "503:x"):
        with pytest.raises(SystemExit):
            parse_args(["--fault", bad])
        assert "--fault" in capsys.readouterr().err
