"""One-way messages: publish() sends and returns at once; no reply queue, no reply.

    python examples/fire_and_forget.py

Runs on the embedded SQS-compatible server. A handler that raises on a one-way message leaves
it in the queue, so SQS retries it and, with a redrive policy, moves it to a dead-letter queue.
"""

from __future__ import annotations

import threading
from typing import Any

from sqs_rpc import EmbeddedSqs, IncomingMessage, MessageHandler, MessagePoller, RpcClient


class Audit(MessageHandler):
    """Records page views; the return value of a one-way message is ignored."""

    def __init__(self, expected: int) -> None:
        self.pages: list[str] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.expected = expected

    def handle(self, message: IncomingMessage) -> Any:
        assert message.one_way  # no ReplyTo: nobody waits for an answer
        with self.lock:
            self.pages.append(message.body["page"])
            if len(self.pages) == self.expected:
                self.done.set()
        return None


def main() -> None:
    pages = ["/", "/pricing", "/docs", "/blog", "/signup"]
    audit = Audit(expected=len(pages))
    with EmbeddedSqs() as sqs:
        queue_url = sqs.create_queue("page-views", max_receive_count=3)
        poller = MessagePoller(queue_url, audit, sqs_client=sqs.client(), wait_time_seconds=1)
        with poller, RpcClient(sqs_client=sqs.client()) as client:
            for page in pages:
                client.publish(queue_url, {"page": page})
            print("published", len(pages), "events; reply queue:", client.reply_queue_url)
            if not audit.done.wait(30):
                raise SystemExit("the events were not handled within 30s")
    print("handled:", sorted(audit.pages))


if __name__ == "__main__":
    main()
