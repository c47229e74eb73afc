"""From blocks to figures: medians with their spread, ratios, targets, and the cost on AWS.

Every figure is the median over a phase's paired repetitions (sqs-rpc's blocks and the
baseline's, alternated on the same SQS server), with the min-max spread beside it; a ratio is
sqs-rpc's median over the baseline's. Errors and wrong replies are totals, not medians.

    python -m benchmarks.report benchmarks/results/RUN.json   # a recorded run, in Markdown
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .blocks import Block

# SQS standard queues, per million requests after the free tier (first 100 billion a month),
# as AWS's SQS pricing page gave it in mid-2025; FIFO queues cost $0.50. Not re-checked here.
PRICE_PER_MILLION_REQUESTS = 0.40
PRICE_NOTE = (
    "SQS standard queue, $0.40 per million billed requests (us-east-1, AWS's SQS pricing "
    "page as of mid-2025; free tier and data transfer left out)"
)
TOTALS = frozenset({"errors", "wrong_replies"})


def aggregate(blocks: Iterable[Block]) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """phase -> impl -> metric -> {median, min, max, values} (errors: total as median)."""
    grouped: dict[str, dict[str, list[Block]]] = {}
    for block in blocks:
        grouped.setdefault(block.phase, {}).setdefault(block.impl, []).append(block)
    out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for phase, by_impl in grouped.items():
        for impl, group in by_impl.items():
            values: dict[str, list[float]] = {}
            for block in group:
                for metric, value in block.metrics().items():
                    values.setdefault(metric, []).append(value)
            out.setdefault(phase, {})[impl] = {
                metric: {
                    "median": sum(v) if metric in TOTALS else _median(v),
                    "min": min(v),
                    "max": max(v),
                    "values": v,
                }
                for metric, v in values.items()
            }
    return out


def _median(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else float("nan")


Summary = dict[str, dict[str, dict[str, dict[str, Any]]]]


def value(summary: Summary, phase: str, impl: str, metric: str) -> float:
    try:
        return float(summary[phase][impl][metric]["median"])
    except KeyError:
        return float("nan")


def ratio(summary: Summary, phase: str, metric: str) -> float:
    ours, base = (value(summary, phase, i, metric) for i in ("sqs-rpc", "baseline"))
    return ours / base if base else float("nan")


@dataclass(frozen=True)
class Target:
    """One of issue 15's targets: a figure, a bound, and how to read it off a summary."""

    text: str
    figure: Callable[[Summary], float]
    limit: float
    at_most: bool  # True: figure <= limit; False: figure >= limit

    def check(self, summary: Summary) -> dict[str, Any]:
        figure = self.figure(summary)
        if math.isnan(figure):
            status = "not run"
        else:
            met = figure <= self.limit if self.at_most else figure >= self.limit
            status = "met" if met else "NOT met"
        return {"target": self.text, "figure": figure, "status": status}


def _ratio(phase: str, metric: str) -> Callable[[Summary], float]:
    return lambda s: ratio(s, phase, metric)


def _ours(phase: str, *metrics: str) -> Callable[[Summary], float]:
    return lambda s: sum(value(s, phase, "sqs-rpc", m) for m in metrics)


def _targets(profile: str) -> list[Target]:
    """Issue 15's targets for ``profile``: medians, sqs-rpc against the baseline of the run."""
    out: list[Target] = []
    if profile == "aws-like":
        out += [
            Target("sequential p50 <= 0.70x baseline", _ratio("sequential", "p50_ms"), 0.7, True),
            Target(
                "32 callers: calls/s >= 3x baseline", _ratio("32", "calls_per_second"), 3, False
            ),
        ]
    elif profile == "fauxqs":
        out += [
            Target(
                "32 callers: client CPU <= 0.45 ms/call",
                _ours("32", "cpu_ms_per_call.client"),
                0.45,
                True,
            ),
            Target(
                "32 callers: server CPU <= 0.45 ms/call",
                _ours("32", "cpu_ms_per_call.server"),
                0.45,
                True,
            ),
            Target(
                "32 callers: calls/s >= 2.8x baseline", _ratio("32", "calls_per_second"), 2.8, False
            ),
            Target(
                "lone call (sequential p50) <= 1.0x baseline",
                _ratio("sequential", "p50_ms"),
                1,
                True,
            ),
        ]
    elif profile == "moto":
        out += [
            Target(
                "32 callers: <= 0.7 SQS requests/call", _ours("32", "requests_per_call"), 0.7, True
            ),
            Target(
                "32 callers: calls/s >= 2x baseline", _ratio("32", "calls_per_second"), 2, False
            ),
            Target("sequential p50 <= 0.85x baseline", _ratio("sequential", "p50_ms"), 0.85, True),
        ]
    out += [
        Target(
            "128 callers: 0 errors, 0 wrong replies",
            _ours("128", "errors", "wrong_replies"),
            0,
            True,
        ),
        Target(
            "waiting client CPU < 0.01 s/s", _ours("cpu", "cpu_per_second.client"), 0.00999, True
        ),
    ]
    return out


def check_targets(profile: str, summary: Summary) -> list[dict[str, Any]]:
    return [target.check(summary) for target in _targets(profile)]


def cost_per_million(summary: Summary) -> dict[str, dict[str, float]]:
    """phase -> impl -> dollars per million calls, from the billed requests per call."""
    return {
        phase: {
            impl: value(summary, phase, impl, "billed_per_call") * PRICE_PER_MILLION_REQUESTS
            for impl in by_impl
        }
        for phase, by_impl in summary.items()
        if phase != "cpu"
    }


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "-"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def _cell(summary: Summary, phase: str, impl: str, metric: str) -> str:
    try:
        entry = summary[phase][impl][metric]
    except KeyError:
        return "-"
    if metric in TOTALS:
        return _fmt(entry["median"])
    return f"{_fmt(entry['median'])} ({_fmt(entry['min'])}-{_fmt(entry['max'])})"


def _rows(summary: Summary, roles: list[str]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for phase in summary:
        label = "sequential" if phase == "sequential" else f"{phase} callers"
        if phase == "cpu":
            rows.append(("1 call waiting 2 s: client CPU s/s", "cpu", "cpu_per_second.client"))
            continue
        if phase != "sequential":
            rows.append((f"{label}: calls/s", phase, "calls_per_second"))
        rows.append((f"{label}: p50 ms", phase, "p50_ms"))
        rows.append((f"{label}: p99 ms", phase, "p99_ms"))
        rows.append((f"{label}: SQS requests/call", phase, "requests_per_call"))
        rows.append((f"{label}: billed requests/call", phase, "billed_per_call"))
        rows += [(f"{label}: CPU ms/call, {r}", phase, f"cpu_ms_per_call.{r}") for r in roles]
        if phase == "128":
            rows.append((f"{label}: errors (total)", phase, "errors"))
            rows.append((f"{label}: wrong replies (total)", phase, "wrong_replies"))
    return rows


def table(profile: str, summary: Summary, roles: list[str]) -> str:
    """The profile's figures, its targets, and its cost per million calls, as text."""
    lines = [
        f"== {profile}: median (min-max) of the paired blocks; ratio = sqs-rpc / baseline",
        f"{'metric':40} {'baseline':>26} {'sqs-rpc':>26} {'ratio':>6}",
    ]
    for label, phase, metric in _rows(summary, roles):
        r = "" if metric in TOTALS else _fmt(ratio(summary, phase, metric))
        lines.append(
            f"{label:40} {_cell(summary, phase, 'baseline', metric):>26} "
            f"{_cell(summary, phase, 'sqs-rpc', metric):>26} {r:>6}"
        )
    lines.append(f"-- {profile}: targets")
    for check in check_targets(profile, summary):
        lines.append(f"{check['target']:52} {_fmt(check['figure']):>8}  {check['status']}")
    lines.append(f"-- {profile}: cost per million calls on AWS ({PRICE_NOTE})")
    for phase, by_impl in cost_per_million(summary).items():
        label = "sequential" if phase == "sequential" else f"{phase} callers"
        lines.append(
            f"{label:20} baseline ${_fmt(by_impl.get('baseline', math.nan))}"
            f"   sqs-rpc ${_fmt(by_impl.get('sqs-rpc', math.nan))}"
        )
    return "\n".join(lines)


def markdown(profile: str, summary: Summary, roles: list[str]) -> str:
    """The same table as :func:`table`, in Markdown (what docs/performance.md quotes)."""
    lines = [
        "| metric | baseline | sqs-rpc | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, phase, metric in _rows(summary, roles):
        r = "" if metric in TOTALS else _fmt(ratio(summary, phase, metric))
        lines.append(
            f"| {label} | {_cell(summary, phase, 'baseline', metric)} "
            f"| {_cell(summary, phase, 'sqs-rpc', metric)} | {r} |"
        )
    lines += ["", "| target | figure | |", "| --- | ---: | --- |"]
    for check in check_targets(profile, summary):
        lines.append(f"| {check['target']} | {_fmt(check['figure'])} | {check['status']} |")
    lines += ["", "| pattern | baseline, $ per million calls | sqs-rpc |", "| --- | ---: | ---: |"]
    for phase, by_impl in cost_per_million(summary).items():
        label = "sequential" if phase == "sequential" else f"{phase} callers"
        lines.append(
            f"| {label} | {_fmt(by_impl.get('baseline', math.nan))} "
            f"| {_fmt(by_impl.get('sqs-rpc', math.nan))} |"
        )
    return "\n".join(lines)


def floor_table(data: dict[str, Any]) -> str:
    """botocore's CPU per request, and per call at each phase's requests, in Markdown."""
    costs = data["botocore_cpu_ms_per_request"]
    lines = [
        "botocore's CPU per request, ms (one thread, batches of 10): "
        + ", ".join(f"{op} {ms:.2f}" for op, ms in costs.items()),
        "",
        "| botocore's CPU ms per call at the run's requests | baseline client / server "
        "| sqs-rpc client / server |",
        "| --- | ---: | ---: |",
    ]
    for phase, impls in data["botocore_floor_cpu_ms_per_call"].items():
        if phase == "cpu":
            continue
        label = "sequential" if phase == "sequential" else f"{phase} callers"
        cells = [
            f"{impls[impl]['client']:.2f} / {impls[impl]['server']:.2f}"
            for impl in ("baseline", "sqs-rpc")
        ]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def memory_table(heap: dict[str, dict[str, Any]]) -> str:
    """The memory phase, per implementation, in Markdown."""
    mib = 1024 * 1024
    lines = ["| memory | baseline | sqs-rpc |", "| --- | ---: | ---: |"]
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("calls in flight after the last send", lambda m: f"{m['in_flight_at_peak']:,}"),
        (
            "heap at each quarter of the sends, MiB",
            lambda m: ", ".join(f"{b / mib:.2f}" for b in m["heap_bytes_at_each_quarter"]),
        ),
        ("heap bytes per in-flight call (peak / calls)", lambda m: f"{m['bytes_per_call']:,.0f}"),
        (
            "heap left once the calls finished (close() fails each), MiB",
            lambda m: (
                f"{m['retained_bytes_after_finish'] / mib:.2f}"
                if "retained_bytes_after_finish" in m
                else "n/a"
            ),
        ),
    ]
    for label, cell in rows:
        lines.append(f"| {label} | {cell(heap['baseline'])} | {cell(heap['sqs-rpc'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.report RESULTS.json``: a recorded run's tables, in Markdown."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    report = json.loads(args.results.read_text())
    print(f"`{report['command']}`, commit {report['commit']}, started {report['started']}")
    for name, data in report["profiles"].items():
        roles = sorted({r for b in data["blocks"] for r in b["cpu_seconds"]}, key=_ROLE_ORDER.index)
        print(f"\n### {name}: {data['description']}\n")
        print(
            f"Load average before / after: {data['load_average_before'][0]:.1f} / "
            f"{data['load_average_after'][0]:.1f}; {data['seconds'] / 60:.1f} min.\n"
        )
        print(markdown(name, data["summary"], roles))
        if data.get("botocore_floor_cpu_ms_per_call"):
            print()
            print(floor_table(data))
        if data.get("memory"):
            print()
            print(memory_table(data["memory"]))
    return 0


_ROLE_ORDER = ["sqs", "proxy", "server", "client"]

if __name__ == "__main__":
    sys.exit(main())
