"""S3 pointers are attacker input: what a sender can and cannot make a server or a client do.

Anyone who can send to a request queue (or drop a message into a reply queue) writes the
pointer, the size attribute and the correlation id. These tests play that sender against
moto's SQS and S3 over HTTP, and check that a side reads and deletes only the object its peer
wrote for that very message, within ``max_payload_bytes``, and only after the reply policy and
the deadline let the message through.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sqs_rpc import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    ConfigurationError,
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    PayloadTooLarge,
    RemoteError,
    RequestMessage,
    RpcClient,
    S3Offload,
    S3PayloadError,
)
from tests.support.helpers import Endpoint, messages_in, wait_for

Serve = Callable[..., MessagePoller]
SECRET = '{"secret":"s3cr3t"}'

pytestmark = pytest.mark.s3


class Echo(MessageHandler):
    """The handler an attacker hopes for: it hands the request's body back to the sender."""

    def __init__(self) -> None:
        self.calls = 0

    def handle(self, message: IncomingMessage) -> Any:
        self.calls += 1
        return message.body


class S3Calls:
    """Counts the S3 operations a boto3 client makes (a botocore event hook; nothing faked)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.counts: Counter[str] = Counter()
        client.meta.events.register("before-call.s3", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.counts[model.name] += 1


@pytest.fixture
def s3(endpoint: Endpoint) -> Any:
    return endpoint.s3_client()


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    name = f"sqs-rpc-sec-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    yield name
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def server_s3(endpoint: Endpoint) -> S3Calls:
    """The server's own S3 client, whose requests the tests count."""
    return S3Calls(endpoint.s3_client())


def keys(s3: Any, bucket: str) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def pointer_body(bucket: str, key: str) -> str:
    document = [
        "software.amazon.payloadoffloading.PayloadS3Pointer",
        {"s3BucketName": bucket, "s3Key": key},
    ]
    return json.dumps(document)


def forged(
    body: str,
    size: int | str,
    *,
    reply_to: str | None,
    correlation_id: str | None = None,
    deadline_ms: int | None = None,
) -> dict[str, Any]:
    """SendMessage arguments of a request with an S3 pointer, every field the sender's choice."""
    attributes = {
        "ExtendedPayloadSize": {"DataType": "Number", "StringValue": str(size)},
        "CorrelationId": string(correlation_id or uuid.uuid4().hex),
    }
    if reply_to is not None:
        attributes["ReplyTo"] = string(reply_to)
    if deadline_ms is not None:
        attributes["Deadline"] = {"DataType": "Number", "StringValue": str(deadline_ms)}
    return {"MessageBody": body, "MessageAttributes": attributes}


def receive_one(sqs: Any, queue_url: str) -> dict[str, Any]:
    def receive() -> Any:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MessageAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages")
        return messages[0] if messages else None

    message: dict[str, Any] = wait_for(receive, timeout=30)
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return message


def genuine_request(
    sqs: Any, s3: Any, bucket: str, make_queue: Callable[..., str], payload: Any
) -> dict[str, Any]:
    """A request as an sqs-rpc client offloads it, taken off a scratch queue: its pointer is
    one a real client wrote, for its own correlation id (what an attacker could copy)."""
    scratch = make_queue()
    offload = S3Offload(bucket=bucket, s3_client=s3, threshold="always")
    with RpcClient(sqs_client=sqs, offload=offload) as client:
        client.publish(scratch, payload)
    return receive_one(sqs, scratch)


def put_secret(s3: Any, bucket: str, key: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=SECRET.encode())


def error_of(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply["MessageAttributes"]["Status"]["StringValue"] == "error", reply["Body"]
    error: dict[str, Any] = json.loads(reply["Body"])
    return error


# -- a server reads only the object written for the request ------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "config/secret.json",  # any object in an allowed bucket
        "2f1c9c4e-7d43-4b8e-9a41-8f2f3c0e5d11",  # an extended client's key, not allowed here
        "sqs-rpc/replies/0123456789abcdef/2f1c9c4e-7d43-4b8e-9a41-8f2f3c0e5d11",  # a reply's
    ],
)
def test_a_server_never_reads_or_deletes_an_object_not_written_for_the_request(
    *,
    sqs: Any,
    s3: Any,
    bucket: str,
    server_s3: S3Calls,
    queue_url: str,
    reply_queue: str,
    serve: Serve,
    key: str,
) -> None:
    put_secret(s3, bucket, key)
    handler = Echo()
    poller = serve(queue_url, handler, offload=S3Offload(bucket=bucket, s3_client=server_s3.client))
    sqs.send_message(
        QueueUrl=queue_url,
        **forged(pointer_body(bucket, key), len(SECRET), reply_to=reply_queue),
    )
    reply = receive_one(sqs, reply_queue)
    error = error_of(reply)
    assert error["type"] == "DecodeError"
    assert "not an object written for this request" in error["message"]
    assert "s3cr3t" not in reply["Body"]
    poller.stop()
    assert handler.calls == 0
    assert server_s3.counts["GetObject"] == 0
    assert key in keys(s3, bucket)  # never deleted


def test_a_pointer_copied_into_another_request_is_not_followed(
    *,
    sqs: Any,
    s3: Any,
    bucket: str,
    server_s3: S3Calls,
    queue_url: str,
    reply_queue: str,
    make_queue: Callable[..., str],
    serve: Serve,
) -> None:
    # Someone else's request, its body in S3; the attacker copies its pointer and size into a
    # request of its own (its own correlation id, its own reply queue).
    victim = genuine_request(sqs, s3, bucket, make_queue, {"card": "4111"})
    (stored,) = keys(s3, bucket)
    handler = Echo()
    poller = serve(queue_url, handler, offload=S3Offload(bucket=bucket, s3_client=server_s3.client))
    size = victim["MessageAttributes"]["ExtendedPayloadSize"]["StringValue"]
    sqs.send_message(QueueUrl=queue_url, **forged(victim["Body"], size, reply_to=reply_queue))
    reply = receive_one(sqs, reply_queue)
    assert "another correlation id" in error_of(reply)["message"]
    assert "4111" not in reply["Body"]
    poller.stop()
    assert handler.calls == 0
    assert server_s3.counts["GetObject"] == 0
    assert keys(s3, bucket) == {stored}


def test_an_object_of_another_size_than_its_pointer_says_is_not_read(
    *,
    sqs: Any,
    s3: Any,
    bucket: str,
    queue_url: str,
    reply_queue: str,
    make_queue: Callable[..., str],
    serve: Serve,
) -> None:
    request = genuine_request(sqs, s3, bucket, make_queue, {"data": "x" * 5000})
    (stored,) = keys(s3, bucket)
    handler = Echo()
    poller = serve(queue_url, handler, offload=S3Offload(bucket=bucket, s3_client=s3))
    correlation_id = request["MessageAttributes"]["CorrelationId"]["StringValue"]
    sqs.send_message(
        QueueUrl=queue_url,
        **forged(request["Body"], 10, reply_to=reply_queue, correlation_id=correlation_id),
    )
    error = error_of(receive_one(sqs, reply_queue))
    assert "ExtendedPayloadSize says 10" in error["message"], error
    poller.stop()
    assert handler.calls == 0
    assert keys(s3, bucket) == {stored}  # left for the dead-letter queue, and the DLQ's reader


def test_an_expired_request_is_dropped_unread_and_only_its_own_object_deleted(
    *,
    sqs: Any,
    s3: Any,
    bucket: str,
    server_s3: S3Calls,
    queue_url: str,
    reply_queue: str,
    serve: Serve,
) -> None:
    # A forged pointer on a request whose deadline has passed: no handler runs, so nothing
    # would ever look at the body, yet the server read it and deleted it all the same. Now
    # the pointer is refused unread (left for redrive), before its deadline is looked at.
    put_secret(s3, bucket, "config/secret.json")
    past = int((time.time() - 60) * 1000)
    sqs.send_message(
        QueueUrl=queue_url,
        **forged(
            pointer_body(bucket, "config/secret.json"),
            len(SECRET),
            reply_to=reply_queue,
            deadline_ms=past,
        ),
    )
    # And a genuine call that timed out before a server ran: its object is garbage now.
    offload = S3Offload(bucket=bucket, s3_client=s3, threshold="always")
    with RpcClient(sqs_client=sqs, offload=offload) as client:
        future = client.call_async(queue_url, {"late": True}, timeout=0.5)
        with pytest.raises(Exception, match="no reply within"):
            future.result(timeout=10)
    assert len(keys(s3, bucket)) == 2
    handler = Echo()
    poller = serve(
        queue_url,
        handler,
        offload=S3Offload(bucket=bucket, s3_client=server_s3.client),
        clock_skew_tolerance=0,
    )
    wait_for(
        lambda: (
            (poller.stats().expired, poller.stats().deleted, poller.stats().undecodable)
            >= (1, 1, 1)
        ),
        timeout=20,
    )
    poller.stop()  # the outbox is flushed: what follows a delete has run
    assert handler.calls == 0
    assert server_s3.counts["GetObject"] == 0  # expired: not worth a read
    assert keys(s3, bucket) == {"config/secret.json"}  # the genuine one went, unread


def test_a_refused_reply_queue_costs_no_s3_read(
    *, sqs: Any, s3: Any, bucket: str, server_s3: S3Calls, queue_url: str, serve: Serve
) -> None:
    handler = Echo()
    poller = serve(
        queue_url,
        handler,
        offload=S3Offload(bucket=bucket, s3_client=server_s3.client),
        reply_queue_prefix="not-this-client-",
    )
    offload = S3Offload(bucket=bucket, s3_client=s3, threshold="always")
    with RpcClient(sqs_client=sqs, offload=offload) as client:
        client.call_async(queue_url, {"a": 1}, timeout=30)
        wait_for(lambda: poller.stats().rejected >= 1, timeout=20)
    poller.stop()
    assert handler.calls == 0
    assert server_s3.counts["GetObject"] == 0


# -- the size cap ------------------------------------------------------------------------------


def test_a_request_over_max_payload_bytes_is_refused_unread_with_an_error_reply(
    *, sqs: Any, s3: Any, bucket: str, server_s3: S3Calls, queue_url: str, serve: Serve
) -> None:
    handler = Echo()
    small = S3Offload(bucket=bucket, s3_client=server_s3.client, max_payload_bytes=1024)
    poller = serve(queue_url, handler, offload=small)
    offload = S3Offload(bucket=bucket, s3_client=s3, threshold="always")
    with RpcClient(sqs_client=sqs, offload=offload) as client, pytest.raises(RemoteError) as info:
        client.call(queue_url, {"data": "x" * 4096}, timeout=30)
    assert info.value.error_type == "DecodeError"
    assert "over this side's max_payload_bytes of 1,024" in info.value.remote_message
    poller.stop()
    assert handler.calls == 0
    assert server_s3.counts["GetObject"] == 0


def test_a_pointer_declaring_a_huge_body_is_refused_before_s3_is_asked(
    *,
    sqs: Any,
    s3: Any,
    bucket: str,
    server_s3: S3Calls,
    queue_url: str,
    reply_queue: str,
    serve: Serve,
) -> None:
    put_secret(s3, bucket, "big")
    poller = serve(queue_url, Echo(), offload=S3Offload(bucket=bucket, s3_client=server_s3.client))
    for size in (10**12, "-1", "1e3", "7_000"):
        sqs.send_message(
            QueueUrl=queue_url, **forged(pointer_body(bucket, "big"), size, reply_to=reply_queue)
        )
    for _ in range(4):
        assert error_of(receive_one(sqs, reply_queue))["type"] == "DecodeError"
    poller.stop()
    assert server_s3.counts["GetObject"] == 0


def test_the_default_max_payload_bytes_is_64_mib(s3: Any) -> None:
    offload = S3Offload(bucket="b-1", s3_client=s3, extended_client_prefixes=["", "x/", "x/"])
    assert offload.max_payload_bytes == DEFAULT_MAX_PAYLOAD_BYTES == 64 * 1024 * 1024
    assert offload.extended_client_prefixes == ("", "x/")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_payload_bytes": 0}, "max_payload_bytes="),
        ({"max_payload_bytes": 5 * 1024**3 + 1}, "max_payload_bytes="),
        ({"max_payload_bytes": True}, "max_payload_bytes="),
        ({"max_payload_bytes": 1.5}, "max_payload_bytes="),
        ({"extended_client_prefixes": "sqs-rpc/"}, "one string"),
        ({"extended_client_prefixes": ("has space/",)}, "extended_client_prefixes entry"),
        ({"extended_client_prefixes": ("x" * 989,)}, "at most 988"),
        ({"prefix": "x" * 963}, "at most 962"),  # room for the folder, binding and UUID
    ],
)
def test_bad_settings_are_refused_at_construction(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        S3Offload(bucket="b-1", **options)


def test_a_body_over_max_payload_bytes_is_never_stored(
    *, sqs: Any, s3: Any, bucket: str, queue_url: str
) -> None:
    offload = S3Offload(bucket=bucket, s3_client=s3, threshold="always", max_payload_bytes=1024)
    with (
        RpcClient(sqs_client=sqs, offload=offload) as client,
        pytest.raises(PayloadTooLarge, match="max_payload_bytes") as info,
    ):
        client.call(queue_url, "x" * 2048, timeout=10)
    assert info.value.limit == 1024
    assert keys(s3, bucket) == set()
    assert messages_in(sqs, queue_url) == 0


def test_a_reply_over_the_clients_max_payload_bytes_fails_the_call_unread(
    *, sqs: Any, s3: Any, bucket: str, queue_url: str, serve: Serve
) -> None:
    serve(queue_url, Echo(), offload=S3Offload(bucket=bucket, s3_client=s3, threshold="always"))
    client_s3 = S3Calls(s3)
    small = S3Offload(
        bucket=bucket, s3_client=client_s3.client, threshold=None, max_payload_bytes=1024
    )
    with (
        RpcClient(sqs_client=sqs, offload=small) as client,
        pytest.raises(S3PayloadError, match="max_payload_bytes"),
    ):
        client.call(queue_url, "y" * 2000, timeout=30)
    assert client_s3.counts["GetObject"] == 0
    assert len(keys(s3, bucket)) == 1  # the reply's object: not read, so not deleted


# -- a client reads only a reply to a waiting call -----------------------------------------------


def test_a_client_never_reads_or_deletes_an_object_a_forged_reply_points_to(
    *, sqs: Any, s3: Any, bucket: str, queue_url: str
) -> None:
    put_secret(s3, bucket, "config/secret.json")
    pointer = pointer_body(bucket, "config/secret.json")
    client_s3 = S3Calls(s3)
    with RpcClient(
        sqs_client=sqs, offload=S3Offload(bucket=bucket, s3_client=client_s3.client)
    ) as (client):
        # A call waits (nothing serves queue_url); the attacker knows its id (from a log line,
        # say: here, from the request). A chosen, guessable id would not do: a call with one
        # takes no reply without its nonce (tests/integration/test_correlation.py).
        waiting = client.send(RequestMessage(queue_url, 1), timeout=30)
        assert client.reply_queue_url is not None
        (request,) = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])[
            "Messages"
        ]
        known = request["MessageAttributes"]["CorrelationId"]["StringValue"]
        reply = {"ContentType": string("application/json"), "Status": string("ok")}
        size = {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": str(len(SECRET))}}
        for correlation_id in ("nobody-waits-for-this", known):
            sqs.send_message(
                QueueUrl=client.reply_queue_url,
                MessageBody=pointer,
                MessageAttributes={**reply, **size, "CorrelationId": string(correlation_id)},
            )
        with pytest.raises(S3PayloadError, match="not an object written for this reply"):
            waiting.result(timeout=30)
        reply_queue = client.reply_queue_url
        wait_for(lambda: messages_in(sqs, reply_queue) == 0, timeout=20)
    # The client is closed: every delete it had queued, and what follows them, has run.
    assert client_s3.counts["GetObject"] == 0
    assert "config/secret.json" in keys(s3, bucket)
