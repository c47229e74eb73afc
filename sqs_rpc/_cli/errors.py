"""The CLI's exit codes, and the one place where an exception becomes an exit code and a message.

This module imports no other module of ``sqs_rpc._cli``.
"""

from __future__ import annotations

import enum

from sqs_rpc._errors import (
    ConfigurationError,
    CredentialsError,
    PayloadTooLarge,
    RemoteError,
    RpcTimeout,
    SqsError,
)

__all__ = ["ExitCode", "UsageError", "cli_message", "exit_code_for"]


class ExitCode(enum.IntEnum):
    """The exit status of the ``sqs-rpc`` command (docs/cli.md says when each is used)."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    TIMEOUT = 3
    REMOTE_ERROR = 4
    SQS_ERROR = 5
    PARTIAL = 6
    INTERRUPTED = 130


class UsageError(Exception):
    """A bad command-line argument; the message names the option and what to pass instead."""


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
    """The exception's message, with what to do from the command line."""
    if isinstance(exc, CredentialsError):
        return f"{exc}; from the command line: --profile NAME, or AWS_PROFILE / AWS_ACCESS_KEY_ID"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return str(exc)
