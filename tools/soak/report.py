"""The soak's verdict: join what callers saw with what servers ran, and check the invariants.

Invariants (each must hold for exit status 0):

- **no lost call**: every call started has exactly one outcome, none ``lost`` (a future that did
  not settle by its deadline plus a grace period), no caller thread stuck;
- **no reply to the wrong caller**: every reply and remote error names the call's own id, and
  no call was answered without its handler having run;
- **outcomes as the mix expects**: fast and slow calls ``ok``, failing ones ``remote-error``,
  timing-out ones ``timeout``; no other error;
- **no execution beyond at-least-once**: within one server process a request never runs twice
  (the reply cache answers a redelivery); a request that ran in two processes (a redelivery
  SQS made) still reached its caller once; nothing ran that no caller sent;
- **nothing left**: the request queue and its dead-letter queue are empty at the end;
- **flat memory**: every client and server process's RSS grew less than 10 % between the first
  and the last quarter of the call phase after warm-up (at least the servers'
  ``reply_cache_ttl``, during which their reply caches fill); see
  :mod:`tools.soak.memory`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .memory import FLAT_GROWTH, flatness
from .mix import EXPECTED, KINDS, MIX

__all__ = ["analyse", "render"]


def _lines(paths: Iterable[Path]) -> Iterable[str]:
    for path in paths:
        if path.exists():
            yield from path.read_text(encoding="utf-8").splitlines()


def analyse(
    workdir: Path,
    clients: Sequence[Mapping[str, Any]],
    servers: Sequence[Mapping[str, Any]],
    *,
    left_in_queues: int,
    exit_codes: Mapping[str, int | None],
    sqs_rss: Sequence[Sequence[float]] = (),
    warm_up: float = 0.0,
) -> dict[str, Any]:
    """Everything the report prints, and ``failures``: the invariants that did not hold."""
    failures: list[str] = []
    start = min(c["calls_started_at"] for c in clients)
    end = max(c["calls_ended_at"] for c in clients)
    duration = end - start
    started = sum(c["started"] for c in clients)
    finished = sum(c["finished"] for c in clients)
    stuck = sum(c["stuck_threads"] for c in clients)
    outcomes: Counter[str] = Counter()
    made: Counter[str] = Counter()
    for c in clients:
        outcomes.update(c["outcomes"])
        made.update(c["made"])
    seen, kind_of, outcome_of = _callers_record(workdir)
    twice = sum(1 for n in seen.values() if n > 1)
    executions, same_process_repeats = _servers_record(workdir)
    rerun = {cid: n for cid, n in executions.items() if n > 1}
    phantom = sum(1 for cid in executions if cid not in seen)
    answered_unrun = sum(
        1 for cid, o in outcome_of.items() if o in ("ok", "remote-error") and not executions[cid]
    )
    lost = outcomes_total(outcomes, "lost") + (started - finished)
    wrong = outcomes_total(outcomes, "wrong") + answered_unrun
    unexpected: dict[str, int] = {}
    for key, n in outcomes.items():
        kind, outcome = key.split(" ", 1)
        if outcome not in ("lost", "wrong") and EXPECTED.get(kind) != outcome:
            unexpected[key] = n
    server_stats: Counter[str] = Counter()
    for s in servers:
        # The counters only: stats() also carries latency and requests by operation.
        server_stats.update({k: v for k, v in s["stats"].items() if isinstance(v, int)})
    memory = _memory(clients, servers, sqs_rss, start=start, end=end, warm_up=warm_up)
    # -- the verdict -------------------------------------------------------------------------
    if lost or stuck:
        failures.append(f"lost calls: {lost} (stuck caller threads: {stuck})")
    if twice:
        failures.append(f"calls with more than one outcome: {twice}")
    if wrong:
        failures.append(f"replies to the wrong caller: {wrong} (answered unrun: {answered_unrun})")
    if unexpected:
        failures.append(f"outcomes the mix does not expect: {dict(unexpected)}")
    if same_process_repeats:
        failures.append(f"executions repeated within one server process: {same_process_repeats}")
    if phantom:
        failures.append(f"executions of calls no caller made: {phantom}")
    if left_in_queues:
        failures.append(f"messages left in the request queue and its DLQ: {left_in_queues}")
    for name, m in memory.items():
        if m.get("flat") is False and "informative" not in name:
            failures.append(f"memory of {name} grew {m['ratio']:.2f}x (limit {1 + FLAT_GROWTH})")
    for name, code in exit_codes.items():
        if code != 0:
            failures.append(f"{name} exited with {code}")
    return {
        "calls": {"started": started, "finished": finished, "outcome_lines": len(seen)},
        "duration_s": round(duration, 1),
        "calls_per_s": round(finished / duration, 1) if duration > 0 else None,
        "by_kind": {
            kind: {
                "share": MIX[kind],
                "made": made[kind],
                "expected": EXPECTED[kind],
                "outcomes": {
                    key.split(" ", 1)[1]: n
                    for key, n in sorted(outcomes.items())
                    if key.split(" ", 1)[0] == kind
                },
            }
            for kind in KINDS
        },
        "lost": lost,
        "wrong": wrong,
        "unexpected": dict(unexpected),
        "executions": {
            "total": sum(executions.values()),
            "requests_run": len(executions),
            "run_more_than_once": len(rerun),
            "extra_runs": sum(n - 1 for n in rerun.values()),
            "repeated_within_a_process": same_process_repeats,
            "phantom": phantom,
            "timing_out_calls_never_run": sum(
                1 for cid, k in kind_of.items() if k == "timeout" and not executions[cid]
            ),
        },
        "server_stats": dict(server_stats),
        "left_in_queues": left_in_queues,
        "memory": memory,
        "examples": [e for c in clients for e in c["examples"]][:20],
        "stopped_by_duration_limit": any(c["stopped_by_limit"] for c in clients),
        "failures": failures,
    }


def _callers_record(workdir: Path) -> tuple[Counter[str], dict[str, str], dict[str, str]]:
    """The callers' record, one line per outcome: outcomes per id, each id's kind and outcome."""
    seen: Counter[str] = Counter()
    kind_of: dict[str, str] = {}
    outcome_of: dict[str, str] = {}
    for line in _lines(sorted(workdir.glob("outcomes-client-*.txt"))):
        call_id, kind, outcome = line.split(" ")[:3]
        seen[call_id] += 1
        kind_of[call_id] = kind
        outcome_of[call_id] = outcome
    return seen, kind_of, outcome_of


def _servers_record(workdir: Path) -> tuple[Counter[str], int]:
    """The servers' record, one line per execution and one file per process: executions per
    id, and how many executions repeated one already made in the same process."""
    executions: Counter[str] = Counter()
    same_process_repeats = 0
    for path in sorted(workdir.glob("executions-server-*.txt")):
        here = Counter(line.split(" ", 1)[0] for line in _lines([path]))
        same_process_repeats += sum(n - 1 for n in here.values() if n > 1)
        executions.update(here)
    return executions, same_process_repeats


def _memory(
    clients: Sequence[Mapping[str, Any]],
    servers: Sequence[Mapping[str, Any]],
    sqs_rss: Sequence[Sequence[float]],
    *,
    start: float,
    end: float,
    warm_up: float,
) -> dict[str, dict[str, Any]]:
    memory = {}
    for role, group in (("client", clients), ("server", servers)):
        for p in group:
            name = f"{role} {p['index']} (pid {p['pid']})"
            memory[name] = flatness(p["rss"], start, end, warm_up)
    if sqs_rss:
        memory["SQS server (informative)"] = flatness(sqs_rss, start, end, warm_up)
    return memory


def outcomes_total(outcomes: Mapping[str, int], outcome: str) -> int:
    return sum(n for key, n in outcomes.items() if key.endswith(" " + outcome))


def render(report: Mapping[str, Any]) -> str:
    """The report as text: figures first, then the verdict."""
    calls = report["calls"]
    ex = report["executions"]
    stats = report["server_stats"]
    out = [
        f"calls: {calls['finished']} finished of {calls['started']} started, "
        f"in {report['duration_s']} s ({report['calls_per_s']} calls/s)",
        "",
        "kind      share   made  expected      outcomes",
    ]
    for kind, row in report["by_kind"].items():
        got = ", ".join(f"{o} {n}" for o, n in row["outcomes"].items()) or "-"
        out.append(f"{kind:<8} {row['share']:>5.0%} {row['made']:>6}  {row['expected']:<12}  {got}")
    out += [
        "",
        f"lost calls: {report['lost']}    replies to the wrong caller: {report['wrong']}    "
        f"unexpected outcomes: {sum(report['unexpected'].values())}",
        f"handler executions: {ex['total']} for {ex['requests_run']} requests; run more than "
        f"once: {ex['run_more_than_once']} ({ex['extra_runs']} extra runs, each in another "
        f"process: {ex['repeated_within_a_process'] == 0}); phantom: {ex['phantom']}; "
        f"timing-out calls deleted unrun (deadline passed): {ex['timing_out_calls_never_run']}",
        f"servers: received {stats.get('received', 0)}, handled {stats.get('handled', 0)}, "
        f"failed {stats.get('failed', 0)}, expired {stats.get('expired', 0)}, redeliveries "
        f"answered from the reply cache {stats.get('duplicates', 0)}, receive errors "
        f"{stats.get('receive_errors', 0)}",
        f"left in the request queue and its DLQ: {report['left_in_queues']}",
        "",
        "memory (RSS, MiB)          q1 median  q4 median    max  ratio  flat",
    ]
    for name, m in report["memory"].items():
        if m.get("flat") is None:
            out.append(f"{name:<26} {m.get('why')}")
            continue
        out.append(
            f"{name:<26} {m['q1_median_mib']:>9} {m['q4_median_mib']:>10} {m['max_mib']:>6} "
            f"{m['ratio']:>6}  {'yes' if m['flat'] else 'NO'}"
        )
    if report.get("faults_injected"):
        injected = ", ".join(f"{k} {n}" for k, n in sorted(report["faults_injected"].items()))
        out += ["", f"faults injected: {injected}"]
    if report["examples"]:
        out += ["", "examples:", *("  " + e for e in report["examples"])]
    out.append("")
    if report["stopped_by_duration_limit"]:
        out.append("STOPPED at the duration limit before every call was made")
    if report["failures"]:
        out += ["FAILED:", *("  " + f for f in report["failures"])]
    else:
        out.append("PASSED: every invariant held")
    return "\n".join(out)
