"""Export sqs-rpc's metrics to Prometheus with sqs_rpc.prometheus (prometheus_client).

    python examples/prometheus_metrics.py               # some calls, then the metrics once
    python examples/prometheus_metrics.py --serve 9464  # then serve /metrics until Ctrl-C

``PrometheusMetrics`` gives the hooks that feed counters and histograms as each call and
message ends; the clients and pollers it watches add, at each scrape, SQS requests by operation
(API calls and billed requests), pending calls and in-flight messages from ``stats()``. Labels
are queue names, outcomes and operations, never correlation ids. Needs the server and
prometheus extras: pip install -e ".[server,prometheus]".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, start_http_server

from sqs_rpc import (
    EmbeddedSqs,
    Hooks,
    IncomingMessage,
    MessageHandled,
    MessageHandler,
    MessagePoller,
    RemoteError,
    RpcClient,
    RpcTimeout,
)
from sqs_rpc.prometheus import PrometheusMetrics


class Handled:
    """Counts handled messages, so that the one-shot report waits for all of them."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def __call__(self, event: MessageHandled) -> None:
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._count >= count, timeout)


class Orders(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        if message.body["qty"] < 0:
            raise ValueError("negative quantity")
        return {"order": message.body["id"], "status": "accepted"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, metavar="PORT", help="serve /metrics on this port")
    args = parser.parse_args()
    registry = CollectorRegistry()  # the global REGISTRY would do; this one shows only sqs-rpc
    metrics = PrometheusMetrics(registry)
    handled = Handled()
    feed = metrics.hooks.on_message_handled
    assert feed is not None

    def message_handled(event: MessageHandled) -> None:
        feed(event)  # the metrics first: once handled() counts all, they are complete
        handled(event)

    server_hooks = Hooks(on_message_handled=message_handled)
    with EmbeddedSqs() as sqs:
        dead_letters = sqs.create_queue("orders-dlq")
        dlq_arn = sqs.client().get_queue_attributes(
            QueueUrl=dead_letters, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
        orders = sqs.create_queue("orders", RedrivePolicy=redrive)
        unserved = sqs.create_queue("nobody-home")
        # Each its own boto3 client, so that their request counts stay apart.
        poller = metrics.watch(
            MessagePoller(
                orders, Orders(), sqs_client=sqs.client(), wait_time_seconds=1, hooks=server_hooks
            )
        )
        client = metrics.watch(RpcClient(sqs_client=sqs.client(), hooks=metrics.hooks))
        with poller, client:
            futures = [client.call_async(orders, {"id": i, "qty": 1}) for i in range(20)]
            replies = [future.result(timeout=30) for future in futures]
            for i in range(2):
                with contextlib.suppress(RemoteError):
                    client.call(orders, {"id": 100 + i, "qty": -1}, timeout=30)
            with contextlib.suppress(RpcTimeout):
                client.call(unserved, {"id": 200, "qty": 1}, timeout=0.5)
            print(f"{len(replies)} orders accepted", file=sys.stderr, flush=True)
            if args.serve is None:
                # A server finishes a message just after sending its reply: wait for all 22.
                handled.wait_for(22, timeout=30)
                print(generate_latest(registry).decode(), end="")
            else:
                server, thread = start_http_server(args.serve, addr="127.0.0.1", registry=registry)
                port = server.server_port
                print(f"serving http://127.0.0.1:{port}/metrics (Ctrl-C to stop)", flush=True)
                with contextlib.suppress(KeyboardInterrupt):
                    thread.join()
                server.shutdown()


if __name__ == "__main__":
    main()
