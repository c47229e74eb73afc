"""The ``sqs-rpc`` command (stdlib argparse). ``main(argv) -> int`` returns an exit code.

Subcommands: ``demo``, ``serve``, ``call``, ``publish``, ``sweep``, ``queues`` (in
``_cli_queues.py``, which keeps this module small). Each is one
``_add_<name>`` function (its arguments) and one ``_<name>`` function (what it does); the
options every AWS-facing command shares are added by :func:`_add_common_options` and read
by :func:`_aws_options`.

Exit codes (``docs/cli.md`` documents them too):

==  ====================  ==================================================="""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from sqs_rpc._errors import (
    ConfigurationError,
    CredentialsError,
    PayloadTooLarge,
    RemoteError,
    RpcTimeout,
    SqsError,
    SqsRpcError,
    aws_errors,
)

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_REMOTE_ERROR",
    "EXIT_SQS_ERROR",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "main",
]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_REMOTE_ERROR = 4
EXIT_SQS_ERROR = 5
EXIT_PARTIAL = 6
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A bad command-line argument; the message says what to pass instead."""


# -- parser ------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqs-rpc", description="Request-response RPC over Amazon SQS."
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v: info, -vv: debug)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(commands)
    _add_serve(commands)
    _add_call(commands)
    _add_publish(commands)
    _add_sweep(commands)
    from .queues import add_queues  # here: that module imports this one

    add_queues(commands)
    return parser


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that talks to SQS."""
    where = parser.add_argument_group("AWS")
    where.add_argument("--endpoint-url", help="SQS endpoint (default: AWS's for the region)")
    where.add_argument("--region", help="AWS region (default: boto3's chain, AWS_DEFAULT_REGION)")
    where.add_argument("--profile", help="AWS profile from ~/.aws/config (default: AWS_PROFILE)")
    parser.add_argument(
        "--json", action="store_true", help="machine-readable output: one JSON document"
    )
    # SUPPRESS: given only after the command, it must not reset a -v given before it.
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="log more (-v: info, -vv: debug)",
    )


def _aws_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for RpcClient / MessagePoller from the common options."""
    import boto3

    options: dict[str, Any] = {"endpoint_url": args.endpoint_url, "region_name": args.region}
    if args.profile:
        with aws_errors("LoadProfile"):
            options["session"] = boto3.session.Session(profile_name=args.profile)
    return options


def _json_argument(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"the payload {text!r} is not valid JSON ({exc}); quote it for the shell, for "
            """example '{"x": 1}' or '"a string"'"""
        ) from None


# -- main --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    _configure_logging(args)
    try:
        code: int = args.run(args)
        return code
    except UsageError as exc:
        return _fail(args, EXIT_USAGE, str(exc))
    except SqsRpcError as exc:
        logger.debug("command failed", exc_info=True)
        return _fail(args, _exit_code(exc), str(exc), exc)
    except KeyboardInterrupt:
        return _fail(args, EXIT_INTERRUPTED, "interrupted")


def _exit_code(exc: SqsRpcError) -> int:
    if isinstance(exc, RpcTimeout):
        return EXIT_TIMEOUT
    if isinstance(exc, RemoteError):
        return EXIT_REMOTE_ERROR
    if isinstance(exc, SqsError):
        return EXIT_SQS_ERROR
    if isinstance(exc, ConfigurationError | PayloadTooLarge):
        return EXIT_USAGE
    return EXIT_FAILURE


def _fail(
    args: argparse.Namespace, code: int, message: str, exc: BaseException | None = None
) -> int:
    """Report an error: one line on stderr and, with --json, a document on stdout."""
    label = "remote error" if isinstance(exc, RemoteError) else "error"
    if isinstance(exc, CredentialsError):
        message += "; from the command line: --profile NAME, or AWS_PROFILE / AWS_ACCESS_KEY_ID"
    print(f"sqs-rpc: {label}: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        error: dict[str, Any] = {"type": type(exc).__name__ if exc else "UsageError"}
        error["message"] = message
        if isinstance(exc, RemoteError):
            error.update(remote_type=exc.error_type, details=exc.details)
        if isinstance(exc, SqsError):
            error.update(code=exc.code, operation=exc.operation)
        _print_json({"ok": False, "exit_code": code, "error": error})
    return code


def _print_json(document: Any, *, indent: int | None = None) -> None:
    print(json.dumps(document, ensure_ascii=False, indent=indent, default=repr))


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
    if logging.getLogger().handlers:
        return  # main() called by an application (or pytest) that configured logging itself
    # A server reports its lifecycle (polling, stopped) by default; the other commands only
    # warnings, so that their stdout/stderr stay scriptable. Other libraries (botocore) log
    # below WARNING only with -vv.
    base = 1 if args.command == "serve" else 0
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose + base, 2)]
    logging.getLogger("sqs_rpc").setLevel(level)
    handler = logging.StreamHandler(sys.stderr)
    if getattr(args, "json", False) and args.command == "serve":
        handler.setFormatter(_JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose >= 2 else logging.WARNING, handlers=[handler]
    )


# -- demo --------------------------------------------------------------------------------------


def _add_demo(commands: Any) -> None:
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
    demo.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.calls < 1 or args.concurrency < 1:
        raise UsageError("--calls and --concurrency must be >= 1")
    report = run_demo(
        sys.stdout,
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        calls=args.calls,
        concurrency=args.concurrency,
    )
    return EXIT_OK if report.ok else EXIT_FAILURE


# -- serve -------------------------------------------------------------------------------------


def _add_serve(commands: Any) -> None:
    from sqs_rpc._server.poller import DEFAULT_CONCURRENCY

    serve = commands.add_parser(
        "serve",
        help="run a MessageHandler on a request queue until SIGTERM or Ctrl-C",
        description="Import HANDLER (module:Class, a MessageHandler subclass built with no "
        "arguments), run it on the queue with a MessagePoller, and stop gracefully on SIGTERM "
        "or Ctrl-C: running handlers finish, unstarted messages are released.",
    )
    serve.add_argument("handler", metavar="HANDLER", help="module:Class, e.g. myapp.rpc:Orders")
    serve.add_argument("--queue-url", required=True, help="the request queue's URL")
    serve.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"handler threads (default {DEFAULT_CONCURRENCY})",
    )
    serve.add_argument(
        "--wait-time", type=int, default=20, help="long-poll seconds, 1 to 20 (default 20)"
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
    _add_common_options(serve)
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from sqs_rpc._server.poller import MessagePoller

    from .loader import load_handler

    handler = load_handler(args.handler, args.app_dir)
    poller = MessagePoller(
        args.queue_url,
        handler,
        concurrency=args.concurrency,
        wait_time_seconds=args.wait_time,
        include_traceback=args.include_traceback,
        **_aws_options(args),
    )
    poller.run()  # returns after SIGTERM/SIGINT, once running handlers have finished
    return EXIT_OK


# -- call --------------------------------------------------------------------------------------


def _add_call(commands: Any) -> None:
    call = commands.add_parser(
        "call",
        help="send a JSON request, wait for the reply, print it as JSON",
        description="Send PAYLOAD (JSON) to QUEUE_URL and print the reply as JSON. The exit "
        "code tells a timeout (3) from a remote error (4) and an SQS error (5).",
    )
    call.add_argument("queue_url", metavar="QUEUE_URL")
    call.add_argument("payload", metavar="JSON", help="the request payload, as JSON")
    call.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the reply (default 30)"
    )
    call.add_argument("--group-id", help="MessageGroupId (FIFO queues)")
    call.add_argument("--deduplication-id", help="MessageDeduplicationId (FIFO queues)")
    _add_common_options(call)
    call.set_defaults(run=_call)


def _call(args: argparse.Namespace) -> int:
    from sqs_rpc._client.client import RpcClient

    payload = _json_argument(args.payload)
    with RpcClient(**_aws_options(args)) as client:
        reply = client.call(
            args.queue_url,
            payload,
            timeout=args.timeout,
            group_id=args.group_id,
            deduplication_id=args.deduplication_id,
        )
    if args.json:
        _print_json({"ok": True, "reply": reply})
    else:
        _print_json(reply, indent=2)
    return EXIT_OK


# -- publish -----------------------------------------------------------------------------------


def _add_publish(commands: Any) -> None:
    publish = commands.add_parser(
        "publish",
        help="send a one-way JSON message (no reply) and print its message id",
        description="Send PAYLOAD (JSON) to QUEUE_URL as a one-way message and print the SQS "
        "message id. No reply queue is created.",
    )
    publish.add_argument("queue_url", metavar="QUEUE_URL")
    publish.add_argument("payload", metavar="JSON", help="the message payload, as JSON")
    publish.add_argument("--group-id", help="MessageGroupId (FIFO queues)")
    publish.add_argument("--deduplication-id", help="MessageDeduplicationId (FIFO queues)")
    publish.add_argument(
        "--delay", type=int, default=0, help="DelaySeconds, 0 to 900 (standard queues)"
    )
    _add_common_options(publish)
    publish.set_defaults(run=_publish)


def _publish(args: argparse.Namespace) -> int:
    from sqs_rpc._client.client import RpcClient

    payload = _json_argument(args.payload)
    with RpcClient(**_aws_options(args)) as client:
        message_id = client.publish(
            args.queue_url,
            payload,
            group_id=args.group_id,
            deduplication_id=args.deduplication_id,
            delay_seconds=args.delay,
        )
    if args.json:
        _print_json({"ok": True, "message_id": message_id})
    else:
        print(message_id)
    return EXIT_OK


# -- sweep -------------------------------------------------------------------------------------


def _add_sweep(commands: Any) -> None:
    from sqs_rpc._client.reply_queue import DEFAULT_PREFIX
    from sqs_rpc._sweeper import DEFAULT_MAX_DELETIONS

    sweep = commands.add_parser(
        "sweep",
        help="delete reply queues whose owner died without closing them (for cron)",
        description="Delete the queues under --prefix that carry sqs-rpc's (or the AWS Java "
        "temporary-queues client's) heartbeat tags, whose heartbeat is older than their "
        "idle retention, and that hold no messages. Queues without those tags are never "
        "touched. Exit codes: 0 done; 1 failed (for example, the queues could not be "
        "listed); 2 usage error; 5 SQS error; 6 some queues could not be checked or deleted.",
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
    _add_common_options(sweep)
    sweep.set_defaults(run=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    from sqs_rpc._sweeper import Sweeper

    if args.max_deletions < 0:
        raise UsageError("--max-deletions must be >= 0")
    sweeper = Sweeper(
        reply_queue_prefix=args.prefix,
        dry_run=args.dry_run,
        include_nonempty=args.include_nonempty,
        max_deletions=args.max_deletions,
        **_aws_options(args),
    )
    report = sweeper.sweep()
    if args.json:
        _print_json(report.to_dict(), indent=2)
    else:
        for decision in report.decisions:
            print(f"{decision.action:12} {decision.queue_url}  ({decision.reason})")
        verb = "would delete" if report.dry_run else "deleted"
        print(
            f"checked {report.checked}, {verb} {len(report.deleted)}, kept {len(report.kept)}, "
            f"errors {len(report.errors)}"
        )
    return EXIT_PARTIAL if report.errors else EXIT_OK
