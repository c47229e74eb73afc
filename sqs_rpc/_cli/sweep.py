"""``sqs-rpc sweep``: delete the reply queues of clients that died without closing them."""

from __future__ import annotations

import argparse
from typing import Any

from sqs_rpc._sweeper import DEFAULT_MAX_DELETIONS, Sweeper

from .common import (
    add_command,
    add_common_options,
    add_prefix_option,
    aws_options,
    print_json,
    whole,
)
from .errors import ExitCode

__all__ = ["register"]

# What a cron job sees, also printed by `sqs-rpc sweep --help` and named in
# examples/sweeper_cron.sh.
EXIT_CODES = (
    ExitCode.OK,
    ExitCode.FAILURE,
    ExitCode.USAGE,
    ExitCode.SQS_ERROR,
    ExitCode.PARTIAL,
    ExitCode.INTERRUPTED,
)


def register(commands: Any) -> None:
    """Add ``sweep`` to the subcommands."""
    sweep = add_command(
        commands,
        "sweep",
        help="delete reply queues whose owner died without closing them (for cron)",
        description="Delete the queues under --prefix that carry sqs-rpc's (or the AWS Java "
        "temporary-queues client's) heartbeat tags, whose heartbeat is older than their "
        "idle retention, and that hold no messages. Queues without those tags are never "
        "touched.",
        exit_codes=EXIT_CODES,
    )
    add_prefix_option(sweep)
    sweep.add_argument("--dry-run", action="store_true", help="decide, but delete nothing")
    sweep.add_argument(
        "--include-nonempty",
        action="store_true",
        help="also delete idle queues of the Java temporary-queues client that still hold "
        "messages (idle sqs-rpc reply queues go whatever they hold)",
    )
    sweep.add_argument(
        "--max-deletions",
        type=whole(0),
        default=DEFAULT_MAX_DELETIONS,
        help=f"delete at most this many queues per run (default {DEFAULT_MAX_DELETIONS})",
    )
    add_common_options(sweep)
    sweep.set_defaults(run=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    sweeper = Sweeper(
        reply_queue_prefix=args.prefix,
        dry_run=args.dry_run,
        include_nonempty=args.include_nonempty,
        max_deletions=args.max_deletions,
        **aws_options(args),
    )
    report = sweeper.sweep()
    if args.json:
        print_json(report.to_dict(), indent=2)
    else:
        for decision in report.decisions:
            print(f"{decision.action:12} {decision.queue_url}  ({decision.reason})")
        verb = "would delete" if report.dry_run else "deleted"
        print(
            f"checked {report.checked}, {verb} {len(report.deleted)}, kept {len(report.kept)}, "
            f"errors {len(report.errors)}"
        )
    return ExitCode.PARTIAL if report.errors else ExitCode.OK
