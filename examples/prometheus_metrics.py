"""Export sqs-rpc's metrics in Prometheus's text format, with no metrics library.

    python examples/prometheus_metrics.py               # some calls, then the metrics once
    python examples/prometheus_metrics.py --serve 9464  # then serve /metrics until Ctrl-C

Hooks feed counters and histograms as each call and message ends; ``stats()`` adds the rest
(SQS requests by operation, latency quantiles, in-flight work) when the metrics are rendered.
Labels are queue names and outcomes, never correlation ids: one time series per id would
swamp Prometheus. Needs the server extra: pip install -e ".[server]".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from collections import Counter
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqs_rpc import (
    CallFinished,
    ClientStats,
    EmbeddedSqs,
    Hooks,
    IncomingMessage,
    Latency,
    MessageHandled,
    MessageHandler,
    MessagePoller,
    PollerStats,
    RemoteError,
    RpcClient,
    RpcTimeout,
)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Labels = tuple[tuple[str, str], ...]


class Histogram:
    """Cumulative buckets, sum and count of durations, as Prometheus histograms have."""

    def __init__(self) -> None:
        self.buckets = [0] * len(BUCKETS)
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1
        self.sum += seconds
        self.count += 1


class Metrics:
    """Counters and histograms fed by sqs-rpc's hooks (which run on sqs-rpc's threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.calls: Counter[Labels] = Counter()
        self.call_seconds: dict[Labels, Histogram] = {}
        self.messages: Counter[Labels] = Counter()
        self.message_seconds: dict[Labels, Histogram] = {}

    @property
    def hooks(self) -> Hooks:
        return Hooks(on_call_finished=self.call_finished, on_message_handled=self.message_handled)

    def call_finished(self, event: CallFinished) -> None:
        queue = (("queue", queue_name(event.queue_url)),)
        with self._lock:
            self.calls[(*queue, ("outcome", event.outcome))] += 1
            self.call_seconds.setdefault(queue, Histogram()).observe(event.duration)

    def message_handled(self, event: MessageHandled) -> None:
        queue = (("queue", queue_name(event.queue_url)),)
        with self._lock:
            self.messages[(*queue, ("outcome", event.outcome))] += 1
            self.message_seconds.setdefault(queue, Histogram()).observe(event.duration)
            self._changed.notify_all()

    def wait_for_messages(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` messages were handled (for a complete one-shot report)."""
        with self._changed:
            return self._changed.wait_for(lambda: sum(self.messages.values()) >= count, timeout)

    def render(self, client: ClientStats, pollers: dict[str, PollerStats]) -> str:
        """The text exposition format (version 0.0.4) of everything known now."""
        out: list[str] = []
        with self._lock:
            counter(out, "sqs_rpc_client_calls", "Calls ended, by outcome.", self.calls.items())
            histogram(
                out,
                "sqs_rpc_client_call_duration_seconds",
                "Call durations.",
                self.call_seconds.items(),
            )
            counter(
                out,
                "sqs_rpc_server_messages",
                "Messages handled, by outcome.",
                self.messages.items(),
            )
            histogram(
                out,
                "sqs_rpc_server_message_duration_seconds",
                "Seconds from receiving a message to finishing with it.",
                self.message_seconds.items(),
            )
        requests = [((("operation", op),), n) for op, n in sorted(client.requests.items())]
        counter(out, "sqs_rpc_client_sqs_requests", "SQS requests by operation.", requests)
        gauge(
            out,
            "sqs_rpc_client_pending_calls",
            "Calls waiting for a reply.",
            [((), client.pending)],
        )
        summary(
            out, "sqs_rpc_client_latency_seconds", "Recent call latency.", [((), client.latency)]
        )
        server_requests = [
            ((("queue", queue), ("operation", op)), n)
            for queue, stats in pollers.items()
            for op, n in sorted(stats.requests.items())
        ]
        counter(out, "sqs_rpc_server_sqs_requests", "SQS requests by operation.", server_requests)
        gauge(
            out,
            "sqs_rpc_server_in_flight",
            "Messages being handled.",
            [((("queue", q),), s.in_flight) for q, s in pollers.items()],
        )
        summary(
            out,
            "sqs_rpc_server_latency_seconds",
            "Recent handling latency.",
            [((("queue", q),), s.latency) for q, s in pollers.items()],
        )
        return "\n".join(out) + "\n"


def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def labels(pairs: Iterable[tuple[str, str]]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")

    text = ",".join(f'{name}="{escape(value)}"' for name, value in pairs)
    return "{" + text + "}" if text else ""


def number(value: float | None) -> str:
    return "NaN" if value is None else repr(float(value))


def header(out: list[str], name: str, help_text: str, kind: str) -> None:
    out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def counter(out: list[str], name: str, help_text: str, rows: Iterable[tuple[Labels, int]]) -> None:
    header(out, name + "_total", help_text, "counter")
    out += [f"{name}_total{labels(key)} {value}" for key, value in sorted(rows)]


def gauge(out: list[str], name: str, help_text: str, rows: Iterable[tuple[Labels, int]]) -> None:
    header(out, name, help_text, "gauge")
    out += [f"{name}{labels(key)} {value}" for key, value in rows]


def histogram(
    out: list[str], name: str, help_text: str, rows: Iterable[tuple[Labels, Histogram]]
) -> None:
    header(out, name, help_text, "histogram")
    for key, hist in sorted(rows, key=lambda row: row[0]):
        for bound, count in zip(BUCKETS, hist.buckets, strict=True):
            out.append(f"{name}_bucket{labels((*key, ('le', repr(bound))))} {count}")
        out.append(f"{name}_bucket{labels((*key, ('le', '+Inf')))} {hist.count}")
        out.append(f"{name}_sum{labels(key)} {number(hist.sum)}")
        out.append(f"{name}_count{labels(key)} {hist.count}")


def summary(
    out: list[str], name: str, help_text: str, rows: Iterable[tuple[Labels, Latency]]
) -> None:
    header(out, name, help_text, "summary")
    for key, latency in rows:
        for q, value in (("0.5", latency.p50), ("0.9", latency.p90), ("0.99", latency.p99)):
            out.append(f"{name}{labels((*key, ('quantile', q)))} {number(value)}")
        out.append(f"{name}_sum{labels(key)} {number(latency.sum)}")
        out.append(f"{name}_count{labels(key)} {latency.count}")


class Orders(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        if message.body["qty"] < 0:
            raise ValueError("negative quantity")
        return {"order": message.body["id"], "status": "accepted"}


def serve_metrics(port: int, render: Any) -> None:
    """Serve ``render()`` at http://127.0.0.1:PORT/metrics until Ctrl-C."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape is noise

    with ThreadingHTTPServer(("127.0.0.1", port), Handler) as server:
        print(f"serving http://127.0.0.1:{server.server_port}/metrics (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, metavar="PORT", help="serve /metrics on this port")
    args = parser.parse_args()
    metrics = Metrics()
    with EmbeddedSqs() as sqs:
        dead_letters = sqs.create_queue("orders-dlq")
        dlq_arn = sqs.client().get_queue_attributes(
            QueueUrl=dead_letters, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
        orders = sqs.create_queue("orders", RedrivePolicy=redrive)
        unserved = sqs.create_queue("nobody-home")
        poller = MessagePoller(
            orders, Orders(), sqs_client=sqs.client(), wait_time_seconds=1, hooks=metrics.hooks
        )
        with poller, RpcClient(sqs_client=sqs.client(), hooks=metrics.hooks) as client:
            futures = [client.call_async(orders, {"id": i, "qty": 1}) for i in range(20)]
            replies = [future.result(timeout=30) for future in futures]
            for i in range(2):
                with contextlib.suppress(RemoteError):
                    client.call(orders, {"id": 100 + i, "qty": -1}, timeout=30)
            with contextlib.suppress(RpcTimeout):
                client.call(unserved, {"id": 200, "qty": 1}, timeout=0.5)

            def render() -> str:
                return metrics.render(client.stats(), {"orders": poller.stats()})

            print(f"{len(replies)} orders accepted", file=sys.stderr, flush=True)
            if args.serve is None:
                # A server finishes a message just after sending its reply: wait for all 22.
                metrics.wait_for_messages(22, timeout=30)
                print(render(), end="")
            else:
                serve_metrics(args.serve, render)


if __name__ == "__main__":
    main()
