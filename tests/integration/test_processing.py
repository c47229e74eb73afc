"""One message's decision table over HTTP: deadlines, the reply cache, retries and redrive."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, RemoteError, Retry, RpcClient
from tests.support.helpers import messages_in, wait_for

Serve = Callable[..., MessagePoller]


class Counting(MessageHandler):
    def __init__(self) -> None:
        self.calls: list[IncomingMessage] = []

    def handle(self, message: IncomingMessage) -> Any:
        self.calls.append(message)
        return {"n": len(self.calls), "remaining": message.remaining_time()}


def send_request(
    sqs: Any,
    queue_url: str,
    reply_to: str,
    *,
    correlation_id: str | None = None,
    deadline_ms: int | None = None,
    body: str = "1",
) -> str:
    attributes = {
        "ReplyTo": {"DataType": "String", "StringValue": reply_to},
        "CorrelationId": {"DataType": "String", "StringValue": correlation_id or uuid.uuid4().hex},
    }
    if deadline_ms is not None:
        attributes["Deadline"] = {"DataType": "Number", "StringValue": str(deadline_ms)}
    sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=attributes)
    return attributes["CorrelationId"]["StringValue"]


def receive_replies(sqs: Any, reply_queue: str, count: int, timeout: float = 20) -> list[Any]:
    replies: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(replies) < count and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=reply_queue,
            WaitTimeSeconds=1,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
        )
        for message in response.get("Messages", []):
            replies.append(message)
            sqs.delete_message(QueueUrl=reply_queue, ReceiptHandle=message["ReceiptHandle"])
    return replies


# -- deadlines -------------------------------------------------------------------------------


def test_request_past_its_deadline_is_deleted_without_running(
    sqs: Any, queue_url: str, reply_queue: str, serve: Serve
) -> None:
    handler = Counting()
    past = int((time.time() - 5) * 1000)
    send_request(sqs, queue_url, reply_queue, deadline_ms=past)
    poller = serve(queue_url, handler)
    wait_for(lambda: poller.stats().expired == 1, timeout=20)
    wait_for(lambda: messages_in(sqs, queue_url) == 0, timeout=20)
    assert handler.calls == []
    assert receive_replies(sqs, reply_queue, 1, timeout=1) == []  # the caller gave up


def test_handler_reads_its_remaining_time(client: RpcClient, queue_url: str, serve: Serve) -> None:
    serve(queue_url, Counting())
    reply = client.call(queue_url, 1, timeout=20)
    assert 0 < reply["remaining"] <= 20


# -- the reply cache (duplicates) ------------------------------------------------------------


def test_redelivered_request_gets_the_same_reply_without_a_second_run(
    sqs: Any, queue_url: str, reply_queue: str, serve: Serve
) -> None:
    handler = Counting()
    poller = serve(queue_url, handler)
    correlation_id = send_request(sqs, queue_url, reply_queue)
    (first,) = receive_replies(sqs, reply_queue, 1)
    # SQS delivers at least once: the same request again (same correlation id).
    send_request(sqs, queue_url, reply_queue, correlation_id=correlation_id)
    (second,) = receive_replies(sqs, reply_queue, 1)
    assert len(handler.calls) == 1
    assert second["Body"] == first["Body"]
    assert second["MessageAttributes"]["CorrelationId"]["StringValue"] == correlation_id
    assert poller.stats().duplicates == 1
    wait_for(lambda: messages_in(sqs, queue_url) == 0)


def test_reply_cache_can_be_turned_off(
    sqs: Any, queue_url: str, reply_queue: str, serve: Serve
) -> None:
    handler = Counting()
    serve(queue_url, handler, reply_cache_ttl=0)
    correlation_id = send_request(sqs, queue_url, reply_queue)
    receive_replies(sqs, reply_queue, 1)
    wait_for(lambda: messages_in(sqs, queue_url) == 0)
    send_request(sqs, queue_url, reply_queue, correlation_id=correlation_id)
    receive_replies(sqs, reply_queue, 1)
    assert len(handler.calls) == 2


def test_client_drops_a_duplicate_reply(
    sqs: Any, client: RpcClient, queue_url: str, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="sqs_rpc._client.reply_poller")
    handler = Counting()
    serve(queue_url, handler)
    assert client.call(queue_url, 1, timeout=20)["n"] == 1
    (request,) = handler.calls
    assert request.reply_to is not None
    # A second copy of the first reply arrives (a server resent it after a failed delete).
    sqs.send_message(
        QueueUrl=request.reply_to,
        MessageBody=json.dumps({"n": 99, "remaining": None}),
        MessageAttributes={
            "CorrelationId": {"DataType": "String", "StringValue": request.correlation_id},
            "Status": {"DataType": "String", "StringValue": "ok"},
        },
    )
    wait_for(lambda: "dropping reply for unknown or expired call" in caplog.text, timeout=30)
    assert client.call(queue_url, 2, timeout=20)["n"] == 2
    assert client.pending_calls == 0


# -- poison messages: Retry and the dead-letter queue ----------------------------------------


def _queue_with_dlq(sqs: Any, make_queue: Callable[..., str], max_receive_count: int) -> Any:
    dlq = make_queue()
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receive_count)})
    return make_queue(RedrivePolicy=policy, VisibilityTimeout="1"), dlq


class AlwaysRetry(MessageHandler):
    def __init__(self) -> None:
        self.deliveries: list[tuple[int, bool]] = []

    def handle(self, message: IncomingMessage) -> Any:
        self.deliveries.append((message.receive_count, message.last_attempt))
        raise Retry("database unavailable", delay=0)


@pytest.mark.timeout(60)
def test_retry_redelivers_until_the_dead_letter_queue_and_tells_the_caller_last(
    sqs: Any, make_queue: Callable[..., str], serve: Serve, client: RpcClient
) -> None:
    queue_url, dlq = _queue_with_dlq(sqs, make_queue, max_receive_count=3)
    handler = AlwaysRetry()
    poller = serve(queue_url, handler)
    with pytest.raises(RemoteError) as info:
        client.call(queue_url, {"order": 7}, timeout=30)
    assert info.value.error_type == "Retry"
    assert "database unavailable" in info.value.remote_message
    # SQS's redrive policy moves the request at its next receive.
    wait_for(lambda: messages_in(sqs, dlq) == 1, timeout=30)
    assert handler.deliveries == [(1, False), (2, False), (3, True)]
    stats = poller.stats()
    assert stats.retried == 3
    assert stats.deleted == 0


def test_retried_one_way_message_is_redelivered(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    done = []

    class FailOnce(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            if message.receive_count == 1:
                raise Retry("not yet", delay=0)
            done.append(message.body)

    serve(queue_url, FailOnce())
    client.publish(queue_url, "job")
    wait_for(lambda: done == ["job"], timeout=30)


def test_start_warns_when_the_request_queue_has_no_redrive_policy(
    queue_url: str, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    serve(queue_url, Counting())
    assert "has no redrive policy" in caplog.text


def test_retry_delay_is_checked() -> None:
    with pytest.raises(ValueError, match="delay"):
        Retry("x", delay=-1)


def test_a_new_request_reusing_a_correlation_id_is_not_a_duplicate(
    sqs: Any, queue_url: str, reply_queue: str, serve: Serve
) -> None:
    handler = Counting()
    serve(queue_url, handler)
    correlation_id = send_request(sqs, queue_url, reply_queue, body='"first"')
    receive_replies(sqs, reply_queue, 1)
    send_request(sqs, queue_url, reply_queue, correlation_id=correlation_id, body='"second"')
    (reply,) = receive_replies(sqs, reply_queue, 1)
    assert [call.body for call in handler.calls] == ["first", "second"]
    assert json.loads(reply["Body"])["n"] == 2


def test_reply_over_max_message_bytes_becomes_an_error_reply(
    client: RpcClient, queue_url: str, serve: Serve, sqs: Any
) -> None:
    class Huge(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            return "x" * (1024 * 1024 + 1)  # SQS takes at most 1 MiB

    serve(queue_url, Huge())
    with pytest.raises(RemoteError) as info:
        client.call(queue_url, 1, timeout=30)
    assert info.value.error_type == "PayloadTooLarge"  # checked before sending
    assert info.value.details is not None
    assert info.value.details["limit"] == 1024 * 1024
    wait_for(lambda: messages_in(sqs, queue_url) == 0)


def test_reply_refused_by_sqs_as_too_large_becomes_an_error_reply(
    queue_url: str, make_queue: Callable[..., str], serve: Serve, sqs: Any
) -> None:
    # A reply queue configured smaller than SQS's maximum: the server's own check passes,
    # SQS refuses the reply, and the caller still gets an error instead of a redelivery loop.
    reply_queue = make_queue(f"sqs-rpc-reply-{uuid.uuid4().hex}", MaximumMessageSize="1024")

    class Big(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            return "x" * 4096

    serve(queue_url, Big())
    send_request(sqs, queue_url, reply_queue, correlation_id="big")
    (reply,) = receive_replies(sqs, reply_queue, 1)
    assert reply["MessageAttributes"]["Status"]["StringValue"] == "error"
    assert json.loads(reply["Body"])["type"] == "EncodeError"
    assert "more than SQS accepts" in json.loads(reply["Body"])["message"]
    wait_for(lambda: messages_in(sqs, queue_url) == 0)
