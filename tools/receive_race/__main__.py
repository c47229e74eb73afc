"""Do concurrent ReceiveMessage requests ever return the same message? A check of the SQS server.

    python -m tools.receive_race [--messages 20000] [--receivers 8]
    python -m tests.support.fauxqs run -- python -m tools.receive_race

One thread sends messages to a standard queue while several others receive them in batches of
10 and delete them; the visibility timeout is far longer than the run. SQS hides a message from
every other receive once one receive has it, so no message id should come back twice. It runs
against moto's server in its own process, or against ``SQS_RPC_TEST_ENDPOINT`` when set.
Prints the counts; exits 1 when a message was received twice (the server let two concurrent
receives take it), 0 otherwise.

This is what explains the soak's one "run in each server" execution: both at receive count 2,
6 ms apart, in two processes (see docs/reliability.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[2]


def _client(endpoint: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        region_name="us-east-1",
    ).client("sqs", endpoint_url=endpoint)


def check(endpoint: str, messages: int, receivers: int) -> Counter[str]:
    """Receipts per message id once ``receivers`` threads have received ``messages`` messages.

    A producer sends batches of 10 while the receivers receive batches of 10 and delete what
    they got, as the servers of the soak do: the queue stays short (moto's cost per receive
    grows with its length), and many receives run at once.
    """
    sqs = _client(endpoint)
    queue = sqs.create_queue(
        QueueName=f"receive-race-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "600"}
    )["QueueUrl"]
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    sent = threading.Event()

    def produce() -> None:
        own = _client(endpoint)
        for start in range(0, messages, 10):
            entries = [{"Id": str(i), "MessageBody": str(start + i)} for i in range(10)]
            own.send_message_batch(QueueUrl=queue, Entries=entries[: messages - start])
        sent.set()

    def drain() -> None:
        own = _client(endpoint)
        empty = 0
        while empty < 2:
            got = own.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            empty = 0 if got or not sent.is_set() else empty + 1
            if got:
                own.delete_message_batch(
                    QueueUrl=queue,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(got)
                    ],
                )
            with lock:
                seen.update(m["MessageId"] for m in got)

    threads = [threading.Thread(target=produce)]
    threads += [threading.Thread(target=drain) for _ in range(receivers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sqs.delete_queue(QueueUrl=queue)
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.receive_race")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--receivers", type=int, default=8)
    args = parser.parse_args()
    endpoint = os.environ.get("SQS_RPC_TEST_ENDPOINT")
    server = None
    if not endpoint:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.support.sqs_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert server.stdout is not None
        endpoint = server.stdout.readline().strip()
    try:
        seen = check(endpoint, args.messages, args.receivers)
    finally:
        if server is not None:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(30)
    twice = {mid: n for mid, n in seen.items() if n > 1}
    name = os.environ.get("SQS_RPC_TEST_SERVER", "moto")
    print(
        f"{name}: {args.messages} messages, {args.receivers} concurrent receivers: "
        f"{len(seen)} distinct received, {sum(seen.values())} receipts, "
        f"{len(twice)} received more than once"
    )
    return 1 if twice else 0


if __name__ == "__main__":
    sys.exit(main())
