"""A soak client process: threads making calls, some with ``call()``, some with ``call_async()``.

    python -m tools.soak.client QUEUE_URL WORKDIR --index N --calls C ...

Call ``k`` of client ``N`` (of ``M``) is the run's call number ``N + M * k``: its id is
``RUN-N-k`` and its kind comes from :mod:`tools.soak.mix`. Every outcome is checked
against the request (the reply or the remote error must name the call's id) and appended to
``WORKDIR/outcomes-client-N.txt`` as ``id kind outcome end-time`` (epoch seconds). At the end
it writes ``WORKDIR/client-N.json``: counts by kind and outcome, calls started and finished,
examples of wrong or lost calls, and RSS samples.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from sqs_rpc import RemoteError, RpcClient, RpcTimeout, SqsRpcError

from .memory import Sampler
from .mix import Kind, kind_of, payload

# A future must settle by its deadline (the library's timer fails it); this much later, the
# call counts as lost.
LOST_AFTER = 30.0
ASYNC_WINDOW = 4  # calls in flight per call_async thread
EXAMPLES = 20
PROGRESS_EVERY = 60.0  # seconds between progress lines on stderr


class Caller:
    """The client process's calls: numbering, pacing, checking and recording."""

    def __init__(self, args: argparse.Namespace, client: RpcClient) -> None:
        self.args = args
        self.client = client
        self._lock = threading.Lock()
        self._next = 0
        self.started = 0
        self.finished = 0
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.made: Counter[str] = Counter()
        self.examples: list[str] = []
        self.stopped_by_limit = False
        self._pace = threading.Event()  # never set: waiting on it is the pacing delay
        self._file = (args.workdir / f"outcomes-client-{args.index}.txt").open(
            "a", encoding="utf-8", buffering=1
        )
        self.t0 = time.monotonic()
        self.last_start = self.t0
        self._next_progress = 0.0

    def next_call(self) -> tuple[str, Kind, Any, float] | None:
        """The next call's (id, kind, payload, timeout), or None when this client is done."""
        with self._lock:
            if self._next >= self.args.calls:
                return None
            if time.monotonic() - self.t0 > self.args.duration_limit:
                self.stopped_by_limit = True
                return None
            k = self._next
            self._next += 1
            self.started += 1
            self.last_start = time.monotonic()
        args = self.args
        if args.rate > 0:
            # Pacing from the call's own number: no shared bucket, no drift.
            due = self.t0 + k / args.rate
            delay = due - time.monotonic()
            if delay > 0:
                self._pace.wait(delay)
        number = args.index + args.clients * k
        kind = kind_of(args.seed, number)
        call_id = f"{args.run}-{args.index}-{k}"
        timeout = args.short_timeout if kind == "timeout" else args.timeout
        body = payload(call_id, kind, args.seed, number, args.short_timeout)
        with self._lock:
            self.made[kind] += 1
        return call_id, kind, body, timeout

    def record(self, call_id: str, kind: Kind, outcome: str, detail: str = "") -> None:
        with self._lock:
            self.finished += 1
            self.outcomes[(kind, outcome)] += 1
            odd = outcome in ("wrong", "lost") or outcome.startswith("error:")
            if odd and len(self.examples) < EXAMPLES:
                self.examples.append(f"{call_id} {kind} {outcome} {detail}"[:300])
            self._file.write(f"{call_id} {kind} {outcome} {time.time():.3f}\n")

    def outcome_of(self, call_id: str, result: Any, error: BaseException | None) -> tuple[str, str]:
        if error is None:
            if isinstance(result, dict) and result.get("id") == call_id:
                return "ok", ""
            return "wrong", f"reply {result!r}"
        if isinstance(error, RemoteError):
            if call_id in error.remote_message:
                return "remote-error", ""
            return "wrong", f"remote error {error.remote_message!r}"
        if isinstance(error, RpcTimeout):
            return "timeout", ""
        return f"error:{type(error).__name__}", str(error)

    def sync_thread(self) -> None:
        while (call := self.next_call()) is not None:
            call_id, kind, body, timeout = call
            try:
                result, error = self.client.call(self.args.queue_url, body, timeout=timeout), None
            except SqsRpcError as exc:
                result, error = None, exc
            self.record(call_id, kind, *self.outcome_of(call_id, result, error))

    def async_thread(self) -> None:
        window: deque[tuple[str, Kind, float, Future[Any]]] = deque()
        while True:
            call = self.next_call() if len(window) < ASYNC_WINDOW else None
            if call is not None:
                call_id, kind, body, timeout = call
                try:
                    future = self.client.call_async(self.args.queue_url, body, timeout=timeout)
                except SqsRpcError as exc:  # the send failed: an outcome at once
                    self.record(call_id, kind, *self.outcome_of(call_id, None, exc))
                    continue
                window.append((call_id, kind, timeout, future))
                continue
            if not window:
                return
            call_id, kind, timeout, future = window.popleft()
            try:
                result, error = future.result(timeout + LOST_AFTER), None
            except SqsRpcError as exc:  # first: RpcTimeout is a TimeoutError too
                result, error = None, exc
            except FutureTimeout:
                self.record(call_id, kind, "lost", f"unsettled {timeout + LOST_AFTER:g}s")
                continue
            self.record(call_id, kind, *self.outcome_of(call_id, result, error))

    def progress(self) -> None:
        with self._lock:
            done, started = self.finished, self.started
        elapsed = time.monotonic() - self.t0
        if elapsed >= self._next_progress:
            self._next_progress += PROGRESS_EVERY
            print(
                f"soak client {self.args.index}: {done}/{self.args.calls} calls done "
                f"({started} started) after {elapsed:.0f}s",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        with self._lock:
            self._file.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("queue_url")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0.0, help="calls/s of this client; 0: max")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--short-timeout", type=float, default=2.0)
    parser.add_argument("--duration-limit", type=float, default=float("inf"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", required=True)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--sample-interval", type=float, default=1.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s client %(name)s: %(message)s")
    client = RpcClient(
        endpoint_url=args.endpoint_url, region_name=args.region, default_timeout=args.timeout
    )
    caller = Caller(args, client)
    sampler = Sampler(args.sample_interval, tick=caller.progress)
    sampler.start()
    started_at = time.time()
    # Half the threads wait on call(), half keep a window of call_async() futures in flight.
    threads = [
        threading.Thread(
            target=caller.sync_thread if i % 2 == 0 else caller.async_thread,
            name=f"soak-caller-{i}",
        )
        for i in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    # Every call ends by its timeout plus LOST_AFTER; a thread still running that long after
    # the last call started holds a call that never ended: lost.
    for thread in threads:
        while thread.is_alive():
            thread.join(1.0)
            with caller._lock:
                quiet = time.monotonic() - caller.last_start
            if quiet > args.timeout + 2 * LOST_AFTER:
                break
    stuck = sum(thread.is_alive() for thread in threads)
    ended_at = time.time()
    with caller._lock:
        started, finished = caller.started, caller.finished
        outcomes = {f"{kind} {outcome}": n for (kind, outcome), n in caller.outcomes.items()}
        made = dict(caller.made)
    caller.close()
    if not stuck:
        client.close()
    result = {
        "role": "client",
        "index": args.index,
        "pid": os.getpid(),
        "started": started,
        "finished": finished,
        "stuck_threads": stuck,
        "made": made,
        "outcomes": outcomes,
        "examples": caller.examples,
        "stopped_by_limit": caller.stopped_by_limit,
        "calls_started_at": started_at,
        "calls_ended_at": ended_at,
        "rss": sampler.stop(),
    }
    out = args.workdir / f"client-{args.index}.json"
    out.write_text(json.dumps(result), encoding="utf-8")
    if stuck:
        os._exit(1)  # a stuck thread would keep the process alive


if __name__ == "__main__":
    main()
