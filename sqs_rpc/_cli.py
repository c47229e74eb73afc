"""The ``sqs-rpc`` command (stdlib argparse). ``main(argv) -> int`` returns an exit code.

Exit codes: 0 success; 1 failure (the command ran and something went wrong); 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ._errors import SqsRpcError

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


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
    return parser


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
