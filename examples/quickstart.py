"""The whole round trip in one file, on the embedded SQS-compatible server.

    python examples/quickstart.py

Needs the server extra: pip install -e ".[server]".
"""

from __future__ import annotations

from typing import Any

from sqs_rpc import (
    EmbeddedSqs,
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    RemoteError,
    RpcClient,
)


class Echo(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        if message.body == "fail":
            raise ValueError("asked to fail")
        return {"echo": message.body}  # the return value becomes the reply


def main() -> None:
    with EmbeddedSqs() as sqs:
        queue_url = sqs.create_queue("echo-requests", max_receive_count=3)
        poller = MessagePoller(
            queue_url, Echo(), concurrency=8, sqs_client=sqs.client(), wait_time_seconds=1
        )
        poller.start()
        try:
            with RpcClient(sqs_client=sqs.client()) as client:
                print(client.call(queue_url, {"x": 1}, timeout=10))  # {'echo': {'x': 1}}
                future = client.call_async(queue_url, {"x": 2})
                print(future.result(timeout=10))  # {'echo': {'x': 2}}
                print("published", client.publish(queue_url, {"x": 3}))  # no reply expected
                try:
                    client.call(queue_url, "fail", timeout=10)
                except RemoteError as exc:
                    print("remote error:", exc.error_type, exc.remote_message)
        finally:
            poller.stop()


if __name__ == "__main__":
    main()
