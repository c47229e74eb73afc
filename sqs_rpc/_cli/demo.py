"""``sqs-rpc demo``: real round trips on the embedded server (or any SQS endpoint), measured.

It starts an SQS-compatible server on 127.0.0.1 (unless given an endpoint). It creates a request
queue with a dead-letter queue, and runs a MessagePoller and an RpcClient. It makes sequential
and concurrent calls and checks every reply against its request. It prints each phase as it
starts and ends, then a summary, and deletes everything it created.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import boto3

from sqs_rpc._aws import RequestCounter, make_sqs_client
from sqs_rpc._client.client import RpcClient
from sqs_rpc._embedded import (
    DEFAULT_MAX_RECEIVE_COUNT,
    EmbeddedSqs,
    create_queue_with_dead_letters,
)
from sqs_rpc._errors import RemoteError, SqsRpcError, aws_errors
from sqs_rpc._server.poller import IncomingMessage, MessageHandler, MessagePoller

from .common import add_command, add_verbose, endpoint_url, whole
from .errors import ExitCode, UsageError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["DemoReport", "register", "run_demo"]


def register(commands: Any) -> None:
    """Add ``demo`` to the subcommands."""
    demo = add_command(
        commands,
        "demo",
        help="make real round trips on an embedded SQS server and print what happened",
        description="Start an SQS-compatible server on 127.0.0.1 (unless --endpoint-url or "
        "--region is given), run a server and a client, make calls, print latency and SQS "
        "requests per call, and clean up.",
        exit_codes=(
            ExitCode.OK,
            ExitCode.FAILURE,
            ExitCode.USAGE,
            ExitCode.SQS_ERROR,
            ExitCode.INTERRUPTED,
        ),
    )
    demo.add_argument(
        "--endpoint-url", type=endpoint_url, help="use this SQS endpoint instead of an embedded one"
    )
    demo.add_argument("--region", help="AWS region (with no --endpoint-url: real AWS SQS)")
    demo.add_argument("--calls", type=whole(1), default=300, help="number of calls (default 300)")
    demo.add_argument(
        "--concurrency",
        type=whole(1),
        default=16,
        help="concurrent callers in the second phase (default 16)",
    )
    add_verbose(demo)
    demo.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    if args.endpoint_url and not args.region:
        with aws_errors("LoadProfile"):
            region = boto3.session.Session().region_name
        if region is None:
            raise UsageError("--endpoint-url needs --region REGION (or AWS_DEFAULT_REGION)")
    report = run_demo(
        sys.stdout,
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        calls=args.calls,
        concurrency=args.concurrency,
    )
    return ExitCode.OK if report.ok else ExitCode.FAILURE


class DemoHandler(MessageHandler):
    """Echoes the payload with its square; raises for ``{"fail": true}`` to show errors."""

    def handle(self, message: IncomingMessage) -> Any:
        body = message.body
        if isinstance(body, dict) and body.get("fail"):
            raise ValueError("you asked me to fail")
        return {"echo": body, "square": body["n"] ** 2 if isinstance(body, dict) else None}


@dataclass
class DemoReport:
    calls: int = 0
    wrong_replies: int = 0
    errors: list[str] = field(default_factory=list)
    sequential_ms: list[float] = field(default_factory=list)
    concurrent_ms: list[float] = field(default_factory=list)
    concurrent_seconds: float = 0.0
    client_requests: dict[str, int] = field(default_factory=dict)
    server_requests: dict[str, int] = field(default_factory=dict)
    remote_error_seen: bool = False
    reply_queue_deleted: bool = False

    @property
    def ok(self) -> bool:
        return (
            not self.errors
            and self.wrong_replies == 0
            and self.remote_error_seen
            and self.reply_queue_deleted
        )


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


class _Progress:
    """Prints each phase as it starts and as it ends, flushed, so nothing waits for the end."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def line(self, label: str, text: str) -> None:
        print(f"{label + ':':<18}{text}", file=self._out, flush=True)

    @contextlib.contextmanager
    def phase(self, label: str, text: str) -> Iterator[list[str]]:
        """Print ``label: text ...``; the block appends what to print after ``done``."""
        print(f"{label + ':':<18}{text} ...", end="", file=self._out, flush=True)
        outcome: list[str] = []
        started = time.perf_counter()
        try:
            yield outcome
        except BaseException:
            print(" failed", file=self._out, flush=True)
            raise
        elapsed = time.perf_counter() - started
        detail = ", ".join([f"{elapsed:.1f} s", *outcome])
        print(f" done ({detail})", file=self._out, flush=True)


@contextlib.contextmanager
def _endpoint(
    endpoint_url: str | None, region_name: str | None, progress: _Progress
) -> Iterator[Callable[..., SQSClient]]:
    """Yield a client factory: the embedded server unless an endpoint is given."""
    if endpoint_url is None and region_name is None:
        with progress.phase("SQS", "starting an embedded SQS-compatible server") as outcome:
            embedded = EmbeddedSqs().__enter__()
            outcome.append(f"at {embedded.endpoint_url}")
        try:

            def make_embedded(connections: int = 10) -> SQSClient:
                return embedded.client(max_pool_connections=connections)

            yield make_embedded
        finally:
            embedded.stop()
        return

    def make(connections: int = 10) -> SQSClient:
        return make_sqs_client(
            sqs_client=None,
            session=None,
            endpoint_url=endpoint_url,
            region_name=region_name,
            max_pool_connections=connections,
        )

    progress.line("SQS", endpoint_url or f"AWS SQS in {region_name}")
    yield make


def run_demo(
    out: TextIO,
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    calls: int = 300,
    concurrency: int = 16,
) -> DemoReport:
    """Run the demo, printing to ``out``; return the report (``report.ok`` when all was right)."""
    report = DemoReport()
    progress = _Progress(out)
    print("sqs-rpc demo: a server and a client making real round trips", file=out, flush=True)
    with _endpoint(endpoint_url, region_name, progress) as make_client:
        admin: SQSClient = make_client()
        name = f"sqs-rpc-demo-{uuid.uuid4().hex[:12]}"
        created: list[str] = []
        try:
            with progress.phase("queues", f"creating {name} and {name}-dlq") as outcome:
                queue_url, dead_letters = create_queue_with_dead_letters(
                    admin, name, max_receive_count=DEFAULT_MAX_RECEIVE_COUNT
                )
                created += [url for url in (queue_url, dead_letters) if url]
                outcome.append(f"maxReceiveCount {DEFAULT_MAX_RECEIVE_COUNT}")
            server_sqs, client_sqs = make_client(), make_client(concurrency + 4)
            server_counter = RequestCounter.attach(server_sqs)
            client_counter = RequestCounter.attach(client_sqs)
            poller = MessagePoller(
                queue_url,
                DemoHandler(),
                concurrency=8,
                sqs_client=server_sqs,
                wait_time_seconds=2,
            )
            client = RpcClient(sqs_client=client_sqs)
            with progress.phase("start", "a MessagePoller (8 workers) and an RpcClient"):
                poller.start()
            try:
                _exercise(client, queue_url, calls, concurrency, report, progress=progress)
            finally:
                # Stop the server before the client: running handlers can still reply.
                with progress.phase("stop", "the MessagePoller, then the RpcClient"):
                    poller.stop()
                    reply_queue = client.reply_queue_url
                    client.close()
            report.client_requests = client_counter.snapshot()
            report.server_requests = server_counter.snapshot()
            report.reply_queue_deleted = reply_queue is not None and not any(
                url == reply_queue for url in admin.list_queues().get("QueueUrls", [])
            )
        finally:
            with progress.phase("cleanup", "deleting the two queues"):
                for url in created:
                    with aws_errors("DeleteQueue", url):
                        admin.delete_queue(QueueUrl=url)
    _print_report(report, out)
    return report


def _exercise(
    client: RpcClient,
    queue_url: str,
    calls: int,
    concurrency: int,
    report: DemoReport,
    *,
    progress: _Progress,
) -> None:
    def one(n: int) -> float:
        started = time.perf_counter()
        reply = client.call(queue_url, {"n": n}, timeout=30)
        elapsed = (time.perf_counter() - started) * 1000
        if reply != {"echo": {"n": n}, "square": n * n}:
            report.wrong_replies += 1
        return elapsed

    sequential = max(1, calls // 3)
    with progress.phase("sequential", f"{sequential} calls, one at a time") as outcome:
        for n in range(sequential):
            try:
                report.sequential_ms.append(one(n))
            except SqsRpcError as exc:
                report.errors.append(repr(exc))
        outcome.append(_latency(report.sequential_ms))
    with progress.phase(
        "concurrent", f"{calls - sequential} calls from {concurrency} threads"
    ) as outcome:
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            futures = [pool.submit(one, n) for n in range(sequential, calls)]
            for future in futures:
                try:
                    report.concurrent_ms.append(future.result())
                except SqsRpcError as exc:
                    report.errors.append(repr(exc))
        report.concurrent_seconds = time.perf_counter() - started
        rate = len(report.concurrent_ms) / report.concurrent_seconds
        outcome += [_latency(report.concurrent_ms), f"{rate:.0f} calls/s"]
    report.calls = calls
    with progress.phase("remote error", "a call whose handler raises ValueError") as outcome:
        try:
            client.call(queue_url, {"fail": True}, timeout=30)
        except RemoteError as exc:
            report.remote_error_seen = exc.error_type == "ValueError"
        outcome.append("raised as RemoteError" if report.remote_error_seen else "MISSING")
    with progress.phase("publish", "one one-way message, no reply"):
        client.publish(queue_url, {"n": -1})


def _latency(values: list[float]) -> str:
    return f"p50 {_percentile(values, 50):.1f} ms, p99 {_percentile(values, 99):.1f} ms"


def _print_report(report: DemoReport, out: TextIO) -> None:
    done = len(report.sequential_ms) + len(report.concurrent_ms)
    client_total = sum(report.client_requests.values())
    server_total = sum(report.server_requests.values())
    # The remote-error call and the publish are requests too: count them in the denominator.
    per_call = (client_total + server_total) / max(done + 2, 1)
    lines = [
        f"calls:            {done} ok of {report.calls}, {len(report.errors)} errors, "
        f"{report.wrong_replies} wrong replies",
        f"SQS requests:     {per_call:.2f} per call (client {client_total}, server "
        f"{server_total}, for {done + 2} messages)",
        f"  client:         {_by_operation(report.client_requests)}",
        f"  server:         {_by_operation(report.server_requests)}",
        f"reply queue:      {'deleted on close' if report.reply_queue_deleted else 'LEFT BEHIND'}",
    ]
    lines.extend(f"error: {e}" for e in report.errors[:5])
    lines.append("demo OK" if report.ok else "demo FAILED")
    print("\n".join(lines), file=out, flush=True)


def _by_operation(counts: dict[str, int]) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(counts.items())) or "none"
