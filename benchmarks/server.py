"""The RPC server under test, in its own process: sqs-rpc's MessagePoller or the baseline.

    python -m benchmarks.server {sqs-rpc|baseline} ENDPOINT QUEUE_URL COUNTS_FILE

Prints "ready" once polling. On SIGUSR1 it writes its SQS request counts and billed request
counts by operation to COUNTS_FILE (with a sequence number); on SIGTERM it writes them and
exits at once.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

import boto3
from botocore.config import Config

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, RequestCounter

from .baseline import BaselineServer

CONCURRENCY = 10  # sqs-rpc's default: a full receive of 10 handled at once


def work(payload: Any) -> Any:
    """The benchmark's handler: echo the id; sleep when asked (the slow-handler phase)."""
    if isinstance(payload, dict) and payload.get("sleep"):
        time.sleep(float(payload["sleep"]))
    return {"i": payload.get("i") if isinstance(payload, dict) else None}


class Work(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        return work(message.body)


def main() -> None:
    impl, endpoint, queue_url, counts_file = sys.argv[1:5]
    sqs = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    ).client("sqs", endpoint_url=endpoint, config=Config(max_pool_connections=CONCURRENCY + 4))
    counter = RequestCounter.attach(sqs)
    sequence = [0]

    def dump() -> None:
        sequence[0] += 1
        tmp = counts_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(
                {
                    "sequence": sequence[0],
                    "counts": counter.snapshot(),
                    "billed": counter.billed_snapshot(),
                },
                f,
            )
        os.replace(tmp, counts_file)

    def on_usr1(_signum: int, _frame: Any) -> None:
        dump()

    def on_term(_signum: int, _frame: Any) -> None:
        dump()
        os._exit(0)

    signal.signal(signal.SIGUSR1, on_usr1)
    signal.signal(signal.SIGTERM, on_term)
    if impl == "sqs-rpc":
        MessagePoller(queue_url, Work(), concurrency=CONCURRENCY, sqs_client=sqs).start()
    else:
        BaselineServer(sqs, queue_url, work, CONCURRENCY).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
