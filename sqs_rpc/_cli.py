"""The ``sqs-rpc`` command (stdlib argparse). ``main(argv) -> int`` returns an exit code.

Exit codes: 0 success; 1 failure (the command ran and something went wrong); 2 usage error;
3 (``sweep`` only) the sweep ran, but some queues could not be checked or deleted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from ._errors import ConfigurationError, SqsRpcError

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqs-rpc", description="Request-response RPC over Amazon SQS."
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v: info, -vv: debug)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="make real round trips on an embedded SQS server and print what happened",
        description="Start an SQS-compatible server on 127.0.0.1 (unless --endpoint-url or "
        "--region is given), run a server and a client, make calls, print latency and SQS "
        "requests per call, and clean up.",
    )
    demo.add_argument("--endpoint-url", help="use this SQS endpoint instead of an embedded one")
    demo.add_argument("--region", help="AWS region (with no --endpoint-url: real AWS SQS)")
    demo.add_argument("--calls", type=int, default=300, help="number of calls (default 300)")
    demo.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="concurrent callers in the second phase (default 16)",
    )
    _add_sweep_parser(commands)
    return parser


def _add_sweep_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ._reply_queue import DEFAULT_PREFIX
    from ._sweeper import DEFAULT_MAX_DELETIONS

    sweep = commands.add_parser(
        "sweep",
        help="delete reply queues whose owner died without closing them (for cron)",
        description="Delete the queues under --prefix that carry sqs-rpc's (or the AWS Java "
        "temporary-queues client's) heartbeat tags, whose heartbeat is older than their "
        "idle retention, and that hold no messages. Queues without those tags are never "
        "touched. Exit codes: 0 done; 1 failed (for example, the queues could not be "
        "listed); 2 usage error; 3 some queues could not be checked or deleted.",
    )
    sweep.add_argument(
        "--prefix", default=DEFAULT_PREFIX, help=f"queue name prefix (default {DEFAULT_PREFIX})"
    )
    sweep.add_argument("--dry-run", action="store_true", help="decide, but delete nothing")
    sweep.add_argument(
        "--include-nonempty",
        action="store_true",
        help="also delete idle queues that still hold messages",
    )
    sweep.add_argument(
        "--max-deletions",
        type=int,
        default=DEFAULT_MAX_DELETIONS,
        help=f"delete at most this many queues per run (default {DEFAULT_MAX_DELETIONS})",
    )
    sweep.add_argument("--json", action="store_true", help="print the report as JSON")
    sweep.add_argument("--endpoint-url", help="SQS endpoint (default: AWS's, from the region)")
    sweep.add_argument("--region", help="AWS region (default: boto3's region chain)")
    sweep.add_argument("--profile", help="AWS profile name (default: boto3's credential chain)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "sweep":
            return _sweep(args)
    except ConfigurationError as exc:
        print(f"sqs-rpc: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SqsRpcError as exc:
        print(f"sqs-rpc: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return EXIT_USAGE  # pragma: no cover


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    if args.calls < 1 or args.concurrency < 1:
        print("sqs-rpc: error: --calls and --concurrency must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    report = run_demo(
        sys.stdout,
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        calls=args.calls,
        concurrency=args.concurrency,
    )
    return EXIT_OK if report.ok else EXIT_FAILURE


def _sweep(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError

    from ._sweeper import Sweeper

    if args.max_deletions < 0:
        print("sqs-rpc: error: --max-deletions must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        session = boto3.session.Session(profile_name=args.profile)
    except BotoCoreError as exc:  # for example, an unknown profile
        print(f"sqs-rpc: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sweeper = Sweeper(
        session=session,
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        prefix=args.prefix,
        dry_run=args.dry_run,
        include_nonempty=args.include_nonempty,
        max_deletions=args.max_deletions,
    )
    report = sweeper.sweep()
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        print()
    else:
        for decision in report.decisions:
            print(f"{decision.action:12} {decision.queue_url}  ({decision.reason})")
        verb = "would delete" if report.dry_run else "deleted"
        print(
            f"checked {report.checked}, {verb} {len(report.deleted)}, kept {len(report.kept)}, "
            f"errors {len(report.errors)}"
        )
    return EXIT_PARTIAL if report.errors else EXIT_OK
