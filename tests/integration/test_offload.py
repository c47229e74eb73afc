"""S3 offload of large payloads, in the SQS extended client's format, against moto's S3.

The S3 tests talk HTTP to the same moto server as SQS (it serves every service on one port);
they are marked ``s3`` and skipped on SQS implementations without S3 (fauxqs).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from sqs_rpc import (
    ConfigurationError,
    DecodeError,
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    RemoteError,
    RpcClient,
    S3Offload,
    S3PayloadError,
    SqsError,
)
from sqs_rpc._offload import POINTER_CLASS, S3Pointer
from sqs_rpc._outgoing import OutgoingMessage
from sqs_rpc._payload_store import PayloadStore
from sqs_rpc.aws_lambda import LambdaResponder, receive_event
from tests.support.handlers import EchoBody
from tests.support.helpers import Endpoint, wait_for

Serve = Callable[..., MessagePoller]
MiB = 1024 * 1024
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
BINDING = r"[0-9a-f]{16}"  # the digest of the message's correlation id
# What AWS's extended clients write: the Python client's bare UUID keys.
EXTENDED = ("",)


class Reverse(MessageHandler):
    """Replies with the request's text reversed (as large as the request)."""

    def handle(self, message: IncomingMessage) -> Any:
        return {"size": len(message.body["data"]), "data": message.body["data"][::-1]}


# -- configuration (no server) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"bucket": "Bad_Bucket"}, "not an S3 bucket name"),
        ({"bucket": "arn:aws:s3:::b"}, "not an S3 bucket name"),
        ({"bucket": "ok-bucket", "allowed_buckets": "other-bucket"}, "one string"),
        ({"bucket": "ok-bucket", "allowed_buckets": ("UPPER",)}, "allowed_buckets entry"),
        ({"bucket": "ok-bucket", "prefix": "has space/"}, "prefix="),
        ({"bucket": "ok-bucket", "threshold": -1}, "threshold="),
        ({"bucket": "ok-bucket", "threshold": 2 * MiB}, "threshold="),
        ({"bucket": "ok-bucket", "threshold": True}, "threshold="),
        ({"bucket": "ok-bucket", "threshold": "sometimes"}, "threshold="),
        ({"bucket": "ok-bucket", "s3_client": object()}, "not a boto3 S3 client"),
    ],
)
def test_bad_configuration_is_refused_at_construction(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        S3Offload(**options)


def test_configuration_is_a_frozen_value(endpoint: Endpoint) -> None:
    offload = S3Offload(
        bucket="mine", allowed_buckets=["theirs", "theirs"], s3_client=endpoint.s3_client()
    )
    assert offload.allowed_buckets == ("theirs",)
    assert offload.readable_buckets == frozenset({"mine", "theirs"})
    assert offload.prefix == "sqs-rpc/"
    assert offload.threshold is None
    with pytest.raises(AttributeError):
        offload.bucket = "other"  # type: ignore[misc]
    with pytest.raises(ConfigurationError, match="S3Offload"):
        RpcClient(sqs_client=endpoint.client(), offload="mine")  # type: ignore[arg-type]


def test_pointer_is_the_extended_clients_json() -> None:
    pointer = S3Pointer("b-1", "sqs-rpc/k")
    assert pointer.to_body() == (
        '["software.amazon.payloadoffloading.PayloadS3Pointer",'
        '{"s3BucketName":"b-1","s3Key":"sqs-rpc/k"}]'
    )
    assert S3Pointer.from_body(pointer.to_body()) == pointer
    # The Python extended client writes it with spaces; the old Java class name is accepted.
    spaced = (
        '["com.amazon.sqs.javamessaging.MessageS3Pointer", {"s3BucketName": "b", "s3Key": "k"}]'
    )
    assert S3Pointer.from_body(spaced) == S3Pointer("b", "k")
    for bad in ("{}", "[1, 2]", '["other.Class", {"s3BucketName": "b", "s3Key": "k"}]', "x["):
        with pytest.raises(S3PayloadError, match="not an S3 pointer"):
            S3Pointer.from_body(bad)


def test_a_side_without_offload_refuses_pointers_with_the_fix() -> None:
    store = PayloadStore(None)
    plain = OutgoingMessage("x" * 10)
    assert store.outgoing(plain, 1024, what="request") is plain
    message = {
        "Body": S3Pointer("their-bucket", "k").to_body(),
        "MessageAttributes": {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": "9"}},
    }
    with pytest.raises(S3PayloadError, match=r"offload=S3Offload\(bucket=") as info:
        store.load(message, kind="request")
    assert (info.value.bucket, info.value.key) == ("their-bucket", "k")
    assert isinstance(info.value, DecodeError)


def test_the_threshold_decides_what_goes_to_s3(endpoint: Endpoint) -> None:
    def outgoing(threshold: Any, body: str, limit: int = 1024) -> OutgoingMessage:
        offload = S3Offload(bucket="b-1", s3_client=endpoint.s3_client(), threshold=threshold)
        # upload=False: only the decision and the checks, no S3 request.
        return PayloadStore(offload).outgoing(
            OutgoingMessage(body), limit, what="request", upload=False
        )

    def offloaded(message: OutgoingMessage) -> bool:
        return "ExtendedPayloadSize" in message.attributes

    assert not offloaded(outgoing(None, "x" * 1024))  # fits: stays in SQS
    assert offloaded(outgoing(None, "x" * 1025))  # would exceed max_message_bytes
    assert not offloaded(outgoing(100, "x" * 100))
    assert offloaded(outgoing(100, "x" * 101))
    assert offloaded(outgoing(5000, "x" * 1025))  # max_message_bytes still applies
    assert offloaded(outgoing("always", "x"))
    sent = outgoing("always", "é" * 10)
    assert sent.attribute("ExtendedPayloadSize") == "20"  # UTF-8 bytes
    assert S3Pointer.from_body(sent.body).key.startswith("sqs-rpc/requests/")


# -- against moto's S3 ---------------------------------------------------------------------------


@pytest.fixture
def s3(endpoint: Endpoint) -> Any:
    return endpoint.s3_client()


@pytest.fixture
def make_bucket(s3: Any) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        name = f"sqs-rpc-test-{uuid.uuid4().hex[:16]}"
        s3.create_bucket(Bucket=name)
        made.append(name)
        return name

    yield make
    for name in made:
        for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
            s3.delete_object(Bucket=name, Key=item["Key"])
        s3.delete_bucket(Bucket=name)


@pytest.fixture
def bucket(make_bucket: Callable[[], str]) -> str:
    return make_bucket()


def keys(s3: Any, bucket: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def receive_one(sqs: Any, queue_url: str) -> dict[str, Any]:
    def receive() -> Any:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MessageAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages")
        return messages[0] if messages else None

    message: dict[str, Any] = wait_for(receive, timeout=30)
    return message


def extended_client_request(
    s3: Any, bucket: str, body: str, *, reply_to: str, legacy: bool = False
) -> dict[str, Any]:
    """A request as an SQS extended client user sends it: the body in S3, a pointer in SQS."""
    key = str(uuid.uuid4())
    data = body.encode()
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    cls = "com.amazon.sqs.javamessaging.MessageS3Pointer" if legacy else POINTER_CLASS
    size_name = "SQSLargePayloadSize" if legacy else "ExtendedPayloadSize"
    return {
        "MessageBody": json.dumps([cls, {"s3BucketName": bucket, "s3Key": key}]),
        "MessageAttributes": {
            size_name: {"DataType": "Number", "StringValue": str(len(data))},
            "ReplyTo": {"DataType": "String", "StringValue": reply_to},
            "CorrelationId": {"DataType": "String", "StringValue": uuid.uuid4().hex},
        },
    }


def dead_letter_queue(sqs: Any, make_queue: Callable[..., str]) -> tuple[str, str]:
    """A request queue that moves a message to its DLQ at the second receive, and the DLQ."""
    dlq = make_queue()
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "1"})
    return make_queue(VisibilityTimeout="1", RedrivePolicy=policy), dlq


@pytest.mark.s3
def test_round_trip_of_a_2_mib_request_and_reply(
    sqs: Any, s3: Any, bucket: str, queue_url: str, serve: Serve
) -> None:
    offload = S3Offload(bucket=bucket, s3_client=s3)
    serve(queue_url, Reverse(), offload=offload)
    data = "".join(chr(ord("a") + i % 26) for i in range(2 * MiB))
    with RpcClient(sqs_client=sqs, offload=offload) as client:
        reply = client.call(queue_url, {"data": data}, timeout=30)
        assert reply == {"size": 2 * MiB, "data": data[::-1]}
        # Small calls stay in SQS, in the same client.
        assert client.call(queue_url, {"data": "abc"}, timeout=30) == {"size": 3, "data": "cba"}
    # The request's object is deleted by the server once handled, the reply's by the client
    # once received.
    wait_for(lambda: keys(s3, bucket) == [], timeout=20)


@pytest.mark.s3
def test_concurrent_large_calls_share_batches_by_their_pointer_size(
    sqs: Any, s3: Any, bucket: str, queue_url: str, serve: Serve
) -> None:
    # Ten 1.5 MiB messages could never share one 1 MiB SendMessageBatch; their pointers can.
    offload = S3Offload(bucket=bucket, s3_client=s3)
    serve(queue_url, Reverse(), offload=offload, concurrency=4)
    payloads = [str(i) * (3 * MiB // 2) for i in range(10)]
    with RpcClient(sqs_client=sqs, offload=offload) as client:
        futures = [client.call_async(queue_url, {"data": p}, timeout=60) for p in payloads]
        replies = [future.result(timeout=60) for future in futures]
    assert [r["data"] for r in replies] == [p[::-1] for p in payloads]
    wait_for(lambda: keys(s3, bucket) == [], timeout=20)


@pytest.mark.s3
def test_a_request_we_offload_has_the_extended_client_format(
    sqs: Any, s3: Any, bucket: str, queue_url: str
) -> None:
    offload = S3Offload(bucket=bucket, s3_client=s3, prefix="calls/", threshold="always")
    with RpcClient(sqs_client=sqs, offload=offload) as client:
        client.publish(queue_url, {"é": 1}, attributes={"Tenant": "t1"})
    message = receive_one(sqs, queue_url)
    match = re.fullmatch(
        r'\["software\.amazon\.payloadoffloading\.PayloadS3Pointer",'
        rf'\{{"s3BucketName":"{bucket}","s3Key":"(calls/requests/{BINDING}/{UUID})"\}}\]',
        message["Body"],
    )
    assert match is not None, message["Body"]
    stored = s3.get_object(Bucket=bucket, Key=match.group(1))["Body"].read()
    assert stored == '{"é":1}'.encode()
    attributes = message["MessageAttributes"]
    assert attributes["ExtendedPayloadSize"] == {
        "DataType": "Number",
        "StringValue": str(len(stored)),
    }
    assert attributes["Tenant"]["StringValue"] == "t1"  # every attribute stays in SQS
    assert attributes["ContentType"]["StringValue"] == "application/json"


@pytest.mark.s3
def test_a_reply_we_offload_has_the_extended_client_format(
    *, sqs: Any, s3: Any, bucket: str, queue_url: str, reply_queue: str, serve: Serve
) -> None:
    serve(queue_url, EchoBody(), offload=S3Offload(bucket=bucket, s3_client=s3, threshold="always"))
    correlation_id = uuid.uuid4().hex
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody='{"x":[1,2]}',
        MessageAttributes={
            "ReplyTo": {"DataType": "String", "StringValue": reply_queue},
            "CorrelationId": {"DataType": "String", "StringValue": correlation_id},
        },
    )
    reply = receive_one(sqs, reply_queue)
    match = re.fullmatch(
        r'\["software\.amazon\.payloadoffloading\.PayloadS3Pointer",'
        rf'\{{"s3BucketName":"{bucket}","s3Key":"(sqs-rpc/replies/{BINDING}/{UUID})"\}}\]',
        reply["Body"],
    )
    assert match is not None, reply["Body"]
    assert s3.get_object(Bucket=bucket, Key=match.group(1))["Body"].read() == b'{"x":[1,2]}'
    attributes = reply["MessageAttributes"]
    assert attributes["ExtendedPayloadSize"] == {"DataType": "Number", "StringValue": "11"}
    assert attributes["CorrelationId"]["StringValue"] == correlation_id
    assert attributes["Status"]["StringValue"] == "ok"


@pytest.mark.s3
@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
def test_the_server_reads_an_extended_client_request(
    *,
    sqs: Any,
    s3: Any,
    bucket: str,
    queue_url: str,
    reply_queue: str,
    serve: Serve,
    legacy: bool,
) -> None:
    poller = serve(
        queue_url,
        Reverse(),
        offload=S3Offload(bucket=bucket, s3_client=s3, extended_client_prefixes=EXTENDED),
    )
    request = extended_client_request(
        s3, bucket, json.dumps({"data": "abc" * 1000}), reply_to=reply_queue, legacy=legacy
    )
    sqs.send_message(QueueUrl=queue_url, **request)
    reply = receive_one(sqs, reply_queue)
    assert json.loads(reply["Body"]) == {"size": 3000, "data": "cba" * 1000}
    assert "ExtendedPayloadSize" not in reply["MessageAttributes"]  # small: not offloaded
    # Consumed: the request is deleted, then its object.
    wait_for(lambda: poller.stats().deleted == 1, timeout=20)
    wait_for(lambda: keys(s3, bucket) == [], timeout=20)


@pytest.mark.s3
def test_the_server_never_reads_a_bucket_off_its_allowlist(
    *,
    sqs: Any,
    s3: Any,
    make_bucket: Callable[[], str],
    make_queue: Callable[..., str],
    reply_queue: str,
    serve: Serve,
) -> None:
    mine, foreign = make_bucket(), make_bucket()
    queue_url, dlq = dead_letter_queue(sqs, make_queue)
    poller = serve(queue_url, Reverse(), offload=S3Offload(bucket=mine, s3_client=s3))
    request = extended_client_request(s3, foreign, '{"data":"x"}', reply_to=reply_queue)
    sqs.send_message(QueueUrl=queue_url, **request)
    # The caller is told once, and the request is left for redrive: it reaches the DLQ.
    error = json.loads(receive_one(sqs, reply_queue)["Body"])
    assert error["type"] == "DecodeError"
    assert f"bucket {foreign!r}" in error["message"]
    assert "allowlist" in error["message"]
    assert receive_one(sqs, dlq)["Body"] == request["MessageBody"]
    assert poller.stats().undecodable >= 1
    assert poller.stats().handled == 0
    assert len(keys(s3, foreign)) == 1  # never read, never deleted


@pytest.mark.s3
def test_a_missing_object_is_a_clear_error_and_the_request_is_left(
    *,
    sqs: Any,
    s3: Any,
    bucket: str,
    make_queue: Callable[..., str],
    reply_queue: str,
    serve: Serve,
) -> None:
    queue_url, dlq = dead_letter_queue(sqs, make_queue)
    poller = serve(
        queue_url,
        Reverse(),
        offload=S3Offload(bucket=bucket, s3_client=s3, extended_client_prefixes=EXTENDED),
    )
    request = extended_client_request(s3, bucket, '{"data":"x"}', reply_to=reply_queue)
    pointer = json.loads(request["MessageBody"])[1]
    s3.delete_object(Bucket=bucket, Key=pointer["s3Key"])  # consumed already, say
    sqs.send_message(QueueUrl=queue_url, **request)
    error = json.loads(receive_one(sqs, reply_queue)["Body"])
    assert error["type"] == "DecodeError"
    assert "does not exist" in error["message"]
    assert pointer["s3Key"] in error["message"]
    assert receive_one(sqs, dlq)["Body"] == request["MessageBody"]
    assert poller.stats().handled == 0


@pytest.mark.s3
def test_a_server_without_offload_refuses_a_pointer_and_names_the_fix(
    *, sqs: Any, s3: Any, bucket: str, queue_url: str, reply_queue: str, serve: Serve
) -> None:
    poller = serve(queue_url, Reverse())
    request = extended_client_request(s3, bucket, '{"data":"x"}', reply_to=reply_queue)
    sqs.send_message(QueueUrl=queue_url, **request)
    error = json.loads(receive_one(sqs, reply_queue)["Body"])
    assert "offload=S3Offload(" in error["message"]
    assert poller.stats().handled == 0


@pytest.mark.s3
def test_the_client_refuses_a_reply_from_a_bucket_off_its_allowlist(
    sqs: Any, s3: Any, make_bucket: Callable[[], str], queue_url: str, serve: Serve
) -> None:
    mine, theirs = make_bucket(), make_bucket()
    serve(queue_url, EchoBody(), offload=S3Offload(bucket=theirs, s3_client=s3, threshold="always"))
    with RpcClient(sqs_client=sqs, offload=S3Offload(bucket=mine, s3_client=s3)) as client:
        with pytest.raises(S3PayloadError, match="allowlist") as info:
            client.call(queue_url, {"a": 1}, timeout=30)
        assert info.value.bucket == theirs
    assert len(keys(s3, theirs)) == 1  # the client never touched it
    # With the server's bucket on the allowlist, the same reply is read, then deleted.
    allowed = S3Offload(bucket=mine, s3_client=s3, allowed_buckets=(theirs,))
    with RpcClient(sqs_client=sqs, offload=allowed) as client:
        assert client.call(queue_url, {"a": 2}, timeout=30) == {"a": 2}
    wait_for(lambda: len(keys(s3, theirs)) == 1, timeout=20)  # only the refused one is left


@pytest.mark.s3
def test_a_client_without_offload_fails_an_offloaded_reply_clearly(
    sqs: Any, s3: Any, bucket: str, queue_url: str, serve: Serve
) -> None:
    serve(queue_url, EchoBody(), offload=S3Offload(bucket=bucket, s3_client=s3, threshold="always"))
    with RpcClient(sqs_client=sqs) as client, pytest.raises(S3PayloadError, match="S3Offload"):
        client.call(queue_url, {"a": 1}, timeout=30)


@pytest.mark.s3
def test_a_failed_delete_is_logged_and_the_reply_still_arrives(
    *,
    sqs: Any,
    s3: Any,
    endpoint: Endpoint,
    bucket: str,
    queue_url: str,
    serve: Serve,
    caplog: pytest.LogCaptureFixture,
) -> None:
    serve(queue_url, EchoBody(), offload=S3Offload(bucket=bucket, s3_client=s3, threshold="always"))
    refusing = endpoint.s3_client()
    # botocore answers DeleteObject itself, with AccessDenied: S3 never sees the request.
    refusing.meta.events.register("before-send.s3.DeleteObject", _deny)
    offload = S3Offload(bucket=bucket, s3_client=refusing)
    with caplog.at_level(logging.WARNING, logger="sqs_rpc"):
        with RpcClient(sqs_client=sqs, offload=offload) as client:
            assert client.call(queue_url, {"a": "b" * 2 * MiB}, timeout=30) == {"a": "b" * 2 * MiB}
        wait_for(lambda: "could not delete consumed payload" in caplog.text, timeout=20)
    assert "AccessDenied" in caplog.text
    # The request's object goes once the server's delete of the request is through; the
    # reply's stays, for the lifecycle rule.
    wait_for(lambda: len(keys(s3, bucket)) == 1, timeout=20)


@pytest.mark.s3
def test_a_request_s3_refuses_fails_the_call_before_sending(
    *, endpoint: Endpoint, sqs: Any, s3: Any, bucket: str, queue_url: str
) -> None:
    refusing = endpoint.s3_client()
    refusing.meta.events.register("before-send.s3.PutObject", _deny)
    with RpcClient(sqs_client=sqs, offload=S3Offload(bucket=bucket, s3_client=refusing)) as client:
        with pytest.raises(SqsError, match="AccessDenied") as info:
            client.call(queue_url, "x" * 2 * MiB, timeout=10)
        assert info.value.operation == "PutObject"
        assert client.pending_calls == 0
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
    assert keys(s3, bucket) == []


def _deny(**_: Any) -> AWSResponse:
    """A botocore before-send hook: answer AccessDenied without sending the request."""
    body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    return AWSResponse("", 403, {}, _Raw(body))


class _Raw:
    """The raw body of a canned botocore response."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


@pytest.mark.s3
def test_offload_leaves_room_for_its_attribute(sqs: Any, s3: Any, bucket: str) -> None:
    offload = S3Offload(bucket=bucket, s3_client=s3)
    with RpcClient(sqs_client=sqs, offload=offload) as client:
        with pytest.raises(ConfigurationError, match="at most 2"):
            client.publish(
                "https://sqs.us-east-1.amazonaws.com/1/q",
                {},
                attributes={"a": "1", "b": "2", "c": "3"},
            )
        with pytest.raises(ConfigurationError, match="reserved"):
            client.publish(
                "https://sqs.us-east-1.amazonaws.com/1/q",
                {},
                attributes={"ExtendedPayloadSize": "1"},
            )
        assert client.reply_queue_url is None
    assert keys(s3, bucket) == []


@pytest.mark.s3
def test_remote_error_replies_still_work_with_offload(
    sqs: Any, s3: Any, bucket: str, queue_url: str, serve: Serve
) -> None:
    class Fails(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            raise ValueError("no " + "!" * (2 * MiB))

    offload = S3Offload(bucket=bucket, s3_client=s3)
    serve(queue_url, Fails(), offload=offload)
    with RpcClient(sqs_client=sqs, offload=offload) as client, pytest.raises(RemoteError) as info:
        client.call(queue_url, {"a": 1}, timeout=30)
    assert info.value.error_type == "ValueError"
    assert len(info.value.remote_message) == 3 + 2 * MiB  # an error reply goes through S3 too
    wait_for(lambda: keys(s3, bucket) == [], timeout=20)


# -- with AWS's own Python extended client, in a subprocess ---------------------------------------

needs_extended_client = pytest.mark.skipif(
    importlib.util.find_spec("sqs_extended_client") is None,
    reason="install the test extra: amazon-sqs-extended-client",
)
ROOT = Path(__file__).resolve().parents[2]


def peer(endpoint: Endpoint, *args: str) -> subprocess.Popen[str]:
    # Never imported here: sqs_extended_client replaces boto3.Session for its whole process.
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.extended_client_peer",
            args[0],
            endpoint.endpoint_url,
            *args[1:],
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.s3
@needs_extended_client
def test_an_extended_client_caller_gets_its_large_reply_from_our_server(
    *, endpoint: Endpoint, s3: Any, bucket: str, queue_url: str, reply_queue: str, serve: Serve
) -> None:
    serve(
        queue_url,
        Reverse(),
        offload=S3Offload(bucket=bucket, s3_client=s3, extended_client_prefixes=EXTENDED),
    )
    data = "xyz" * (MiB // 2)  # 1.5 MiB: our reply goes through S3 too
    process = peer(endpoint, "call", bucket, queue_url, reply_queue)
    stdout, stderr = process.communicate(json.dumps({"data": data}), timeout=60)
    assert process.returncode == 0, stderr
    assert json.loads(stdout) == {"size": len(data), "data": data[::-1]}
    # Our server deleted the request's object; the extended client deleted the reply's.
    wait_for(lambda: keys(s3, bucket) == [], timeout=20)


@pytest.mark.s3
@needs_extended_client
def test_our_client_calls_an_extended_client_server(
    *, endpoint: Endpoint, sqs: Any, s3: Any, bucket: str, queue_url: str
) -> None:
    process = peer(endpoint, "serve", bucket, queue_url)
    try:
        offload = S3Offload(
            bucket=bucket, s3_client=s3, threshold="always", extended_client_prefixes=EXTENDED
        )
        with RpcClient(sqs_client=sqs, offload=offload) as client:
            assert client.call(queue_url, {"n": [1, 2]}, timeout=30) == {"echo": {"n": [1, 2]}}
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # The extended client deleted the request's object; our client deleted the reply's.
    wait_for(lambda: keys(s3, bucket) == [], timeout=20)


@pytest.mark.s3
def test_a_lambda_responder_reads_an_offloaded_request_and_deletes_it_after_the_batch(
    sqs: Any, s3: Any, bucket: str, queue_url: str
) -> None:
    offload = S3Offload(bucket=bucket, s3_client=s3)
    data = "l" * (2 * MiB)
    with RpcClient(sqs_client=sqs, offload=offload) as client:
        future = client.call_async(queue_url, {"data": data}, timeout=30)
        (request_key,) = keys(s3, bucket)
        events: list[dict[str, Any]] = []

        def received() -> bool:
            events.append(receive_event(sqs, queue_url, wait_time_seconds=1))
            return bool(events[-1]["Records"])

        wait_for(received, timeout=20)
        event = events[-1]
        with LambdaResponder(Reverse(), sqs_client=sqs, offload=offload) as responder:
            assert responder(event, None) == {"batchItemFailures": []}
        # The batch is done: its request's object is gone (Lambda deletes the record next).
        assert request_key not in keys(s3, bucket)
        assert future.result(timeout=30) == {"size": 2 * MiB, "data": data[::-1]}
    wait_for(lambda: keys(s3, bucket) == [], timeout=20)  # the reply's, once received
