"""A test-only server: records every execution in a file, one line each, then echoes.

    python tests/shutdown_server.py QUEUE_URL EXECUTIONS_FILE --endpoint-url URL --region R

Used by tests/test_shutdown.py to prove that SIGTERM under load loses nothing and runs
nothing twice.
"""

from __future__ import annotations

import argparse
import logging
import threading
from typing import Any

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller


class Recording(MessageHandler):
    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.work = threading.Event()  # never set: waiting on it is the handler's work

    def handle(self, message: IncomingMessage) -> Any:
        with self.lock, open(self.path, "a", encoding="utf-8") as file:
            file.write(f"{message.body}\n")
        self.work.wait(0.3)
        return message.body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("queue_url")
    parser.add_argument("executions")
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--region", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    MessagePoller(
        args.queue_url,
        Recording(args.executions),
        concurrency=4,
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        wait_time_seconds=1,
    ).run()


if __name__ == "__main__":
    main()
