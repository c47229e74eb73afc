"""The CLI's exit codes, and the one place where an exception becomes an exit code and a message.

Library messages name keyword arguments (``region_name=``, ``endpoint_url``); the ones a
command-line user can still meet after the CLI has checked its own options are reworded here
in the CLI's options (``--region``, ``--endpoint-url``). This module imports no other module
of ``sqs_rpc._cli``.
"""

from __future__ import annotations

import enum
import textwrap
from collections.abc import Iterable

from sqs_rpc._errors import (
    ConfigurationError,
    CredentialsError,
    PayloadTooLarge,
    RemoteError,
    RpcTimeout,
    SqsError,
)

__all__ = ["ExitCode", "UsageError", "cli_message", "exit_code_for", "exit_codes_epilog"]


class ExitCode(enum.IntEnum):
    """The exit status of the ``sqs-rpc`` command; ``code.meaning`` says when it is used.

    Example::

        result = subprocess.run(["sqs-rpc", "call", queue_url, "{}"])
        if result.returncode == ExitCode.TIMEOUT:
            ...  # no reply in time; the request may still be handled
    """

    OK = 0
    FAILURE = 1
    USAGE = 2
    TIMEOUT = 3
    REMOTE_ERROR = 4
    SQS_ERROR = 5
    PARTIAL = 6
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        """When the command exits with this code: one line, as in ``sqs-rpc --help``."""
        return _MEANINGS[self]


# One line each: `sqs-rpc --help` prints them, and docs/cli.md's table must say the same.
_MEANINGS = {
    ExitCode.OK: "success",
    ExitCode.FAILURE: "any other failure: an undecodable reply, a demo that found a problem",
    ExitCode.USAGE: "bad arguments: an invalid option, JSON or HANDLER, no region, an unknown "
    "profile, a payload too large",
    ExitCode.TIMEOUT: "call: no reply within --timeout",
    ExitCode.REMOTE_ERROR: "call: the handler raised; its type and message are printed",
    ExitCode.SQS_ERROR: "SQS failed: the queue does not exist, no credentials, the endpoint "
    "is unreachable, access denied",
    ExitCode.PARTIAL: "sweep, queues: some queues could not be checked or deleted",
    ExitCode.INTERRUPTED: "Ctrl-C stopped the command (serve stops gracefully and exits 0)",
}


class UsageError(Exception):
    """A bad command-line argument; the message names the option and what to pass instead."""


def exit_codes_epilog(codes: Iterable[ExitCode] = ExitCode) -> str:
    """The exit-code table of a ``--help`` page: one line per code, in the order given."""
    rows = [
        f"  {code.value:<4} {code.name:<13} "
        + f"\n{'':21}".join(textwrap.wrap(code.meaning, 78 - 21))
        for code in codes
    ]
    return "\n".join(["exit codes:", *rows])


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for an exception that ended a command."""
    if isinstance(exc, UsageError | ConfigurationError | PayloadTooLarge):
        return ExitCode.USAGE
    if isinstance(exc, RpcTimeout):
        return ExitCode.TIMEOUT
    if isinstance(exc, RemoteError):
        return ExitCode.REMOTE_ERROR
    if isinstance(exc, SqsError):
        return ExitCode.SQS_ERROR
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.FAILURE


def cli_message(exc: BaseException) -> str:
    """The exception's message, with the library's keyword arguments named as CLI options."""
    if isinstance(exc, CredentialsError):
        return (
            f"{exc.operation}: no AWS credentials found; pass --profile NAME, or set "
            "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an "
            "instance or task role"
        )
    if isinstance(exc, SqsError) and exc.code == "EndpointConnectionError":
        return (
            f"{exc.operation}: cannot reach the SQS endpoint ({exc.__cause__}); check "
            "--endpoint-url (or --region) and that the server is running"
        )
    if isinstance(exc, PayloadTooLarge):
        return (
            f"the message is {exc.size:,} bytes (body plus attributes), over SQS's limit of "
            f"{exc.limit:,} bytes: send a smaller payload, or a reference to it such as an S3 key"
        )
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return str(exc)
