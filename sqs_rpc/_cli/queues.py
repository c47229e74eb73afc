"""``sqs-rpc queues``: the reply queues under a prefix, with the age of their heartbeat.

Read-only: it lists and reads tags with the sweeper's own code (``Sweeper.list_queue_urls``,
``Sweeper.liveness_of``), so what it calls idle is exactly what ``sqs-rpc sweep`` would
consider deleting.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqs_rpc._errors import QueueDoesNotExist, SqsError
from sqs_rpc._sweeper import Sweeper

from .common import add_command, add_common_options, add_prefix_option, aws_options, print_json
from .errors import ExitCode

__all__ = ["register"]

State = Literal["alive", "idle", "untagged", "gone", "error"]


@dataclass(frozen=True)
class _Row:
    queue_url: str
    name: str
    state: State
    heartbeat_age: float | None = None  # seconds since the last heartbeat
    idle_retention: float | None = None  # seconds without one before a sweeper may delete it
    error: str | None = None


def register(commands: Any) -> None:
    """Add ``queues`` to the subcommands."""
    queues = add_command(
        commands,
        "queues",
        help="list reply queues under a prefix with the age of their heartbeat",
        description="List the queues whose name starts with --prefix, with the age of their "
        "heartbeat tag and their idle retention. State: alive (heartbeat within retention), "
        "idle (older: 'sqs-rpc sweep' deletes it if it is empty), untagged (no heartbeat "
        "tags: never swept), gone (deleted meanwhile), error.",
        exit_codes=(
            ExitCode.OK,
            ExitCode.FAILURE,
            ExitCode.USAGE,
            ExitCode.SQS_ERROR,
            ExitCode.PARTIAL,
            ExitCode.INTERRUPTED,
        ),
    )
    add_prefix_option(queues)
    add_common_options(queues)
    queues.set_defaults(run=_queues)


def _queues(args: argparse.Namespace) -> int:
    sweeper = Sweeper(reply_queue_prefix=args.prefix, dry_run=True, **aws_options(args))
    rows = [_row(sweeper, url) for url in sweeper.list_queue_urls()]
    rows = [row for row in rows if row.name.startswith(args.prefix)]  # never trust the filter
    errors = sum(row.state == "error" for row in rows)
    if args.json:
        print_json({"prefix": args.prefix, "queues": [asdict(row) for row in rows]}, indent=2)
    else:
        _print_table(rows)
    return ExitCode.PARTIAL if errors else ExitCode.OK


def _row(sweeper: Sweeper, url: str) -> _Row:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    try:
        liveness = sweeper.liveness_of(url)
    except QueueDoesNotExist:
        return _Row(url, name, "gone")
    except SqsError as exc:
        return _Row(url, name, "error", error=str(exc))
    if liveness is None:
        return _Row(url, name, "untagged")
    heartbeat, retention = liveness
    age = max(0.0, time.time() - heartbeat)
    return _Row(url, name, "alive" if age <= retention else "idle", round(age, 1), retention)


def _print_table(rows: list[_Row]) -> None:
    width = max([len("NAME"), *(len(row.name) for row in rows)])
    print(f"{'NAME':{width}}  {'STATE':8}  {'HEARTBEAT AGE':>13}  {'RETENTION':>9}")
    for row in rows:
        age = "-" if row.heartbeat_age is None else _duration(row.heartbeat_age)
        retention = "-" if row.idle_retention is None else _duration(row.idle_retention)
        line = f"{row.name:{width}}  {row.state:8}  {age:>13}  {retention:>9}"
        print(line + (f"  {row.error}" if row.error else ""))
    counts = {state: sum(row.state == state for row in rows) for state in ("alive", "idle")}
    print(f"{len(rows)} queues: {counts['alive']} alive, {counts['idle']} idle")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
