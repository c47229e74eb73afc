"""An echo server for a request queue; blocks until SIGTERM or Ctrl-C.

    python examples/echo_server.py QUEUE_URL [--endpoint-url URL] [--region REGION]

Against AWS, credentials come from the standard boto3 chain.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller


class Echo(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        return {"echo": message.body}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("queue_url")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--region")
    parser.add_argument("--wait-time", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    poller = MessagePoller(
        args.queue_url,
        Echo(),
        concurrency=8,
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        wait_time_seconds=args.wait_time,
    )
    poller.run()  # returns after SIGTERM/SIGINT, once in-flight handlers have finished


if __name__ == "__main__":
    main()
