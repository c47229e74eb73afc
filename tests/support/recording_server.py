"""A test-only server: records every execution, holds it a while, then echoes with its pid.

    python tests/support/recording_server.py QUEUE_URL EXECUTIONS_FILE --endpoint-url URL --region R
        [--hold SECONDS] [--concurrency N]

Each execution appends ``BODY PID RECEIVE_COUNT`` to EXECUTIONS_FILE before the handler does
anything else, so a test can wait for it (and, say, SIGKILL this process mid-handler). The
reply is ``{"body": BODY, "pid": PID}``. Prints ``ready`` once polling; stops gracefully on
SIGTERM. Used by tests/system/test_process_faults.py and tests/system/test_shutdown.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from typing import Any

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller


class Recording(MessageHandler):
    def __init__(self, path: str, hold: float) -> None:
        self.path = path
        self.hold = hold
        self.lock = threading.Lock()
        self.work = threading.Event()  # never set: waiting on it is the handler's work

    def handle(self, message: IncomingMessage) -> Any:
        with self.lock, open(self.path, "a", encoding="utf-8") as file:
            file.write(f"{message.body} {os.getpid()} {message.receive_count}\n")
        self.work.wait(self.hold)
        return {"body": message.body, "pid": os.getpid()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("queue_url")
    parser.add_argument("executions")
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    poller = MessagePoller(
        args.queue_url,
        Recording(args.executions, args.hold),
        concurrency=args.concurrency,
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        wait_time_seconds=1,
    )
    poller.start()
    print("ready", flush=True)
    poller.run()


if __name__ == "__main__":
    main()
