"""Fan out many calls at once with asyncio.gather, on the embedded SQS-compatible server.

    python examples/fan_out_async.py

One AsyncRpcClient: one reply queue and one reply poller for all the calls; no thread per call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqs_rpc import AsyncRpcClient, EmbeddedSqs, IncomingMessage, MessageHandler, MessagePoller


class Square(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        return message.body * message.body


async def fan_out(queue_url: str, sqs: EmbeddedSqs) -> list[Any]:
    async with AsyncRpcClient(sqs_client=sqs.client()) as client:
        calls = [client.call(queue_url, n, timeout=20) for n in range(20)]
        return await asyncio.gather(*calls)  # replies in the order of the calls


def main() -> None:
    with EmbeddedSqs() as sqs:
        queue_url = sqs.create_queue("squares", max_receive_count=3)
        poller = MessagePoller(
            queue_url, Square(), concurrency=8, sqs_client=sqs.client(), wait_time_seconds=1
        )
        with poller:
            squares = asyncio.run(fan_out(queue_url, sqs))
        print("squares:", squares)
        print("sum:", sum(squares))  # 2470


if __name__ == "__main__":
    main()
