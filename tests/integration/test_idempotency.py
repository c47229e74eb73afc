"""Idempotency stores: a request runs once across servers, over HTTP (SQS and DynamoDB).

The DynamoDB store runs against the test server's DynamoDB (moto's server serves every AWS
service on one port). Redeliveries are made the ways SQS makes them: a request whose
visibility runs out while its handler still runs, and a request sent twice (a SendMessage
retried after its first attempt reached SQS).
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sqs_rpc import (
    ConfigurationError,
    DynamoDBIdempotencyStore,
    Hooks,
    IdempotencyStore,
    IncomingMessage,
    InMemoryIdempotencyStore,
    MessageHandled,
    MessageHandler,
    MessagePoller,
    RpcClient,
    SqsError,
)
from sqs_rpc.aws_lambda import LambdaResponder, receive_event
from tests.support.helpers import S3_SERVERS, Endpoint, server_name, wait_for

Serve = Callable[..., MessagePoller]

# Every implementation that serves DynamoDB at its SQS endpoint serves S3 there too.
needs_dynamodb = pytest.mark.skipif(
    server_name() not in S3_SERVERS, reason=f"{server_name()} serves no DynamoDB"
)

REPLY = {
    "MessageBody": '{"n": 1}',
    "MessageAttributes": {
        "CorrelationId": {"DataType": "String", "StringValue": "c-1"},
        "Blob": {"DataType": "Binary", "BinaryValue": b"\x00\xffbytes"},
    },
}


@pytest.fixture
def table(endpoint: Endpoint) -> Iterator[str]:
    """A table laid out as docs/server.md says: key ``id``, TTL on ``expiration``."""
    dynamodb = endpoint.session().client("dynamodb", endpoint_url=endpoint.endpoint_url)
    name = f"sqs-rpc-idempotency-{uuid.uuid4().hex[:12]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
    )
    yield name
    dynamodb.delete_table(TableName=name)


def make_store(endpoint: Endpoint, table: str, **options: Any) -> DynamoDBIdempotencyStore:
    return DynamoDBIdempotencyStore(
        table, session=endpoint.session(), endpoint_url=endpoint.endpoint_url, **options
    )


Stores = Callable[..., DynamoDBIdempotencyStore]


@pytest.fixture
def stores(endpoint: Endpoint, table: str) -> Stores:
    """Makes stores on the test's table: one per server, as separate processes would."""
    return lambda **options: make_store(endpoint, table, **options)


# -- the stores themselves -----------------------------------------------------------------


def check_store(store: IdempotencyStore) -> None:
    """The contract every store keeps: claim, see it held, complete, see the reply."""
    key = uuid.uuid4().hex
    assert store.begin(key, 60) == ("new", None)
    assert store.begin(key, 60) == ("in_progress", None)
    store.complete(key, REPLY)
    assert store.begin(key, 60) == ("done", REPLY)
    store.release(key)  # a done request stays done
    assert store.begin(key, 60) == ("done", REPLY)
    # Released: the next delivery runs it.
    other = uuid.uuid4().hex
    assert store.begin(other, 60)[0] == "new"
    store.release(other)
    assert store.begin(other, 60)[0] == "new"
    # One-way requests are done without a reply.
    store.complete(other, None)
    assert store.begin(other, 60) == ("done", None)


def test_the_in_memory_store_keeps_the_contract() -> None:
    store = InMemoryIdempotencyStore()
    assert isinstance(store, IdempotencyStore)
    check_store(store)


@needs_dynamodb
def test_the_dynamodb_store_keeps_the_contract(endpoint: Endpoint, table: str) -> None:
    store = make_store(endpoint, table)
    assert isinstance(store, IdempotencyStore)
    check_store(store)


@needs_dynamodb
def test_two_dynamodb_stores_share_claims_and_release_only_their_own(
    endpoint: Endpoint, table: str
) -> None:
    first, second = make_store(endpoint, table), make_store(endpoint, table)
    key = uuid.uuid4().hex
    assert first.begin(key, 60) == ("new", None)
    assert second.begin(key, 60) == ("in_progress", None)
    second.release(key)  # not its claim: nothing happens
    assert second.begin(key, 60) == ("in_progress", None)
    first.complete(key, REPLY)
    assert second.begin(key, 60) == ("done", REPLY)


@needs_dynamodb
def test_a_dynamodb_claim_expires_after_its_lease_and_a_reply_after_its_ttl(
    endpoint: Endpoint, table: str
) -> None:
    crashed, alive = make_store(endpoint, table, ttl=2), make_store(endpoint, table)
    key = uuid.uuid4().hex
    assert crashed.begin(key, 1) == ("new", None)  # and never completes: its server died
    assert alive.begin(key, 60) == ("in_progress", None)
    wait_for(lambda: alive.begin(key, 60) == ("new", None), timeout=10)
    done = uuid.uuid4().hex
    crashed.begin(done, 60)
    crashed.complete(done, REPLY)
    assert alive.begin(done, 60) == ("done", REPLY)
    wait_for(lambda: alive.begin(done, 60) == ("new", None), timeout=10)


@needs_dynamodb
def test_a_missing_table_raises_sqs_error(endpoint: Endpoint) -> None:
    store = make_store(endpoint, "no-such-table")
    with pytest.raises(SqsError, match="PutItem"):
        store.begin("k", 60)


def test_bad_store_options_are_refused(endpoint: Endpoint, sqs: Any) -> None:
    with pytest.raises(ConfigurationError, match="table_name"):
        DynamoDBIdempotencyStore("")
    with pytest.raises(ConfigurationError, match="ttl"):
        DynamoDBIdempotencyStore("t", ttl=0, region_name="us-east-1")
    with pytest.raises(ConfigurationError, match="key_attribute"):
        DynamoDBIdempotencyStore("t", key_attribute="status", region_name="us-east-1")
    with pytest.raises(ConfigurationError, match="idempotency_store"):
        MessagePoller("http://localhost/1/q", Echo(), sqs_client=sqs, idempotency_store=object())  # type: ignore[arg-type]


# -- two servers, one store ----------------------------------------------------------------


class Echo(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        return message.body


class Runs:
    """Counts handler runs by body across servers; lets a run wait for its duplicate."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count: collections.Counter[str] = collections.Counter()
        self.duplicates: dict[str, threading.Event] = collections.defaultdict(threading.Event)
        self.left = 0  # duplicates left in the queue: another claim held them

    def on_handled(self, event: MessageHandled) -> None:
        if event.outcome == "duplicate" and event.correlation_id is not None:
            with self.lock:
                self.duplicates[event.correlation_id].set()
                self.left += not event.finished

    def duplicate_of(self, correlation_id: str) -> threading.Event:
        with self.lock:
            return self.duplicates[correlation_id]


class WaitsForItsDuplicate(MessageHandler):
    """Runs until a server has seen (and left) a second delivery of the same request."""

    def __init__(self, runs: Runs) -> None:
        self.runs = runs

    def handle(self, message: IncomingMessage) -> Any:
        with self.runs.lock:
            self.runs.count[message.body] += 1
        assert message.correlation_id is not None
        saw = self.runs.duplicate_of(message.correlation_id).wait(30)
        return {"body": message.body, "duplicate_seen": saw}


@needs_dynamodb
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_request_redelivered_while_it_runs_is_not_run_again_by_either_server(
    stores: Stores, make_queue: Callable[..., str], serve: Serve, client: RpcClient
) -> None:
    # The visibility heartbeat lets go of each request half a second after its receive (its
    # max_visibility_extension is 1 s): SQS delivers it again, to either server, while the
    # first run goes on. The claim lasts 11 s (extension bound + visibility timeout).
    queue_url = make_queue(VisibilityTimeout="10")
    runs = Runs()
    options: dict[str, Any] = {
        "concurrency": 12,
        "visibility_extension_interval": 0.5,
        "max_visibility_extension": 1,
        "hooks": Hooks(on_message_handled=runs.on_handled),
    }
    serve(
        queue_url,
        WaitsForItsDuplicate(runs),
        idempotency_store=stores(),
        **options,
    )
    serve(
        queue_url,
        WaitsForItsDuplicate(runs),
        idempotency_store=stores(),
        **options,
    )
    calls = [client.call_async(queue_url, f"job-{i}", timeout=60) for i in range(10)]
    replies = [call.result() for call in calls]
    assert replies == [{"body": f"job-{i}", "duplicate_seen": True} for i in range(10)]
    assert runs.count == {f"job-{i}": 1 for i in range(10)}  # each ran exactly once
    assert runs.left >= 10  # each one's second delivery was left, not run


def send_request(sqs: Any, queue_url: str, reply_to: str, correlation_id: str, body: str) -> None:
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageAttributes={
            "ReplyTo": {"DataType": "String", "StringValue": reply_to},
            "CorrelationId": {"DataType": "String", "StringValue": correlation_id},
        },
    )


def receive_replies(sqs: Any, queue_url: str, count: int) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = []

    def more() -> bool:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            WaitTimeSeconds=1,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
        )
        for message in response.get("Messages", []):
            replies.append(message)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(replies) >= count

    wait_for(more, timeout=60)
    return replies


class Counting(MessageHandler):
    def __init__(self, runs: Runs) -> None:
        self.runs = runs

    def handle(self, message: IncomingMessage) -> Any:
        with self.runs.lock:
            self.runs.count[message.body] += 1
        return {"body": message.body, "pid": os.getpid()}


@needs_dynamodb
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_request_delivered_again_after_it_finished_is_answered_by_either_server_unrun(
    sqs: Any, stores: Stores, queue_url: str, reply_queue: str, serve: Serve
) -> None:
    runs = Runs()
    for _ in range(2):
        serve(queue_url, Counting(runs), idempotency_store=stores())
    ids = [uuid.uuid4().hex for _ in range(10)]
    for delivery in (1, 2):
        # The second delivery is byte for byte the first (a retried SendMessage whose first
        # attempt reached SQS): whichever server receives it answers from the table.
        for i, correlation_id in enumerate(ids):
            send_request(sqs, queue_url, reply_queue, correlation_id, f'"job-{i}"')
        replies = receive_replies(sqs, reply_queue, len(ids))
        answered = sorted(r["MessageAttributes"]["CorrelationId"]["StringValue"] for r in replies)
        assert answered == sorted(ids), delivery
    assert runs.count == {f"job-{i}": 1 for i in range(10)}


# -- a server that crashed mid-request -------------------------------------------------------

CRASHING_SERVER = """
import sys, threading
from sqs_rpc import DynamoDBIdempotencyStore, MessageHandler, MessagePoller
endpoint, region, queue_url, table, started = sys.argv[1:6]

class Hangs(MessageHandler):
    def handle(self, message):
        open(started, "w").write(message.body)
        threading.Event().wait()  # until SIGKILL

store = DynamoDBIdempotencyStore(table, endpoint_url=endpoint, region_name=region)
MessagePoller(queue_url, Hangs(), endpoint_url=endpoint, region_name=region,
              wait_time_seconds=1, max_visibility_extension=4, idempotency_store=store).run()
"""


class Hanging:
    """The crashing server in a subprocess: claims a request, hangs in its handler."""

    def __init__(self, endpoint: Endpoint, table: str, tmp_path: Path, queue_url: str) -> None:
        self.started = tmp_path / "started"
        self.errors = tmp_path / "server.err"
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        arguments = [endpoint.endpoint_url, endpoint.region_name, queue_url, table]
        with self.errors.open("w") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-c", CRASHING_SERVER, *arguments, str(self.started)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )

    def wait_started(self) -> None:
        wait_for(lambda: self.started.exists() or self.process.poll() is not None, timeout=60)
        assert self.process.poll() is None, self.errors.read_text()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)


@pytest.fixture
def hanging(endpoint: Endpoint, table: str, tmp_path: Path) -> Iterator[Callable[[str], Hanging]]:
    started: list[Hanging] = []

    def start(queue_url: str) -> Hanging:
        started.append(Hanging(endpoint, table, tmp_path, queue_url))
        return started[-1]

    yield start
    for server in started:
        server.kill()


@needs_dynamodb
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_crashed_servers_claim_expires_and_the_request_then_runs_elsewhere(
    hanging: Callable[[str], Hanging],
    stores: Stores,
    make_queue: Callable[..., str],
    serve: Serve,
    client: RpcClient,
) -> None:
    # The crashed server's claims last 6 s (its 4 s extension bound + the 2 s visibility
    # timeout); its request comes back 2 s after its last extension.
    queue_url = make_queue(VisibilityTimeout="2")
    crashing = hanging(queue_url)
    future = client.call_async(queue_url, "job", timeout=90)
    crashing.wait_started()  # it claimed the request, and runs it
    crashing.kill()  # SIGKILL: no release, no reply, no delete
    killed = time.monotonic()
    runs = Runs()
    poller = serve(
        queue_url,
        Counting(runs),
        idempotency_store=stores(),
        hooks=Hooks(on_message_handled=runs.on_handled),
    )
    assert future.result(timeout=90) == {"body": "job", "pid": os.getpid()}
    assert runs.count == {"job": 1}
    assert time.monotonic() - killed < 60
    wait_for(lambda: poller.stats().handled == 1)  # counted just after the reply went
    # Until the claim expired, its deliveries were left in the queue, not run.
    assert runs.left >= 1


# -- Lambda ----------------------------------------------------------------------------------


@needs_dynamodb
def test_a_record_redelivered_to_another_lambda_instance_is_answered_from_the_table(
    sqs: Any, stores: Stores, queue_url: str, client: RpcClient
) -> None:
    runs = Runs()
    future = client.call_async(queue_url, "once", timeout=30)
    event = receive_event(sqs, queue_url, wait_time_seconds=5)
    assert len(event["Records"]) == 1
    # Two warm instances of the function, as Lambda runs them: no memory in common.
    with (
        LambdaResponder(Counting(runs), sqs_client=sqs, idempotency_store=stores()) as first,
        LambdaResponder(Counting(runs), sqs_client=sqs, idempotency_store=stores()) as second,
    ):
        assert first(event, None) == {"batchItemFailures": []}
        assert future.result(30) == {"body": "once", "pid": os.getpid()}
        # Lambda's delete failed: the record comes back, to the other instance.
        assert second(event, None) == {"batchItemFailures": []}
        assert second.stats().duplicates == 1
    assert runs.count == {"once": 1}
