"""Calls to a FIFO queue: order within a message group, and deduplication.

    python examples/fifo.py

Runs on the embedded SQS-compatible server. Two things to know about FIFO request queues:

- Every message needs a group id (``group_id=``). SQS delivers a group's messages in order,
  but a MessagePoller runs the messages of one receive concurrently: use ``concurrency=1``
  when a group's messages must also be *handled* in order.
- A call's deduplication id is its correlation id unless you pass ``deduplication_id``, so
  every call is a request of its own. A ``publish`` needs ``deduplication_id`` unless the
  queue has content-based deduplication; two publishes with the same id (or, with
  content-based deduplication, the same body) within 5 minutes are one message to SQS.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from typing import Any

from sqs_rpc import EmbeddedSqs, IncomingMessage, MessageHandler, MessagePoller, RpcClient


class Ledger(MessageHandler):
    def __init__(self) -> None:
        self.entries: defaultdict[str, list[str]] = defaultdict(list)
        self.lock = threading.Lock()

    def handle(self, message: IncomingMessage) -> Any:
        customer, step = message.body["customer"], message.body["step"]
        with self.lock:
            self.entries[customer].append(step)
            return {"customer": customer, "step": step, "position": len(self.entries[customer])}


def main() -> None:
    ledger = Ledger()
    with EmbeddedSqs() as sqs:
        queue_url = sqs.create_queue("ledger.fifo", max_receive_count=3, FifoQueue="true")
        poller = MessagePoller(
            queue_url, ledger, concurrency=1, sqs_client=sqs.client(), wait_time_seconds=1
        )
        with RpcClient(sqs_client=sqs.client()) as client:
            # The same deduplication id twice within 5 minutes: SQS keeps only the first.
            # (Sent before the poller starts: moto's server, unlike SQS, forgets an id once
            # its message is deleted, so the first copy must still be in the queue.)
            for _ in range(2):
                client.publish(
                    queue_url,
                    {"customer": "carol", "step": "open"},
                    group_id="carol",
                    deduplication_id="carol-open",
                )
            with poller:
                futures = [
                    client.call_async(
                        queue_url,
                        {"customer": customer, "step": step},
                        group_id=customer,  # one group per customer: ordered per customer
                        deduplication_id=uuid.uuid4().hex,
                        timeout=20,
                    )
                    for step in ("open", "deposit", "withdraw")
                    for customer in ("alice", "bob")
                ]
                for future in futures:
                    reply = future.result()
                    print(f"{reply['customer']}: {reply['step']} handled as #{reply['position']}")
                # Ordered after the publishes in carol's group: when it is answered, they
                # have been handled.
                reply = client.call(
                    queue_url,
                    {"customer": "carol", "step": "deposit"},
                    group_id="carol",
                    deduplication_id="carol-deposit",
                    timeout=20,
                )
                print("carol's deposit handled as #", reply["position"], sep="")  # #2, not #3
    print("alice:", ledger.entries["alice"])
    print("bob:", ledger.entries["bob"])


if __name__ == "__main__":
    main()
