"""The soak: many calls through several server and client processes, and the invariants checked.

    python -m tools.soak --calls 50000 --servers 2 --clients 4 [--rate 30] [--json out.json]

Processes: an SQS-compatible server (moto's, in its own process; or the endpoint named by
``--endpoint-url`` / ``SQS_RPC_TEST_ENDPOINT``), ``--servers`` server processes
(:mod:`tools.soak.server`, a ``MessagePoller`` with 8 workers each) and ``--clients``
client processes (:mod:`tools.soak.client`, ``--threads`` threads each, half on
``call()``, half on windows of ``call_async()``). Calls are a mix of fast, slow, failing and
timing-out handlers (:mod:`tools.soak.mix`). At the end it prints the figures and the
verdict (:mod:`tools.soak.report`).

Exit status: 0 every invariant held; 1 an invariant failed; 2 bad arguments; 3 the duration
limit stopped the run before every call was made (the invariants held for the calls made).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

import boto3

from sqs_rpc._options import DEFAULT_REPLY_CACHE_TTL
from tests.support.faultproxy import Fault, FaultProxy

from .memory import Sampler
from .report import analyse, render

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120.0  # a process importing boto3 on a loaded machine can take a while
DRAIN_TIMEOUT = 120.0
STOP_TIMEOUT = 90.0
MAX_RECEIVE_COUNT = "5"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--calls", type=int, default=50000, help="total calls (default 50000)")
    parser.add_argument("--servers", type=int, default=2, help="server processes (default 2)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="threads per client (default 4)")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="total calls per second; 0 (default): no limit"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="call timeout (default 30)")
    parser.add_argument(
        "--short-timeout",
        type=float,
        default=2.0,
        help="timeout of the timing-out calls, whose handler sleeps 1.5 s longer (default 2)",
    )
    parser.add_argument(
        "--duration-limit",
        type=float,
        default=None,
        help="seconds after which clients stop starting calls (default: none)",
    )
    parser.add_argument(
        "--endpoint-url",
        default=os.environ.get("SQS_RPC_TEST_ENDPOINT"),
        help="an SQS endpoint to use (default: SQS_RPC_TEST_ENDPOINT, else moto's server)",
    )
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=_fault,
        metavar="KIND:RATE[:OPERATION,...]",
        help="put tests/support/faultproxy.py between every process and SQS and inject this "
        "fault (repeatable), for example reset-before:0.5:DeleteMessageBatch",
    )
    parser.add_argument(
        "--reply-cache-ttl",
        type=float,
        default=DEFAULT_REPLY_CACHE_TTL,
        help="the servers' reply_cache_ttl, and the least warm-up for the memory check "
        f"(default {DEFAULT_REPLY_CACHE_TTL:g}, the library's)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sample-interval", type=float, default=1.0, help="RSS sampling, s")
    parser.add_argument("--workdir", type=Path, help="keep the per-process records here")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    if args.calls < args.clients or args.servers < 1 or args.clients < 1 or args.threads < 1:
        parser.error("need --servers >= 1, --clients >= 1, --threads >= 1, --calls >= --clients")
    if args.short_timeout >= args.timeout:
        parser.error("--short-timeout must be shorter than --timeout")
    return args


def _fault(text: str) -> Fault:
    kind, _, rest = text.partition(":")
    rate, _, operations = rest.partition(":")
    try:
        return Fault(
            kind,  # type: ignore[arg-type]  # checked by Fault
            float(rate or 1.0),
            operations.split(",") if operations else None,
            delay=1.0 if kind == "latency" else 0.0,
        )
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def _first_line(process: subprocess.Popen[str], what: str) -> str:
    """The process's first stdout line, or an error if it does not come within START_TIMEOUT."""
    assert process.stdout is not None
    stdout: IO[str] = process.stdout
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT)
    if not line or not line[0].strip():
        raise RuntimeError(f"{what} did not start within {START_TIMEOUT:g}s")
    return line[0].strip()


class Soak:
    """One run: owns every process it starts, and stops them all on the way out."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:8]
        self.env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.sqs_process: subprocess.Popen[str] | None = None
        self.proxy: FaultProxy | None = None
        self.sqs_sampler: Sampler | None = None
        self.processes: list[tuple[str, subprocess.Popen[str]]] = []

    def _spawn(self, module: str, *argv: str, stdout: int | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", module, *argv],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE if module == "tests.support.sqs_process" else subprocess.DEVNULL,
            stdout=stdout,
            text=True,
        )

    def start_sqs(self) -> str:
        if self.args.endpoint_url:
            return str(self.args.endpoint_url)
        self.sqs_process = self._spawn("tests.support.sqs_process", stdout=subprocess.PIPE)
        url = _first_line(self.sqs_process, "the SQS server")
        self.sqs_sampler = Sampler(self.args.sample_interval, pid=self.sqs_process.pid)
        self.sqs_sampler.start()
        return url

    def run(self) -> dict[str, Any]:
        args = self.args
        endpoint = self.start_sqs()
        if args.fault:
            # Everything goes through the proxy, queue creation included: SQS builds queue
            # URLs from the Host it was asked on, and the servers' reply policy compares them.
            self.proxy = FaultProxy(endpoint, seed=args.seed)
            self.proxy.start()
            endpoint = self.proxy.endpoint_url
        sqs = boto3.session.Session(
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=args.region,
        ).client("sqs", endpoint_url=endpoint)
        dlq = sqs.create_queue(QueueName=f"soak-{self.run_id}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
        queue = sqs.create_queue(
            QueueName=f"soak-{self.run_id}", Attributes={"RedrivePolicy": redrive}
        )["QueueUrl"]
        if self.proxy is not None:
            self.proxy.set_faults(*args.fault)
        common = ["--endpoint-url", endpoint, "--region", args.region]
        common += ["--sample-interval", str(args.sample_interval)]
        try:
            for i in range(args.servers):
                process = self._spawn(
                    "tools.soak.server",
                    queue,
                    str(self.workdir),
                    "--index",
                    str(i),
                    "--reply-cache-ttl",
                    str(args.reply_cache_ttl),
                    *common,
                    stdout=subprocess.PIPE,
                )
                self.processes.append((f"server {i}", process))
                _first_line(process, f"server {i}")
            clients = self._run_clients(queue, common)
            # Wait for the servers to finish what is queued (late timing-out calls, expired
            # requests) before stopping them, so that "nothing left" means something.
            self._wait_drained(sqs, queue)
            servers = self._stop_servers()
            if self.proxy is not None:
                self.proxy.set_faults()  # the final counts are not part of the experiment
            left = _in_queue(sqs, queue) + _in_queue(sqs, dlq)
        finally:
            self._kill_all()
            for url in (queue, dlq):
                with contextlib.suppress(Exception):
                    sqs.delete_queue(QueueUrl=url)
            if self.proxy is not None:
                self.proxy.stop()
            self._stop_sqs()
        exit_codes = {name: process.returncode for name, process in self.processes}
        report = analyse(
            self.workdir,
            clients,
            servers,
            left_in_queues=left,
            exit_codes=exit_codes,
            sqs_rss=self.sqs_sampler.samples if self.sqs_sampler else (),
            # The servers' reply caches fill for reply_cache_ttl by design: that is warm-up.
            warm_up=args.reply_cache_ttl,
        )
        report["command"] = "python -m tools.soak " + " ".join(sys.argv[1:])
        report["machine"] = (
            f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
            f"{os.cpu_count()} CPUs, load average {_load()}"
        )
        report["endpoint"] = "moto (EmbeddedSqs)" if self.sqs_process else endpoint
        if self.proxy is not None:
            report["faults_injected"] = {
                f"{operation} {kind}": n for (operation, kind), n in self.proxy.injected().items()
            }
        return report

    def _run_clients(self, queue: str, common: list[str]) -> list[dict[str, Any]]:
        args = self.args
        per_client = [
            args.calls // args.clients + (1 if i < args.calls % args.clients else 0)
            for i in range(args.clients)
        ]
        limit = (
            [] if args.duration_limit is None else ["--duration-limit", str(args.duration_limit)]
        )
        started: list[tuple[int, subprocess.Popen[str]]] = []
        for i, calls in enumerate(per_client):
            process = self._spawn(
                "tools.soak.client",
                queue,
                str(self.workdir),
                "--index",
                str(i),
                "--clients",
                str(args.clients),
                "--calls",
                str(calls),
                "--threads",
                str(args.threads),
                "--rate",
                str(args.rate / args.clients),
                "--timeout",
                str(args.timeout),
                "--short-timeout",
                str(args.short_timeout),
                "--seed",
                str(args.seed),
                "--run",
                self.run_id,
                *limit,
                *common,
            )
            self.processes.append((f"client {i}", process))
            started.append((i, process))
        results = []
        for i, process in started:
            process.wait()
            results.append(self._result(f"client {i}", process))
        return results

    def _result(self, name: str, process: subprocess.Popen[str]) -> dict[str, Any]:
        """What a finished soak process wrote to ``WORKDIR/NAME.json`` (``client-0.json``)."""
        path = self.workdir / f"{name.replace(' ', '-')}.json"
        if not path.exists():
            raise RuntimeError(f"{name} exited with {process.returncode} and no result")
        result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return result

    def _wait_drained(self, sqs: Any, queue: str) -> int:
        deadline = time.monotonic() + DRAIN_TIMEOUT
        pause = threading.Event()
        while (left := _in_queue(sqs, queue)) and time.monotonic() < deadline:
            pause.wait(1)
        return left

    def _stop_servers(self) -> list[dict[str, Any]]:
        servers = [(n, p) for n, p in self.processes if n.startswith("server")]
        for _, process in servers:
            process.send_signal(signal.SIGTERM)
        results = []
        for name, process in servers:
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            results.append(self._result(name, process))
        return results

    def _kill_all(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    def _stop_sqs(self) -> None:
        if self.sqs_sampler is not None:
            self.sqs_sampler.stop()
        process = self.sqs_process
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _in_queue(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        workdir.mkdir(parents=True, exist_ok=True)
        print(
            f"soak: {args.calls} calls, {args.servers} servers, {args.clients} clients x "
            f"{args.threads} threads, rate {args.rate or 'unlimited'}; records in {workdir}",
            flush=True,
        )
        report = Soak(args, workdir).run()
    print(render(report), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    if report["failures"]:
        return EXIT_FAILED
    if report["stopped_by_duration_limit"]:
        return EXIT_INCOMPLETE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
