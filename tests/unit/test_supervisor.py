"""PollerPool without processes: its options, the stats sum, and serve --processes usage."""

from __future__ import annotations

from typing import Any

import pytest

from sqs_rpc import ConfigurationError, ExitCode, Latency, PollerPool, PollerStats
from sqs_rpc._cli.main import main
from sqs_rpc._server.pool_stats import sum_stats
from tests.support.pool_factories import crash_at_start


@pytest.mark.parametrize("processes", [0, -1, True, 2.0, "2", 1025])
def test_processes_must_be_a_whole_number_from_1(processes: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"processes=.* must be a whole number from 1"):
        PollerPool(crash_at_start, processes=processes)


def test_a_factory_must_be_picklable_or_a_module_path() -> None:
    with pytest.raises(ConfigurationError, match=r"cannot be pickled.*module-level function"):
        PollerPool(lambda: None, processes=1)  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigurationError, match="must be 'module:function'"):
        PollerPool("myapp.server", processes=1)
    with pytest.raises(ConfigurationError, match="not callable"):
        PollerPool(42, processes=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value"),
    [("graceful_timeout", -1), ("max_restarts", -1), ("restart_window", 0), ("stats_interval", 0)],
)
def test_other_options_are_checked(option: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=option):
        PollerPool(crash_at_start, processes=1, **{option: value})


@pytest.mark.parametrize("value", [0, 0.5, -1, float("nan"), "10"])
def test_liveness_timeout_is_seconds_from_1_or_none(value: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"liveness_timeout=.*or None to never kill"):
        PollerPool(crash_at_start, processes=1, liveness_timeout=value)
    assert PollerPool(crash_at_start, processes=1, liveness_timeout=None).stop() is True


def test_a_pool_never_started_stops_at_once() -> None:
    pool = PollerPool(crash_at_start, processes=2)
    assert pool.stop() is True
    assert pool.stop() is True
    assert pool.pids() == []
    assert pool.restarts == 0
    assert pool.stats() == sum_stats([])


def test_stats_sum_counters_and_requests_and_bound_the_percentiles() -> None:
    a = PollerStats(
        handled=3,
        in_flight=1,
        requests={"ReceiveMessage": 2},
        latency=Latency(count=3, sum=0.3, window=3, p50=0.1, p90=0.1, p99=0.1, max=0.1),
    )
    b = PollerStats(
        handled=4,
        failed=1,
        requests={"ReceiveMessage": 1, "DeleteMessageBatch": 1},
        latency=Latency(count=5, sum=1.0, window=5, p50=0.2, p90=0.3, p99=0.4, max=0.5),
    )
    total = sum_stats([a, b])
    assert (total.handled, total.failed, total.in_flight) == (7, 1, 1)
    assert total.requests == {"ReceiveMessage": 3, "DeleteMessageBatch": 1}
    assert total.latency == Latency(count=8, sum=1.3, window=8, p50=0.2, p90=0.3, p99=0.4, max=0.5)
    assert sum_stats([]) == PollerStats()


@pytest.mark.parametrize("processes", ["0", "-2", "two"])
def test_serve_processes_is_checked(processes: str, capsys: pytest.CaptureFixture[str]) -> None:
    command = ["serve", "m:H", "--queue-url", "http://127.0.0.1:9/1/q", "--processes", processes]
    assert main(command) == ExitCode.USAGE
    assert "argument --processes: must be a whole number from 1 to 1024" in capsys.readouterr().err
