"""``sqs-rpc call`` and ``sqs-rpc publish``: send one JSON message from the command line."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from sqs_rpc._client.client import RpcClient
from sqs_rpc._errors import SqsError, aws_errors

from .common import (
    add_command,
    add_common_options,
    aws_options,
    json_argument,
    print_json,
    queue_url,
    seconds,
    sqs_client,
    whole,
)
from .errors import ExitCode

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["register"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds


def register(commands: Any) -> None:
    """Add ``call`` and ``publish`` to the subcommands."""
    call = add_command(
        commands,
        "call",
        help="send a JSON request, wait for the reply, print it as JSON",
        description="Send PAYLOAD (JSON) to QUEUE_URL and print the reply as JSON. The exit "
        "code tells a timeout (3) from a remote error (4) and an SQS error (5).",
        exit_codes=(
            ExitCode.OK,
            ExitCode.FAILURE,
            ExitCode.USAGE,
            ExitCode.TIMEOUT,
            ExitCode.REMOTE_ERROR,
            ExitCode.SQS_ERROR,
            ExitCode.INTERRUPTED,
        ),
    )
    call.add_argument("queue_url", metavar="QUEUE_URL", type=queue_url)
    call.add_argument("payload", metavar="JSON", help="the request payload, as JSON")
    call.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for the reply (default {DEFAULT_TIMEOUT:g})",
    )
    _add_fifo_options(call)
    add_common_options(call)
    call.set_defaults(run=_call)

    publish = add_command(
        commands,
        "publish",
        help="send a one-way JSON message (no reply) and print its message id",
        description="Send PAYLOAD (JSON) to QUEUE_URL as a one-way message and print the SQS "
        "message id. No reply queue is created.",
        exit_codes=(
            ExitCode.OK,
            ExitCode.FAILURE,
            ExitCode.USAGE,
            ExitCode.SQS_ERROR,
            ExitCode.INTERRUPTED,
        ),
    )
    publish.add_argument("queue_url", metavar="QUEUE_URL", type=queue_url)
    publish.add_argument("payload", metavar="JSON", help="the message payload, as JSON")
    _add_fifo_options(publish)
    publish.add_argument(
        "--delay",
        type=whole(0, MAX_DELAY_SECONDS),
        default=0,
        help=f"DelaySeconds, 0 to {MAX_DELAY_SECONDS} (standard queues)",
    )
    add_common_options(publish)
    publish.set_defaults(run=_publish)


def _add_fifo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group-id", help="MessageGroupId (FIFO queues)")
    parser.add_argument("--deduplication-id", help="MessageDeduplicationId (FIFO queues)")


def _call(args: argparse.Namespace) -> int:
    payload = json_argument(args.payload)
    sqs = sqs_client(args)
    _check_queue_exists(sqs, args.queue_url)
    with RpcClient(sqs_client=sqs) as client:
        reply = client.call(
            args.queue_url,
            payload,
            timeout=args.timeout,
            group_id=args.group_id,
            deduplication_id=args.deduplication_id,
        )
    if args.json:
        print_json({"ok": True, "reply": reply})
    else:
        print_json(reply, indent=2)
    return ExitCode.OK


def _check_queue_exists(sqs: SQSClient, url: str) -> None:
    """Raise QueueDoesNotExist now, before the call creates (and deletes) a reply queue.

    This needs ``sqs:GetQueueAttributes`` on the request queue, which a caller's policy may
    not grant (docs/operations.md gives callers ``sqs:SendMessage`` only): when access is
    denied, the check is skipped and a missing queue fails the ``SendMessage`` instead.
    """
    try:
        with aws_errors("GetQueueAttributes", url):
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    except SqsError as exc:
        if "AccessDenied" not in exc.code:
            raise
        logger.debug("cannot check that %s exists (%s); calling it anyway", url, exc.code)


def _publish(args: argparse.Namespace) -> int:
    payload = json_argument(args.payload)
    with RpcClient(**aws_options(args)) as client:
        message_id = client.publish(
            args.queue_url,
            payload,
            group_id=args.group_id,
            deduplication_id=args.deduplication_id,
            delay_seconds=args.delay,
        )
    if args.json:
        print_json({"ok": True, "message_id": message_id})
    else:
        print(message_id)
    return ExitCode.OK
