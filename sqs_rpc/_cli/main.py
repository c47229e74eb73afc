"""The ``sqs-rpc`` command (stdlib argparse). ``main(argv) -> int`` returns an exit code.

One module per group of commands, each with a ``register(commands)`` that adds its
subcommands, their options and the function that runs them: :mod:`.demo`, :mod:`.serve`,
:mod:`.calls` (``call``, ``publish``), :mod:`.sweep`, :mod:`.queues`, :mod:`.local`. They share
:mod:`.common` (the common options, AWS setup, JSON output) and :mod:`.errors` (the exit
codes and the translation of exceptions into them). The imports form a tree: this module
imports the command modules, they import ``common`` and ``errors``, and nothing imports
this module.

This module assembles the parser, configures logging and turns whatever ended a command into
one line on stderr and an exit code. ``sqs-rpc --help`` ends with the table of exit codes
(:class:`~sqs_rpc.ExitCode`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from sqs_rpc import __version__
from sqs_rpc._errors import RemoteError, SqsError, SqsRpcError

from . import calls, demo, local, queues, serve, sweep
from .common import VERBOSE_HELP, HelpFormatter, print_json
from .errors import ExitCode, UsageError, cli_message, exit_code_for, exit_codes_epilog

__all__ = ["main"]

logger = logging.getLogger(__name__)

# Loggers whose INFO records say little a user acts on (the AWS SDK, moto's web server):
# shown with -vv only.
_QUIET_LOGGERS = ("boto3", "botocore", "s3transfer", "urllib3", "werkzeug")
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _ArgumentsError(UsageError):
    """argparse found a bad argument; ``parser`` is the (sub)command's parser."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    """argparse's parser, except that a bad argument raises for main() to report."""

    def error(self, message: str) -> NoReturn:
        raise _ArgumentsError(self, message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sqs-rpc",
        description="Request-response RPC over Amazon SQS.",
        epilog=exit_codes_epilog(),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (demo, local, serve, calls, sweep, queues):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return its exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(arguments)
    except SystemExit as exc:  # --help and --version
        return int(exc.code) if isinstance(exc.code, int) else ExitCode.USAGE
    except _ArgumentsError as exc:
        exc.parser.print_usage(sys.stderr)
        # No namespace to read --json from: the raw arguments tell.
        return _report(exc, as_json="--json" in arguments, prog=exc.parser.prog)
    _configure_logging(args)
    try:
        return ExitCode(args.run(args))
    except (UsageError, SqsRpcError, KeyboardInterrupt) as exc:
        logger.debug("command failed", exc_info=True)
        return _report(exc, as_json=getattr(args, "json", False))


def _report(exc: BaseException, *, as_json: bool, prog: str = "sqs-rpc") -> ExitCode:
    """One line on stderr and, with --json, the error as a JSON document on stdout."""
    code = exit_code_for(exc)
    message = cli_message(exc)
    label = "remote error" if isinstance(exc, RemoteError) else "error"
    print(f"{prog}: {label}: {message}", file=sys.stderr)
    if as_json:
        name = "UsageError" if isinstance(exc, UsageError) else type(exc).__name__
        error: dict[str, Any] = {"type": name, "message": message}
        if isinstance(exc, RemoteError):
            error.update(remote_type=exc.error_type, details=exc.details)
        if isinstance(exc, SqsError):
            error.update(code=exc.code, operation=exc.operation)
        print_json({"ok": False, "exit_code": int(code), "error": error})
    return code


class _JsonLogFormatter(logging.Formatter):
    """One JSON object per log record (``serve --json``), for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


def _configure_logging(args: argparse.Namespace) -> None:
    """The same levels on every command: -v shows INFO, -vv DEBUG, from every logger."""
    if logging.getLogger().handlers:
        return  # main() called by an application (or pytest) that configured logging itself
    verbose = min(args.verbose, 2)
    handler = logging.StreamHandler(sys.stderr)
    if args.command == "serve" and args.json:
        handler.setFormatter(_JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    # The root level applies to your handler's loggers too: `serve -v` shows their INFO.
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[verbose], handlers=[handler]
    )
    if verbose < 2:
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    if args.command == "serve" and verbose == 0:
        # A server's lifecycle (polling, stopping, stopped) is its output: shown by default.
        # The other commands print only warnings, so that their output stays scriptable.
        logging.getLogger("sqs_rpc").setLevel(logging.INFO)
