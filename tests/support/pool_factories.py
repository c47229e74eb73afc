"""Pollers for the PollerPool tests, built in spawned children (so: importable, picklable).

- :class:`PidEcho` replies ``{"pid": <its process id>, "body": body}``. A body
  ``{"sleep": s}`` holds the call ``s`` seconds first (CPU-free), and ``{"sleep": s,
  "first_only": true}`` only on the first delivery, so that a redelivery answers at once.
- :class:`EchoPoller` is the factory: a MessagePoller running PidEcho on one queue.
- :func:`crash_at_start` raises, as a factory whose handler cannot be built would.
- :class:`CrashOnMessage` ends its process a second into any message: a poison message
  that kills every child it reaches.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any

import boto3

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller

__all__ = ["CrashOnMessage", "EchoPoller", "PidEcho", "crash_at_start"]

logger = logging.getLogger(__name__)


class PidEcho(MessageHandler):
    """Replies with the process id; a ``{"sleep": s}`` body holds the call first."""

    def handle(self, message: IncomingMessage) -> Any:
        body = message.body
        held = isinstance(body, dict) and "sleep" in body
        if held and (message.receive_count == 1 or not body.get("first_only")):
            logger.warning("holding %s for %s s", message.correlation_id, body["sleep"])
            time.sleep(body["sleep"])
        return {"pid": os.getpid(), "body": body}


@dataclasses.dataclass(frozen=True)
class EchoPoller:
    """Builds, in the child, a MessagePoller running :class:`PidEcho` on ``queue_url``."""

    queue_url: str
    endpoint_url: str
    region_name: str
    shutdown_timeout: float = 10.0

    def __call__(self) -> MessagePoller:
        sqs = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=self.region_name,
        ).client("sqs", endpoint_url=self.endpoint_url)
        return MessagePoller(
            self.queue_url,
            PidEcho(),
            sqs_client=sqs,
            wait_time_seconds=1,
            shutdown_timeout=self.shutdown_timeout,
        )


def crash_at_start() -> MessagePoller:
    """A factory that fails, as one whose handler cannot be imported or built does."""
    raise RuntimeError("the handler's database is unreachable")


class _Crash(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        # No grace needed: a child reports itself ready as its poller starts, a receive round
        # trip before any handler runs, so the pool counts this as a serving child's crash.
        os._exit(7)


@dataclasses.dataclass(frozen=True)
class CrashOnMessage:
    """Builds a poller whose handler ends the process (exit code 7)."""

    poller: EchoPoller

    def __call__(self) -> MessagePoller:
        poller = self.poller
        sqs = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=poller.region_name,
        ).client("sqs", endpoint_url=poller.endpoint_url)
        return MessagePoller(poller.queue_url, _Crash(), sqs_client=sqs, wait_time_seconds=1)
