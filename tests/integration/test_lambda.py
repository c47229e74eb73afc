"""The Lambda responder, fed with SQS events built from messages received over HTTP.

Each event is what Lambda's event source mapping would pass: real messages (receipt handles,
attributes, message attributes) received from the test server, reshaped into Lambda's record
format by ``receive_event``. Replies go to real reply queues, where RpcClients read them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from sqs_rpc import (
    ConfigurationError,
    IncomingMessage,
    MessageHandler,
    RemoteError,
    Retry,
    RpcClient,
    Sweeper,
)
from sqs_rpc._server.lambda_event import message_from_record, parse_queue_arn, record_from_message
from sqs_rpc._wire import decode_request, encode_request
from sqs_rpc.aws_lambda import LambdaResponder, delete_succeeded, receive_event
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.helpers import Endpoint, messages_in, wait_for

pytestmark = pytest.mark.known_deviation(
    "fauxqs",
    reason="fauxqs names its queues http://sqs.REGION.localhost:PORT/..., not its endpoint's "
    "host; the responder builds its queue URL from the event's ARN and the endpoint, which on "
    "AWS is the queue URL's own host",
)


class Recorder(MessageHandler):
    """Echoes; fails on "fail", asks for a retry on "retry"; remembers what it ran."""

    def __init__(self) -> None:
        self.seen: list[IncomingMessage] = []

    def handle(self, message: IncomingMessage) -> Any:
        self.seen.append(message)
        if message.body == "fail":
            raise ValueError("asked to fail")
        if message.body == "retry":
            raise Retry("not yet")
        return {"echo": message.body}


class Context:
    """The one method of Lambda's context object the responder uses."""

    def __init__(self, remaining_ms: float) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_ms)


# The Recorder each responder fixture was built with: tests read what the handler saw there.
RECORDERS: weakref.WeakKeyDictionary[LambdaResponder, Recorder] = weakref.WeakKeyDictionary()


@pytest.fixture
def responder(sqs: Any) -> Iterator[LambdaResponder]:
    recorder = Recorder()
    with LambdaResponder(recorder, sqs_client=sqs) as running:
        RECORDERS[running] = recorder
        yield running


def handler_of(responder: LambdaResponder) -> Recorder:
    return RECORDERS[responder]


def event_of(sqs: Any, queue_url: str, count: int) -> dict[str, Any]:
    """Receive exactly ``count`` messages as one event (SQS may return fewer per receive)."""
    records: list[dict[str, Any]] = []

    def more() -> bool:
        records.extend(receive_event(sqs, queue_url, max_messages=count - len(records))["Records"])
        return len(records) >= count

    wait_for(more, timeout=20)
    return {"Records": records}


def failures(response: dict[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def ids(event: dict[str, Any]) -> list[str]:
    return [record["messageId"] for record in event["Records"]]


# -- the round trip ---------------------------------------------------------------------------


def test_calls_get_their_replies_and_the_batch_succeeds(
    sqs: Any, queue_url: str, client: RpcClient, responder: LambdaResponder
) -> None:
    futures = [client.call_async(queue_url, n, timeout=20) for n in range(3)]
    failing = client.call_async(queue_url, "fail", timeout=20)
    event = event_of(sqs, queue_url, 4)
    assert event["Records"][0]["eventSource"] == "aws:sqs"

    response = responder(event, Context(60_000))

    assert response == {"batchItemFailures": []}
    assert sorted(f.result(20)["echo"] for f in futures) == [0, 1, 2]
    with pytest.raises(RemoteError) as raised:
        failing.result(20)  # the caller has its answer: the record is done
    assert raised.value.error_type == "ValueError"
    # The handler saw the request as a MessagePoller's handler would.
    seen = handler_of(responder).seen[0]
    assert seen.queue_url == queue_url  # built from eventSourceARN and the client's endpoint
    assert seen.reply_to == client.reply_queue_url
    assert seen.receive_count == 1
    assert seen.remaining_time() is not None
    # Lambda deletes what was not reported; so does delete_succeeded, for local runs.
    assert sorted(delete_succeeded(sqs, queue_url, event, response)) == sorted(ids(event))
    assert messages_in(sqs, queue_url) == 0
    stats = responder.stats()
    assert (stats.received, stats.handled, stats.failed, stats.replies_sent) == (4, 3, 1, 4)


def test_a_redelivered_request_is_answered_from_the_reply_cache(
    sqs: Any, queue_url: str, client: RpcClient, responder: LambdaResponder
) -> None:
    future = client.call_async(queue_url, "once", timeout=20)
    event = event_of(sqs, queue_url, 1)
    assert responder(event, None) == {"batchItemFailures": []}
    assert future.result(20) == {"echo": "once"}
    # Lambda invokes a warm container with the same message again (its deletion failed).
    assert responder(event, None) == {"batchItemFailures": []}
    assert len(handler_of(responder).seen) == 1
    assert responder.stats().duplicates == 1


def test_an_expired_request_is_not_run_and_is_done(
    sqs: Any, queue_url: str, reply_queue: str, responder: LambdaResponder
) -> None:
    past = int((time.time() - 60) * 1000)
    request = encode_request(
        body='"late"',
        content_type="application/json",
        correlation_id="late-1",
        reply_to=reply_queue,
        deadline_ms=past,
        attributes={},
    )
    sqs.send_message(QueueUrl=queue_url, **request.to_send_kwargs())
    event = event_of(sqs, queue_url, 1)
    assert responder(event, None) == {"batchItemFailures": []}
    assert handler_of(responder).seen == []
    assert responder.stats().expired == 1


def test_one_way_messages_fail_only_when_the_handler_does(
    sqs: Any, queue_url: str, client: RpcClient, responder: LambdaResponder
) -> None:
    good = client.publish(queue_url, "fine")
    bad = client.publish(queue_url, "fail")
    event = event_of(sqs, queue_url, 2)
    response = responder(event, None)
    assert failures(response) == {bad}
    assert good in ids(event)


def test_retry_is_a_batch_item_failure(
    sqs: Any, queue_url: str, client: RpcClient, responder: LambdaResponder
) -> None:
    future = client.call_async(queue_url, "retry", timeout=5)
    event = event_of(sqs, queue_url, 1)
    assert failures(responder(event, None)) == set(ids(event))
    assert not future.done()  # no reply: the request comes back for another attempt
    assert responder.stats().retried == 1


def test_a_malformed_request_gets_an_error_reply_and_is_left_for_redrive(
    sqs: Any, queue_url: str, reply_queue: str, responder: LambdaResponder
) -> None:
    request = encode_request(
        body="{not json",
        content_type="application/json",
        correlation_id="bad-1",
        reply_to=reply_queue,
        deadline_ms=None,
        attributes={},
    )
    sqs.send_message(QueueUrl=queue_url, **request.to_send_kwargs())
    event = event_of(sqs, queue_url, 1)

    assert failures(responder(event, None)) == set(ids(event))

    replies = sqs.receive_message(
        QueueUrl=reply_queue, MessageAttributeNames=["All"], WaitTimeSeconds=5
    )["Messages"]
    (reply,) = replies
    assert reply["MessageAttributes"]["Status"]["StringValue"] == "error"
    assert reply["MessageAttributes"]["CorrelationId"]["StringValue"] == "bad-1"
    assert json.loads(reply["Body"])["type"] == "DecodeError"
    assert handler_of(responder).seen == []


def test_a_reply_sqs_refuses_is_a_batch_item_failure(
    sqs: Any, make_queue: Callable[..., str], queue_url: str, responder: LambdaResponder
) -> None:
    # A FIFO reply queue refuses a reply without a MessageGroupId: a real refusal by SQS.
    fifo_reply = make_queue(f"sqs-rpc-reply-{uuid.uuid4().hex}.fifo", FifoQueue="true")
    request = encode_request(
        body='"x"',
        content_type="application/json",
        correlation_id="refused-1",
        reply_to=fifo_reply,
        deadline_ms=None,
        attributes={},
    )
    sqs.send_message(QueueUrl=queue_url, **request.to_send_kwargs())
    event = event_of(sqs, queue_url, 1)
    assert failures(responder(event, None)) == set(ids(event))
    assert len(handler_of(responder).seen) == 1


def test_a_throttled_reply_is_a_batch_item_failure(
    endpoint: Endpoint, sqs: Any, queue_url: str, client: RpcClient
) -> None:
    future = client.call_async(queue_url, "x", timeout=30)
    event = event_of(sqs, queue_url, 1)
    with FaultProxy(endpoint.endpoint_url, seed=6) as proxy:
        # The reply goes out alone on the invoking thread: a SendMessage.
        proxy.set_faults(Fault("throttle", operations={"SendMessage", "SendMessageBatch"}))
        through_proxy = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=endpoint.region_name,
        ).client(
            "sqs",
            endpoint_url=proxy.endpoint_url,
            config=Config(retries={"mode": "standard", "max_attempts": 2}),
        )
        with LambdaResponder(
            Recorder(), sqs_client=through_proxy, queue_url=queue_url
        ) as responder:
            assert failures(responder(event, None)) == set(ids(event))
            sent = proxy.requests()
            # botocore retried, then gave up
            assert sent.get("SendMessage", 0) + sent.get("SendMessageBatch", 0) >= 2
        # The next delivery, with SQS answering again, gets the reply out.
        with LambdaResponder(Recorder(), sqs_client=sqs) as responder:
            assert responder(event, None) == {"batchItemFailures": []}
    assert future.result(20) == {"echo": "x"}


# -- time and order --------------------------------------------------------------------------


def test_no_record_starts_when_the_invocation_is_nearly_out_of_time(
    sqs: Any, queue_url: str, client: RpcClient, responder: LambdaResponder
) -> None:
    for n in range(2):
        client.publish(queue_url, n)
    event = event_of(sqs, queue_url, 2)
    response = responder(event, Context(remaining_ms=500))  # below the default 1 s
    assert failures(response) == set(ids(event))
    assert handler_of(responder).seen == []


def test_records_stop_starting_once_time_runs_low(
    sqs: Any, queue_url: str, client: RpcClient
) -> None:
    context = Context(remaining_ms=10_000)

    class Slow(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            context.remaining_ms -= 4_000  # each record "takes" 4 s of the invocation
            return None

    for n in range(3):
        client.publish(queue_url, n)
    event = event_of(sqs, queue_url, 3)
    with LambdaResponder(Slow(), sqs_client=sqs, min_remaining_time=3) as responder:
        response = responder(event, context)
    # 10 s: first runs (6 s left), second runs (2 s left), third is not started.
    assert failures(response) == {ids(event)[2]}


def test_fifo_stops_at_the_first_failure(
    sqs: Any, make_queue: Callable[..., str], client: RpcClient, responder: LambdaResponder
) -> None:
    queue_url = make_queue(
        f"test-{uuid.uuid4().hex[:16]}.fifo", FifoQueue="true", ContentBasedDeduplication="true"
    )
    for body in ("a", "fail", "c"):
        client.publish(queue_url, body, group_id="g")
    records: list[dict[str, Any]] = []
    # A FIFO queue hands out a group's next messages only once the earlier ones are gone
    # or in flight; receive until all three are in one event.
    wait_for(lambda: records.extend(receive_event(sqs, queue_url)["Records"]) or len(records) == 3)
    event = {"Records": records}
    assert [json.loads(r["body"]) for r in records] == ["a", "fail", "c"]

    response = responder(event, None)

    assert failures(response) == set(ids(event)[1:])
    assert [m.body for m in handler_of(responder).seen] == ["a", "fail"]


# -- async handlers, an RpcClient inside the function ------------------------------------------


def test_async_handlers_run_on_one_loop_kept_across_invocations(
    sqs: Any, queue_url: str, client: RpcClient
) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    class Async(MessageHandler):
        async def handle(self, message: IncomingMessage) -> Any:  # type: ignore[override]
            loops.append(asyncio.get_running_loop())
            await asyncio.sleep(0)
            return message.body * 2

    with LambdaResponder(Async(), sqs_client=sqs) as responder:
        for n in (1, 2):
            future = client.call_async(queue_url, n, timeout=20)
            assert responder(event_of(sqs, queue_url, 1), None) == {"batchItemFailures": []}
            assert future.result(20) == n * 2
            assert threading.current_thread() is threading.main_thread()
    assert loops[0] is loops[1]
    assert loops[0].is_closed()  # by close()


def test_an_rpc_client_in_the_function_keeps_its_reply_queue_across_invocations(
    sqs: Any, make_queue: Callable[..., str], queue_url: str, client: RpcClient, serve: Any
) -> None:
    # The function calls another service; its RpcClient is a module global, built once.
    downstream = make_queue()
    serve(downstream, Recorder())
    onward = RpcClient(sqs_client=sqs, default_timeout=20)

    class Gateway(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            return onward.call(downstream, message.body)

    try:
        queues = []
        with LambdaResponder(Gateway(), sqs_client=sqs) as responder:
            for n in range(3):
                future = client.call_async(queue_url, n, timeout=30)
                assert responder(event_of(sqs, queue_url, 1), None) == {"batchItemFailures": []}
                assert future.result(20) == {"echo": n}
                queues.append(onward.reply_queue_url)
        assert queues[0] is not None
        assert len(set(queues)) == 1
    finally:
        onward.close()


FROZEN_CLIENT = """
import json, sys
from sqs_rpc import RpcClient

endpoint, region, queue_url, prefix = sys.argv[1:5]
client = RpcClient(
    endpoint_url=endpoint, region_name=region, reply_queue_prefix=prefix, heartbeat_interval=1,
    idle_retention=3, reply_wait_time_seconds=1, default_timeout=20,
)
for line in sys.stdin:
    if line.strip() == "quit":
        break
    try:
        out = {"reply": client.call(queue_url, int(line))}
    except Exception as exc:
        out = {"error": f"{type(exc).__name__}: {exc}"}
    out["queue"] = client.reply_queue_url
    print(json.dumps(out), flush=True)
client.close()
"""


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")
@pytest.mark.timeout(120)
def test_a_client_frozen_past_its_retention_replaces_its_swept_queue_before_calling(
    endpoint: Endpoint, sqs: Any, queue_url: str, serve: Any, tmp_path: Path
) -> None:
    # A warm Lambda's module-level client is frozen between invocations: no heartbeat. Here
    # SIGSTOP freezes a client process while a sweeper deletes its idle queue.
    handler = Recorder()
    serve(queue_url, handler)
    prefix = f"sqs-rpc-reply-{uuid.uuid4().hex[:8]}-"
    script = tmp_path / "frozen_client.py"
    script.write_text(FROZEN_CLIENT)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    arguments = [endpoint.endpoint_url, endpoint.region_name, queue_url, prefix]
    child = subprocess.Popen(
        [sys.executable, str(script), *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdin is not None
    assert child.stdout is not None

    def invoke(n: int) -> dict[str, Any]:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(f"{n}\n")
        child.stdin.flush()
        answer: dict[str, Any] = json.loads(child.stdout.readline())
        return answer

    try:
        first = invoke(1)
        assert first["reply"] == {"echo": 1}
        child.send_signal(signal.SIGSTOP)
        try:
            # The freeze may come before the reply's delete went out (as in Lambda, which
            # freezes as soon as the handler returns): the queue then holds it, and goes anyway.
            sweeper = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix)
            swept = wait_for(lambda: sweeper.sweep().deleted, timeout=30, interval=0.5)
        finally:
            child.send_signal(signal.SIGCONT)
        assert [d.queue_url for d in swept] == [first["queue"]]

        second = invoke(2)  # the first call after the thaw

        assert second.get("error") is None
        assert second["reply"] == {"echo": 2}
        assert second["queue"] != first["queue"]
        assert [m.body for m in handler.seen] == [1, 2]
        child.stdin.write("quit\n")
        child.stdin.close()
        assert child.wait(30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        child.stdin.close()
        child.stdout.close()


# -- configuration and bad events --------------------------------------------------------------


def test_bad_options_and_events_are_configuration_errors(sqs: Any) -> None:
    with pytest.raises(ConfigurationError, match="handle"):
        LambdaResponder(object(), sqs_client=sqs)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="min_remaining_time"):
        LambdaResponder(Recorder(), sqs_client=sqs, min_remaining_time=-1)
    with pytest.raises(ConfigurationError, match="queue URL"):
        LambdaResponder(Recorder(), sqs_client=sqs, queue_url="orders")
    with pytest.raises(ConfigurationError, match="reply_queue_prefix"):
        LambdaResponder(Recorder(), sqs_client=sqs, reply_queue_prefix="")
    with LambdaResponder(Recorder(), sqs_client=sqs) as responder:
        with pytest.raises(ConfigurationError, match="Records"):
            responder({"detail-type": "Scheduled Event"}, None)
        record = {"messageId": "1", "receiptHandle": "r", "body": "1"}
        with pytest.raises(ConfigurationError, match="queue_url="):
            responder({"Records": [{**record, "eventSourceARN": "not-an-arn"}]}, None)
        other_region = "arn:aws:sqs:eu-west-3:123456789012:orders"
        with pytest.raises(ConfigurationError, match="eu-west-3"):
            responder({"Records": [{**record, "eventSourceARN": other_region}]}, None)
    with pytest.raises(Exception, match="closed"):
        responder({"Records": []}, None)


def test_records_and_messages_convert_both_ways(sqs: Any, queue_url: str) -> None:
    request = encode_request(
        body='"hi"',
        content_type="application/json",
        correlation_id="c-1",
        reply_to=None,
        deadline_ms=int(time.time() * 1000),
        attributes={"blob": b"\x00\xff", "tenant": "acme"},
    )
    sqs.send_message(QueueUrl=queue_url, **request.to_send_kwargs())
    (message,) = wait_for(
        lambda: sqs.receive_message(
            QueueUrl=queue_url, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages")
    )
    record = record_from_message(message, queue_arn="arn:aws:sqs:us-east-1:1:q", region="x")
    assert (
        record["messageAttributes"]["blob"]["binaryValue"] == base64.b64encode(b"\x00\xff").decode()
    )
    assert record["messageAttributes"]["tenant"]["dataType"] == "String"
    request = decode_request(message_from_record(record))
    assert request == decode_request(message)
    assert request.attributes == {"blob": b"\x00\xff", "tenant": "acme"}
    # A binaryValue that is not base64 is dropped, not fatal.
    record["messageAttributes"]["blob"]["binaryValue"] = "%%%"
    assert "blob" not in message_from_record(record)["MessageAttributes"]


def test_queue_arns_are_parsed_strictly() -> None:
    arn = parse_queue_arn("arn:aws-cn:sqs:cn-north-1:123456789012:orders.fifo")
    assert arn is not None
    assert (arn.region, arn.account, arn.name, arn.fifo) == (
        "cn-north-1",
        "123456789012",
        "orders.fifo",
        True,
    )
    for bad in (None, "", "arn:aws:sns:us-east-1:1:topic", "arn:aws:sqs:us-east-1:1", "x:y"):
        assert parse_queue_arn(bad) is None
