"""``sqs-rpc serve``: run a MessageHandler on a request queue until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import dataclasses
import threading
from typing import Any

import boto3

from sqs_rpc._errors import ConfigurationError, PoolFailed, SqsError
from sqs_rpc._server.poller import (
    DEFAULT_CONCURRENCY,
    DEFAULT_SHUTDOWN_TIMEOUT,
    DEFAULT_WAIT_TIME_SECONDS,
    MessagePoller,
)
from sqs_rpc._server.supervisor import PollerPool

from .common import add_command, add_common_options, aws_options, queue_url, seconds, whole
from .errors import ExitCode, UsageError
from .loader import load_handler

__all__ = ["register"]


def register(commands: Any) -> None:
    """Add ``serve`` to the subcommands."""
    serve = add_command(
        commands,
        "serve",
        help="run a MessageHandler on a request queue until SIGTERM or Ctrl-C",
        description="Import HANDLER (module:Class, a MessageHandler subclass built with no "
        "arguments), run it on the queue with a MessagePoller, and stop gracefully on SIGTERM "
        "or Ctrl-C: running handlers finish (up to --shutdown-timeout), unstarted messages "
        "are released, every RpcClient of the process is closed, and the command exits. A "
        "second Ctrl-C exits at once: handlers still running are abandoned and their "
        "messages come back after the queue's visibility timeout.",
        exit_codes=(ExitCode.OK, ExitCode.FAILURE, ExitCode.USAGE, ExitCode.SQS_ERROR),
    )
    serve.add_argument("handler", metavar="HANDLER", help="module:Class, e.g. myapp.rpc:Orders")
    serve.add_argument("--queue-url", required=True, type=queue_url, help="the request queue's URL")
    serve.add_argument(
        "--concurrency",
        type=whole(1),
        default=DEFAULT_CONCURRENCY,
        help=f"handler threads (default {DEFAULT_CONCURRENCY})",
    )
    serve.add_argument(
        "--wait-time",
        type=whole(1, 20),
        default=DEFAULT_WAIT_TIME_SECONDS,
        help=f"long-poll seconds, 1 to 20 (default {DEFAULT_WAIT_TIME_SECONDS})",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=seconds,
        default=DEFAULT_SHUTDOWN_TIMEOUT,
        help="seconds running handlers get to finish after SIGTERM or Ctrl-C; handlers still "
        f"running then are abandoned (default {DEFAULT_SHUTDOWN_TIMEOUT:g})",
    )
    serve.add_argument(
        "--processes",
        type=whole(1, 1024),
        default=1,
        help="poller processes on the queue, supervised and restarted when they die; one per "
        "core for CPU-bound handlers (default 1: this process polls)",
    )
    serve.add_argument(
        "--include-traceback",
        action="store_true",
        help="send the handler's traceback in error replies",
    )
    serve.add_argument(
        "--app-dir",
        default=".",
        help="directory to import HANDLER's module from (default: the current one)",
    )
    add_common_options(serve)
    serve.set_defaults(run=_serve)


# Seconds the supervisor gives a child past --shutdown-timeout (flushing replies, closing
# clients, exiting) before it SIGKILLs it.
_CHILD_EXIT_MARGIN = 15.0


@dataclasses.dataclass(frozen=True)
class ServeFactory:
    """The poller of one ``serve --processes N`` child, built in the child.

    Picklable (plain fields, a module-level class), as the spawn start method requires: the
    child loads HANDLER and builds its own boto3 session from ``profile``.
    """

    handler: str
    app_dir: str
    queue_url: str
    concurrency: int
    wait_time: int
    shutdown_timeout: float
    include_traceback: bool
    endpoint_url: str | None
    region: str | None
    profile: str | None

    def __call__(self) -> MessagePoller:
        return MessagePoller(
            self.queue_url,
            load_handler(self.handler, self.app_dir),
            concurrency=self.concurrency,
            wait_time_seconds=self.wait_time,
            shutdown_timeout=self.shutdown_timeout,
            include_traceback=self.include_traceback,
            session=boto3.session.Session(profile_name=self.profile),
            endpoint_url=self.endpoint_url,
            region_name=self.region,
        )


def _serve(args: argparse.Namespace) -> int:
    if args.processes > 1:
        return _serve_processes(args)
    handler = load_handler(args.handler, args.app_dir)
    poller = MessagePoller(
        args.queue_url,
        handler,
        concurrency=args.concurrency,
        wait_time_seconds=args.wait_time,
        shutdown_timeout=args.shutdown_timeout,
        include_traceback=args.include_traceback,
        **aws_options(args),
    )
    if threading.current_thread() is not threading.main_thread():
        raise UsageError("serve must run in the main thread, where signals are handled")
    poller.run()  # logs the signal, the in-flight messages and a stop that ran out of time
    return ExitCode.OK


def _serve_processes(args: argparse.Namespace) -> int:
    aws_options(args)  # the region and profile are checked here, reported as options
    factory = ServeFactory(
        handler=args.handler,
        app_dir=args.app_dir,
        queue_url=args.queue_url,
        concurrency=args.concurrency,
        wait_time=args.wait_time,
        shutdown_timeout=args.shutdown_timeout,
        include_traceback=args.include_traceback,
        endpoint_url=args.endpoint_url,
        region=args.region,
        profile=args.profile,
    )
    pool = PollerPool(
        factory,
        processes=args.processes,
        graceful_timeout=args.shutdown_timeout + _CHILD_EXIT_MARGIN,
    )
    if threading.current_thread() is not threading.main_thread():
        raise UsageError("serve must run in the main thread, where signals are handled")
    try:
        pool.run()
    except PoolFailed as exc:
        # A child that could not load HANDLER is a usage error, as without --processes.
        # A child that could not reach its queue is an SQS error (exit 5), as without it too.
        if "ConfigurationError" in exc.error_types:
            raise ConfigurationError(str(exc)) from exc
        if "SqsError" in exc.error_types:
            raise SqsError(str(exc), code=exc.error_types[0], operation="start") from exc
        raise
    return ExitCode.OK
