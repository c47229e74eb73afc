"""``sqs-rpc local``: the embedded SQS-compatible server on its own, for serve and call elsewhere.

It runs moto's server on 127.0.0.1 in the foreground until Ctrl-C (or SIGTERM). It can create
request queues, each with a dead-letter queue. It prints the environment that points boto3,
and so every ``sqs-rpc`` command, at it: ``AWS_ENDPOINT_URL_SQS`` and dummy credentials.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from sqs_rpc._embedded import (
    DEFAULT_MAX_RECEIVE_COUNT,
    EmbeddedSqs,
    create_queue_with_dead_letters,
)
from sqs_rpc._signals import StopSignals

from .common import add_command, add_verbose, whole
from .errors import ExitCode, UsageError

__all__ = ["DEFAULT_LOCAL_PORT", "local_environment", "register"]

# ElasticMQ's port: tools that expect a local SQS often try it first.
DEFAULT_LOCAL_PORT = 9324
# Emulators accept any credentials; these only stop boto3 from looking for real ones.
_DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def register(commands: Any) -> None:
    """Add ``local`` to the subcommands."""
    local = add_command(
        commands,
        "local",
        help="run an SQS-compatible server on 127.0.0.1 for local development",
        description="Run an embedded SQS-compatible server (moto's) on 127.0.0.1 until "
        "Ctrl-C. Print the environment variables that point boto3 and sqs-rpc at it. Queues "
        "live in memory and go when the server stops.",
        exit_codes=(ExitCode.OK, ExitCode.USAGE, ExitCode.SQS_ERROR),
    )
    local.add_argument(
        "--port",
        type=whole(0, 65535),
        default=DEFAULT_LOCAL_PORT,
        help=f"TCP port on 127.0.0.1 (default {DEFAULT_LOCAL_PORT}; 0 picks a free one)",
    )
    local.add_argument(
        "--region", default="us-east-1", help="region of the queue URLs (default us-east-1)"
    )
    local.add_argument(
        "--queue",
        action="append",
        default=[],
        metavar="NAME",
        help="create this request queue and its dead-letter queue NAME-dlq (repeatable)",
    )
    local.add_argument(
        "--max-receive-count",
        type=whole(1, 1000),
        default=DEFAULT_MAX_RECEIVE_COUNT,
        help=f"receives before a request goes to the dead-letter queue "
        f"(default {DEFAULT_MAX_RECEIVE_COUNT})",
    )
    add_verbose(local)
    local.set_defaults(run=_local)


def local_environment(endpoint_url: str, region_name: str) -> dict[str, str]:
    """The variables that point boto3 (1.28 or later) at ``endpoint_url`` for SQS only."""
    return {
        "AWS_ENDPOINT_URL_SQS": endpoint_url,
        **_DUMMY_CREDENTIALS,
        "AWS_DEFAULT_REGION": region_name,
    }


def _local(args: argparse.Namespace) -> int:
    if threading.current_thread() is not threading.main_thread():
        raise UsageError("local must run in the main thread, where signals are handled")
    stopping = threading.Event()

    # Handlers first: a Ctrl-C while moto starts must stop the server too, not be lost.
    with (
        StopSignals(lambda _signum: stopping.set()) as signals,
        EmbeddedSqs(port=args.port, region_name=args.region) as sqs,
    ):
        _announce(sqs, args)
        signals.wait(stopping)
        print("stopping the SQS-compatible server", flush=True)
    return ExitCode.OK


def _announce(sqs: EmbeddedSqs, args: argparse.Namespace) -> None:
    """Create the queues, then print where they are and the environment to use."""
    admin = sqs.client()
    queues = [
        create_queue_with_dead_letters(admin, name, max_receive_count=args.max_receive_count)
        for name in args.queue
    ]
    print(f"SQS-compatible server (moto) listening on {sqs.endpoint_url}")
    for queue_url, dead_letters in queues:
        print(f"queue: {queue_url}")
        print(f"  dead-letter queue: {dead_letters}")
    print("\n# In another terminal, for sqs-rpc and boto3:")
    for name, value in local_environment(sqs.endpoint_url, args.region).items():
        print(f"export {name}={value}")
    print("\nCtrl-C stops the server; its queues go with it.", flush=True)
