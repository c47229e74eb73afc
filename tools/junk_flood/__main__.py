"""How much junk a client and a server withstand: junk at a fixed rate while real calls run.

    python -m tools.junk_flood client --rate 100 --seconds 30 [--follow] [--senders 4]
    python -m tools.junk_flood server --rate 100 --seconds 30
    python -m tests.support.fauxqs run -- python -m tools.junk_flood client --rate 100

``client``: junk replies (valid-looking, random ``CorrelationId``) sent to the client's reply
queue, as anyone allowed to send to ``sqs-rpc-reply-*`` can. With ``--follow`` the attacker
sends to whichever queue the client uses now (it lists queues), so the client's move to a new
queue helps only until the attacker finds it. ``server``: undecodable requests sent to the
request queue (no dead-letter queue, visibility timeout 5 s), as anyone allowed to send there
can. Meanwhile one caller makes sequential calls (10 s timeout each). Prints one JSON line:
the junk rate reached, the calls answered, their latency, and the reply queues used.

Runs against an embedded moto server, or the endpoint in ``SQS_RPC_TEST_ENDPOINT`` (which
``tests.support.fauxqs run`` sets). moto's own cost grows with a queue's length (every receive
and send scans the queue), so on moto the junk the emulator can take is the limit; see
docs/reliability.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3

from sqs_rpc import EmbeddedSqs, IncomingMessage, MessageHandler, MessagePoller, RpcClient
from sqs_rpc._errors import SqsRpcError

CALL_TIMEOUT = 10.0


class Echo(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        return message.body


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def junk_reply() -> dict[str, Any]:
    return {
        "MessageBody": '{"junk": true}',
        "MessageAttributes": {
            "CorrelationId": _string(uuid.uuid4().hex),
            "SqsRpcVersion": _string("1"),
            "Status": _string("ok"),
            "ContentType": _string("application/json"),
        },
    }


def poison_request() -> dict[str, Any]:
    return {"MessageBody": "{not json", "MessageAttributes": {"SqsRpcVersion": _string("1")}}


@contextlib.contextmanager
def sqs_endpoint() -> Iterator[tuple[str, str]]:
    external = os.environ.get("SQS_RPC_TEST_ENDPOINT")
    if external:
        yield external, os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        return
    with EmbeddedSqs() as server:
        yield server.endpoint_url, server.region_name


class Flood:
    """Sends ``make()`` messages to ``target()`` at ``rate`` per second, in batches of 10."""

    def __init__(self, sqs: Any, target: Callable[[], str | None], make: Callable[[], Any]):
        self._sqs = sqs
        self._target = target
        self._make = make
        self._stop = threading.Event()
        self.sent = 0
        self.refused = 0  # batches sent to a queue that was gone
        self.started = 0.0
        self.ended = 0.0

    def run(self, rate: float) -> None:
        self.started = time.monotonic()
        interval = 10 / rate  # one batch of ten
        due = self.started
        while not self._stop.is_set():
            url = self._target()
            if url is not None:
                entries = [{"Id": str(i), **self._make()} for i in range(10)]
                try:
                    self._sqs.send_message_batch(QueueUrl=url, Entries=entries)
                    self.sent += 10
                except self._sqs.exceptions.QueueDoesNotExist:
                    self.refused += 1
            due += interval
            self._stop.wait(max(due - time.monotonic(), 0.0))
        self.ended = time.monotonic()

    def stop(self) -> None:
        self._stop.set()

    def rate(self) -> float:
        return self.sent / max(self.ended - self.started, 1e-9)


def measure(
    side: str, rate: float, seconds: float, *, follow: bool, senders: int
) -> dict[str, Any]:
    with sqs_endpoint() as (endpoint_url, region):
        session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            region_name=region,
        )
        sqs: Any = session.client("sqs", endpoint_url=endpoint_url)
        name = f"junk-flood-{uuid.uuid4().hex[:8]}"
        queue_url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "5"})[
            "QueueUrl"
        ]
        poller = MessagePoller(queue_url, Echo(), sqs_client=sqs, wait_time_seconds=1)
        client = RpcClient(sqs_client=sqs, default_timeout=CALL_TIMEOUT)
        try:
            poller.start()
            client.call(queue_url, "warm-up")
            first_queue = client.reply_queue_url
            queues = {first_queue}
            if side == "client":
                target = (lambda: client.reply_queue_url) if follow else lambda: first_queue
                floods = [Flood(sqs, target, junk_reply) for _ in range(senders)]
            else:
                floods = [Flood(sqs, lambda: queue_url, poison_request) for _ in range(senders)]
            flooders = [
                threading.Thread(target=flood.run, args=(rate / senders,), daemon=True)
                for flood in floods
            ]
            for flooder in flooders:
                flooder.start()
            latencies: list[float] = []
            failures: dict[str, int] = {}
            end = time.monotonic() + seconds
            calls = 0
            while time.monotonic() < end:
                calls += 1
                asked = time.monotonic()
                try:
                    client.call(queue_url, calls, timeout=CALL_TIMEOUT)
                    latencies.append(time.monotonic() - asked)
                except SqsRpcError as exc:
                    failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                queues.add(client.reply_queue_url)
            for flood in floods:
                flood.stop()
            for flooder in flooders:
                flooder.join(30)
            stats = poller.stats()
        finally:
            client.close()
            poller.stop()
            sqs.delete_queue(QueueUrl=queue_url)
    latencies.sort()
    return {
        "side": side,
        "endpoint": os.environ.get("SQS_RPC_TEST_SERVER", "moto"),
        "follow": follow,
        "target_rate": rate,
        "junk_rate": round(sum(flood.rate() for flood in floods), 1),
        "junk_sent": sum(flood.sent for flood in floods),
        "poison_received": stats.undecodable,
        "calls": calls,
        "answered": len(latencies),
        "failures": failures,
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "max_s": round(latencies[-1], 3) if latencies else None,
        "reply_queues": len(queues - {None}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("side", choices=["client", "server"])
    parser.add_argument("--rate", type=float, default=100.0, help="junk messages per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--follow", action="store_true", help="client: flood each new queue too")
    parser.add_argument("--senders", type=int, default=1, help="threads sending junk")
    args = parser.parse_args(argv)
    result = measure(
        args.side, args.rate, args.seconds, follow=args.follow, senders=max(args.senders, 1)
    )
    print(json.dumps(result), flush=True)
    return 0 if result["answered"] == result["calls"] else 1


if __name__ == "__main__":
    sys.exit(main())
