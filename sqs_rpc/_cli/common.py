"""What the command modules share: the common options, argument types, AWS setup, JSON output.

Every option is checked here, when the command line is parsed, so that a bad value is
reported with the option's name (``argument --timeout: ...``), not with the library keyword
it becomes. Imports no command module of ``sqs_rpc._cli`` (only :mod:`.errors`).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3

from sqs_rpc._aws import make_sqs_client
from sqs_rpc._errors import aws_errors
from sqs_rpc._options import DEFAULT_REPLY_QUEUE_PREFIX

from .errors import ExitCode, UsageError, exit_codes_epilog

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "VERBOSE_HELP",
    "HelpFormatter",
    "add_command",
    "add_prefix_option",
    "add_common_options",
    "add_verbose",
    "aws_options",
    "endpoint_url",
    "json_argument",
    "print_json",
    "queue_prefix",
    "queue_url",
    "seconds",
    "sqs_client",
    "whole",
]

VERBOSE_HELP = "log more: -v info (your handler's too), -vv debug (AWS SDK included)"


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
    where.add_argument(
        "--endpoint-url", type=endpoint_url, help="SQS endpoint (default: AWS's for the region)"
    )
    where.add_argument("--region", help="AWS region (default: boto3's chain, AWS_DEFAULT_REGION)")
    where.add_argument("--profile", help="AWS profile from ~/.aws/config (default: AWS_PROFILE)")
    parser.add_argument(
        "--json", action="store_true", help="machine-readable output: one JSON document"
    )
    add_verbose(parser)


# -- argument types: each raises ArgumentTypeError, which argparse prefixes with the option --


def add_prefix_option(parser: argparse.ArgumentParser) -> None:
    """``--reply-queue-prefix`` (alias ``--prefix``), as ``args.prefix``."""
    parser.add_argument(
        "--reply-queue-prefix",
        "--prefix",
        dest="prefix",
        type=queue_prefix,
        default=DEFAULT_REPLY_QUEUE_PREFIX,
        help=f"queue name prefix (default {DEFAULT_REPLY_QUEUE_PREFIX})",
    )


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argument type: a whole number from ``low`` to ``high`` (no upper bound if None)."""
    rule = f"from {low} to {high}" if high is not None else f">= {low}"

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be a whole number {rule}, not {text!r}")
        return value

    return convert


def seconds(text: str) -> float:
    """An argument type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds > 0, such as 10 or 0.5, not {text!r}"
        )
    return value


def queue_url(text: str) -> str:
    """An argument type: a queue URL (a queue's name is not enough)."""
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a queue URL; pass the URL, such as "
            "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME (aws sqs get-queue-url prints it)"
        )
    return text


def endpoint_url(text: str) -> str:
    """An argument type: an endpoint URL."""
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(
            f"{text!r} must start with http:// or https://, such as http://localhost:4566"
        )
    return text


def queue_prefix(text: str) -> str:
    """An argument type: a non-empty queue name prefix."""
    if not text:
        raise argparse.ArgumentTypeError(
            "must be a non-empty queue name prefix, such as sqs-rpc-reply- (a sweeper never "
            "lists every queue of the account)"
        )
    return text


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
    """Keyword arguments for RpcClient, MessagePoller and Sweeper from the common options.

    The region is checked here, so that a missing one is reported as ``--region``.
    """
    with aws_errors("LoadProfile"):  # an unknown --profile or AWS_PROFILE
        session = boto3.session.Session(profile_name=args.profile)
    if args.region is None and session.region_name is None:
        raise UsageError(
            "no AWS region configured; pass --region REGION, set AWS_DEFAULT_REGION, or give "
            "the profile a region"
        )
    return {"session": session, "endpoint_url": args.endpoint_url, "region_name": args.region}


def sqs_client(args: argparse.Namespace) -> SQSClient:
    """A boto3 SQS client from the common options."""
    return make_sqs_client(sqs_client=None, **aws_options(args))


def print_json(document: Any, *, indent: int | None = None) -> None:
    """Print one JSON document on stdout (non-JSON values as their repr)."""
    print(json.dumps(document, ensure_ascii=False, indent=indent, default=repr))
