"""What a caller sees when things go wrong, and how to tell the cases apart.

    python examples/error_handling.py

Runs on the embedded SQS-compatible server. Every exception is an sqs_rpc.SqsRpcError.
"""

from __future__ import annotations

from typing import Any

from sqs_rpc import (
    EmbeddedSqs,
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    PayloadTooLarge,
    QueueDoesNotExist,
    RemoteError,
    RpcClient,
    RpcTimeout,
)


class Divide(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        return message.body["a"] / message.body["b"]  # raises for b == 0, or a missing key


def main() -> None:
    with EmbeddedSqs() as sqs:
        queue_url = sqs.create_queue("divide", max_receive_count=3)
        nobody_listens = sqs.create_queue("unserved")
        poller = MessagePoller(queue_url, Divide(), sqs_client=sqs.client(), wait_time_seconds=1)
        with poller, RpcClient(sqs_client=sqs.client(), max_message_bytes=64 * 1024) as client:
            print("6 / 3 =", client.call(queue_url, {"a": 6, "b": 3}, timeout=10))

            # The handler raised: its type and message cross the wire as data.
            try:
                client.call(queue_url, {"a": 1, "b": 0}, timeout=10)
            except RemoteError as exc:
                print("remote error:", exc.error_type, "-", exc.remote_message)

            # No reply in time. The request may still run later: SQS cannot take it back.
            try:
                client.call(nobody_listens, {"a": 1, "b": 1}, timeout=1)
            except RpcTimeout as exc:
                print("timeout:", exc.correlation_id, "got no reply within 1s")

            # Checked before sending: nothing reaches SQS.
            try:
                client.call(queue_url, {"blob": "x" * 100_000}, timeout=10)
            except PayloadTooLarge as exc:
                print(f"too large: {exc.size:,} bytes > {exc.limit:,}")

            # SQS itself refused: a wrong URL, a deleted queue, missing permissions.
            try:
                client.call(queue_url.replace("divide", "no-such-queue"), {}, timeout=10)
            except QueueDoesNotExist as exc:
                print("queue does not exist:", exc.operation)


if __name__ == "__main__":
    main()
