"""A soak server process: a MessagePoller whose handler behaves as each payload asks.

    python -m tools.soak.server QUEUE_URL WORKDIR --index N --endpoint-url URL --region R

Every execution is appended to ``WORKDIR/executions-server-N.txt``, one line each: call id,
start time (epoch seconds) and SQS receive count, line-buffered so the record survives even a
crash. Prints ``ready`` once polling; on SIGTERM
it stops gracefully and writes ``WORKDIR/server-N.json``: its pid, ``stats()`` and RSS samples.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller
from sqs_rpc._options import DEFAULT_REPLY_CACHE_TTL

from .memory import Sampler

CONCURRENCY = 8


class PlannedFailure(Exception):
    """What a "fail" call's handler raises; the caller sees it as RemoteError."""


class SoakHandler(MessageHandler):
    """Records each execution, then answers fast, slowly, with an error, or too late."""

    def __init__(self, executions: Path) -> None:
        self._lock = threading.Lock()
        self._file = executions.open("a", encoding="utf-8", buffering=1)
        self._pause = threading.Event()  # never set: waiting on it is the slow handler's work

    def handle(self, message: IncomingMessage) -> Any:
        body = message.body
        call_id = str(body["id"])
        with self._lock:
            self._file.write(f"{call_id} {time.time():.3f} {message.receive_count}\n")
        kind = body["kind"]
        if kind in ("slow", "timeout"):
            self._pause.wait(float(body["sleep"]))
        if kind == "fail":
            raise PlannedFailure(f"planned failure of {call_id}")
        return {"id": call_id, "pid": os.getpid()}

    def close(self) -> None:
        with self._lock:
            self._file.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("queue_url")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--sample-interval", type=float, default=1.0)
    parser.add_argument("--reply-cache-ttl", type=float, default=DEFAULT_REPLY_CACHE_TTL)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s server %(name)s: %(message)s")
    handler = SoakHandler(args.workdir / f"executions-server-{args.index}.txt")
    poller = MessagePoller(
        args.queue_url,
        handler,
        concurrency=CONCURRENCY,
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        # Short long polls: a SIGTERM is acted on within 2 s, and under load receives
        # return at once anyway.
        wait_time_seconds=2,
        reply_cache_ttl=args.reply_cache_ttl,
    )
    sampler = Sampler(args.sample_interval)
    sampler.start()
    poller.start()
    print("ready", flush=True)
    # run() installs the SIGTERM/SIGINT handlers, blocks, and stops gracefully; start() above
    # already happened, so run()'s own start() is a no-op.
    poller.run()
    handler.close()
    result = {
        "role": "server",
        "index": args.index,
        "pid": os.getpid(),
        "stats": asdict(poller.stats()),
        "rss": sampler.stop(),
    }
    out = args.workdir / f"server-{args.index}.json"
    out.write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
