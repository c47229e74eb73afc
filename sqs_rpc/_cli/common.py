"""What the command modules share: the common options, AWS setup, JSON output.

Imports no command module of ``sqs_rpc._cli`` (only :mod:`.errors`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import boto3

from sqs_rpc._errors import aws_errors

from .errors import ExitCode, UsageError, exit_codes_epilog

__all__ = [
    "VERBOSE_HELP",
    "HelpFormatter",
    "add_command",
    "add_common_options",
    "add_verbose",
    "aws_options",
    "json_argument",
    "print_json",
]

VERBOSE_HELP = "log more (-v: info, -vv: debug)"


class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions as argparse does, but keeps the lines of a table (the exit codes)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_command(
    commands: Any, name: str, *, help: str, description: str, exit_codes: tuple[ExitCode, ...]
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` ends with the exit codes it can return."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=exit_codes_epilog(exit_codes),
        formatter_class=HelpFormatter,
    )
    return parser


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """``-v``/``-vv``, accepted after the command too."""
    # SUPPRESS: given only after the command, it must not reset a -v given before it.
    parser.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help=VERBOSE_HELP
    )


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that talks to SQS."""
    where = parser.add_argument_group("AWS")
    where.add_argument("--endpoint-url", help="SQS endpoint (default: AWS's for the region)")
    where.add_argument("--region", help="AWS region (default: boto3's chain, AWS_DEFAULT_REGION)")
    where.add_argument("--profile", help="AWS profile from ~/.aws/config (default: AWS_PROFILE)")
    parser.add_argument(
        "--json", action="store_true", help="machine-readable output: one JSON document"
    )
    add_verbose(parser)


def json_argument(text: str) -> Any:
    """A JSON payload from the command line; a UsageError says how to quote it."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"the payload {text!r} is not valid JSON ({exc}); quote it for the shell, for "
            """example '{"x": 1}' or '"a string"'"""
        ) from None


# -- AWS and output ----------------------------------------------------------------------------


def aws_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for RpcClient, MessagePoller and Sweeper from the common options."""
    options: dict[str, Any] = {"endpoint_url": args.endpoint_url, "region_name": args.region}
    if args.profile:
        with aws_errors("LoadProfile"):
            options["session"] = boto3.session.Session(profile_name=args.profile)
    return options


def print_json(document: Any, *, indent: int | None = None) -> None:
    """Print one JSON document on stdout (non-JSON values as their repr)."""
    print(json.dumps(document, ensure_ascii=False, indent=indent, default=repr))
