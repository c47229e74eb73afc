"""Uses the public API as a user would; checked by mypy --strict (not collected by pytest).

A change that breaks users' type checking breaks this file first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from sqs_rpc import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    MAX_CORRELATION_ID_LENGTH,
    AsyncRpcClient,
    CallFinished,
    CallOutcome,
    CallStarted,
    ClientStats,
    DynamoDBIdempotencyStore,
    EmbeddedSqs,
    Hooks,
    IdempotencyState,
    IdempotencyStore,
    IncomingMessage,
    InMemoryIdempotencyStore,
    JsonCodec,
    Latency,
    MessageHandled,
    MessageHandler,
    MessageOutcome,
    MessagePoller,
    PollerHealth,
    PollerPool,
    PollerStats,
    PoolFailed,
    RemoteError,
    ReplyQueueLost,
    RequestMessage,
    Retry,
    RpcClient,
    RpcTimeout,
    S3Offload,
    S3PayloadError,
    SqsRpcError,
    Sweeper,
    SweepReport,
)
from sqs_rpc.aws_lambda import (
    DEFAULT_MIN_REMAINING_TIME,
    LambdaResponder,
    delete_succeeded,
    receive_event,
)


class Echo(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        remaining: float | None = message.remaining_time()
        return {"echo": message.body, "remaining": remaining}


class AsyncEcho(MessageHandler):
    async def handle(self, message: IncomingMessage) -> Any:
        await asyncio.sleep(0)
        if message.last_attempt:
            raise Retry("later", delay=5)
        return message.body


def use(queue_url: str) -> None:
    with EmbeddedSqs() as sqs:
        poller = MessagePoller(queue_url, Echo(), concurrency=4, sqs_client=sqs.client())
        poller.start()
        with RpcClient(sqs_client=sqs.client(), codec=JsonCodec(), default_timeout=5) as client:
            reply: Any = client.call(queue_url, {"x": 1}, timeout=1.5)
            future: Future[Any] = client.call_async(queue_url, [1, 2])
            message_id: str = client.publish(queue_url, "fire", attributes={"k": "v"})
            sent: Future[Any] = client.send(RequestMessage(queue_url, 1, group_id="g"))
            try:
                future.result()
            except RpcTimeout as exc:
                correlation: str | None = exc.correlation_id
                print(correlation)
            except RemoteError as exc:
                print(exc.error_type, exc.remote_message, exc.details)
            except SqsRpcError:
                pass
            print(reply, message_id, sent)
        stats: PollerStats = poller.stats()
        health: PollerHealth = poller.health(max_receive_age=60)
        print(stats.handled, health.healthy)
        MessagePoller(queue_url, AsyncEcho(), reply_to_allowed=["https://sqs.*/1/reply-*"])
        stopped: bool = poller.stop()
        print(stopped)


async def use_async(queue_url: str) -> None:
    async with AsyncRpcClient(endpoint_url="http://127.0.0.1:1", send_threads=4) as client:
        reply: Any = await client.call(queue_url, {"x": 1}, timeout=1.5)
        message_id: str = await client.publish(queue_url, "fire")
        pending: int = client.pending_calls
        print(reply, message_id, pending)


def sweep(region: str) -> int:
    report: SweepReport = Sweeper(
        region_name=region, reply_queue_prefix="sqs-rpc-reply-", dry_run=True
    ).sweep()
    for decision in report.deleted:
        idle: float | None = decision.idle_seconds
        print(decision.queue_url, decision.action, decision.reason, idle)
    summary: dict[str, Any] = report.to_dict()
    print(summary)
    with RpcClient(region_name=region, sweep_interval=3600, idle_retention=600) as client:
        try:
            client.call("https://sqs.example/q", 1)
        except ReplyQueueLost as exc:
            print("retry:", exc)
    return report.checked


def offload(queue_url: str) -> None:
    config = S3Offload(bucket="my-payloads", allowed_buckets=("their-payloads",), threshold=None)
    always = S3Offload(bucket="my-payloads", prefix="calls/", threshold="always")
    capped = S3Offload(
        bucket="my-payloads",
        max_payload_bytes=DEFAULT_MAX_PAYLOAD_BYTES // 4,
        extended_client_prefixes=("",),
    )
    assert capped.max_payload_bytes < DEFAULT_MAX_PAYLOAD_BYTES
    assert len("a" * MAX_CORRELATION_ID_LENGTH) == MAX_CORRELATION_ID_LENGTH
    readable: frozenset[str] = config.readable_buckets
    print(readable, always)
    poller = MessagePoller(queue_url, Echo(), offload=config)
    with RpcClient(region_name="eu-west-1", offload=config) as client:
        try:
            client.call(queue_url, {"rows": []})
        except S3PayloadError as exc:
            where: tuple[str | None, str | None] = (exc.bucket, exc.key)
            print(where)
    poller.stop()


def observe(queue_url: str, handler: MessageHandler) -> None:
    def finished(event: CallFinished) -> None:
        outcome: CallOutcome = event.outcome
        print(event.correlation_id, event.queue_url, outcome, event.duration, event.error)

    def handled(event: MessageHandled) -> None:
        outcome: MessageOutcome = event.outcome
        print(event.message_id, outcome, event.finished)

    def started(event: CallStarted) -> None:
        print(event.correlation_id)

    hooks = Hooks(on_call_started=started, on_call_finished=finished, on_message_handled=handled)
    with RpcClient(region_name="eu-west-1", hooks=hooks) as client:
        stats: ClientStats = client.stats()
        latency: Latency = stats.latency
        p99: float | None = latency.p99
        requests: Mapping[str, int] = stats.requests
        print(stats.calls, stats.timeouts, p99, requests.get("SendMessage", 0))
    poller = MessagePoller(queue_url, handler, region_name="eu-west-1", hooks=hooks)
    print(poller.stats().latency.count, poller.stats().requests)


def run_on_lambda(sqs: Any, queue_url: str) -> list[str]:
    responder = LambdaResponder(Echo(), region_name="eu-west-1", min_remaining_time=2.5)
    event: dict[str, Any] = receive_event(sqs, queue_url, max_messages=10, wait_time_seconds=1)
    response: dict[str, list[dict[str, str]]] = responder(event, None)
    stats: PollerStats = responder.stats()
    print(stats.received, DEFAULT_MIN_REMAINING_TIME)
    responder.close()
    return delete_succeeded(sqs, queue_url, event, response)


class DictStore:
    """A store of one's own: anything with the three methods is an IdempotencyStore."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[IdempotencyState, dict[str, Any] | None]] = {}

    def begin(self, key: str, lease: float) -> tuple[IdempotencyState, dict[str, Any] | None]:
        state, reply = self.items.setdefault(key, ("in_progress", None))
        return ("new", None) if reply is None and state == "in_progress" else (state, reply)

    def complete(self, key: str, reply: dict[str, Any] | None) -> None:
        self.items[key] = ("done", reply)

    def release(self, key: str) -> None:
        self.items.pop(key, None)


def idempotent(queue_url: str, handler: MessageHandler) -> None:
    shared = DynamoDBIdempotencyStore("sqs-rpc-idempotency", ttl=3600, region_name="eu-west-1")
    store: IdempotencyStore = DictStore()
    MessagePoller(queue_url, handler, idempotency_store=shared)
    MessagePoller(queue_url, handler, idempotency_store=store)
    LambdaResponder(handler, idempotency_store=InMemoryIdempotencyStore(ttl=60))


def make_poller() -> MessagePoller:
    return MessagePoller("https://sqs.eu-west-1.amazonaws.com/1/q", Echo())


def pool() -> None:
    with PollerPool(make_poller, processes=2, graceful_timeout=40) as running:
        stats: PollerStats = running.stats()
        pids: list[int] = running.pids()
        restarts: int = running.restarts
        print(stats.handled, pids, restarts)
    try:
        PollerPool("myapp.server:make_poller", processes=4, max_restarts=3).run()
    except PoolFailed as exc:
        worker: int = exc.worker
        code: int | None = exc.exit_code
        names: tuple[str, ...] = exc.error_types
        print(worker, code, names)
    PollerPool(make_poller, processes=2, liveness_timeout=None).start()  # stopped at exit
    PollerPool(make_poller, processes=2, liveness_timeout=30.0, stats_interval=5).stop()
