"""End to end over HTTP: RpcClient -> SQS-compatible server -> MessagePoller -> reply."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import (
    ClientClosedError,
    ConfigurationError,
    DecodeError,
    EncodeError,
    IncomingMessage,
    JsonCodec,
    MessageHandler,
    MessagePoller,
    RemoteError,
    RequestMessage,
    RpcClient,
    RpcTimeout,
)
from sqs_rpc._loop import owner_id
from tests.support.handlers import Echo, Gate
from tests.support.helpers import wait_for

Serve = Callable[..., MessagePoller]


class Failing(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        raise KeyError("missing-thing")


def test_call_returns_the_reply(client: RpcClient, queue_url: str, serve: Serve) -> None:
    serve(queue_url, Echo())
    assert client.call(queue_url, {"x": 1}, timeout=10) == {"echo": {"x": 1}}


def test_handler_sees_payload_attributes_and_deadline(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    handler = Echo()
    serve(queue_url, handler)
    before = time.time()
    client.call(queue_url, [1, 2], timeout=10, attributes={"Tenant": "acme"})
    (message,) = handler.seen
    assert message.body == [1, 2]
    assert message.attributes == {"Tenant": "acme"}
    assert message.reply_to == client.reply_queue_url
    assert message.deadline is not None
    assert before + 9 < message.deadline < time.time() + 10.5
    remaining = message.remaining_time()
    assert remaining is not None
    assert 0 < remaining <= 10


def test_call_async_returns_a_future(client: RpcClient, queue_url: str, serve: Serve) -> None:
    serve(queue_url, Echo())
    futures = [client.call_async(queue_url, i) for i in range(20)]
    assert [f.result(timeout=10) for f in futures] == [{"echo": i} for i in range(20)]


def test_send_request_message(client: RpcClient, queue_url: str, serve: Serve) -> None:
    handler = Echo()
    serve(queue_url, handler)
    future = client.send(RequestMessage(queue_url, "hi", correlation_id="my-id"), timeout=10)
    assert future.result(timeout=10) == {"echo": "hi"}
    assert handler.seen[0].correlation_id == "my-id"


@pytest.mark.timeout(120)
def test_handler_exception_becomes_remote_error(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    serve(queue_url, Failing())
    with pytest.raises(RemoteError) as info:
        client.call(queue_url, {}, timeout=10)
    assert info.value.error_type == "KeyError"
    assert "missing-thing" in info.value.remote_message
    assert info.value.correlation_id


def test_traceback_is_sent_when_asked(client: RpcClient, queue_url: str, serve: Serve) -> None:
    serve(queue_url, Failing(), include_traceback=True)
    with pytest.raises(RemoteError) as info:
        client.call(queue_url, {}, timeout=10)
    assert info.value.details is not None
    assert "Traceback" in info.value.details["traceback"]


def test_unencodable_return_value_becomes_an_error_reply(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    class ReturnsSet(MessageHandler):
        def handle(self, message: IncomingMessage) -> Any:
            return {1, 2}

    serve(queue_url, ReturnsSet())
    with pytest.raises(RemoteError) as info:
        client.call(queue_url, {}, timeout=10)
    assert info.value.error_type == "EncodeError"


def test_timeout_when_nobody_answers(client: RpcClient, queue_url: str) -> None:
    # The send is part of the timeout: on a loaded machine 0.3 s did not always cover it.
    with pytest.raises(RpcTimeout, match="no reply"):
        client.call(queue_url, {}, timeout=1)
    future = client.call_async(queue_url, {}, timeout=1)
    with pytest.raises(RpcTimeout):
        future.result(timeout=10)  # failed by the timer, not by this wait
    assert client.pending_calls == 0


def test_late_reply_is_dropped_and_does_not_reach_the_next_call(
    client: RpcClient, queue_url: str, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="sqs_rpc")
    slow = Gate()
    serve(queue_url, slow)
    with pytest.raises(RpcTimeout):
        client.call(queue_url, "first", timeout=0.5)
    slow.release.set()  # the first reply now arrives, late
    assert client.call(queue_url, "second", timeout=10) == "second"
    wait_for(lambda: "unknown or expired" in caplog.text)


def test_unknown_reply_is_deleted_and_logged(
    client: RpcClient, queue_url: str, serve: Serve, sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="sqs_rpc")
    serve(queue_url, Echo())
    client.call(queue_url, 1)
    reply_queue = client.reply_queue_url
    assert reply_queue is not None
    sqs.send_message(
        QueueUrl=reply_queue,
        MessageBody="1",
        MessageAttributes={
            "CorrelationId": {"DataType": "String", "StringValue": "nobody"},
            "Status": {"DataType": "String", "StringValue": "ok"},
        },
    )
    wait_for(lambda: "unknown or expired call nobody" in caplog.text)
    assert client.call(queue_url, 2) == {"echo": 2}


def test_publish_is_one_way(client: RpcClient, queue_url: str, serve: Serve) -> None:
    handler = Echo()
    serve(queue_url, handler)
    message_id = client.publish(queue_url, {"fire": "forget"})
    assert isinstance(message_id, str)
    assert message_id
    wait_for(lambda: handler.seen)
    assert handler.seen[0].one_way
    assert handler.seen[0].body == {"fire": "forget"}


def test_a_publish_only_client_creates_no_queue(sqs: Any, queue_url: str) -> None:
    with RpcClient(sqs_client=sqs) as rpc:
        rpc.publish(queue_url, 1)
        assert rpc.reply_queue_url is None
    assert sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])


def test_unencodable_payload_raises_before_sending(
    client: RpcClient, queue_url: str, sqs: Any
) -> None:
    with pytest.raises(EncodeError, match="set"):
        client.call(queue_url, {1, 2})
    with pytest.raises(EncodeError):
        client.publish(queue_url, object())
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert client.pending_calls == 0


def test_close_deletes_the_queue_and_stops_threads(sqs: Any, queue_url: str, serve: Serve) -> None:
    serve(queue_url, Echo())
    rpc = RpcClient(sqs_client=sqs)
    rpc.call(queue_url, 1, timeout=10)
    reply_queue = rpc.reply_queue_url
    assert reply_queue is not None
    # One naming scheme, sqs-rpc-<role>-<owner id>, for every thread of the client.
    owner = owner_id(rpc)
    names = {t.name for t in threading.enumerate() if owner in t.name}
    assert {f"sqs-rpc-{role}-{owner}" for role in ("replies", "timeouts")} <= names
    assert f"sqs-rpc-batcher-{owner}-0" in names
    rpc.close()
    assert not any(owner in t.name for t in threading.enumerate())
    assert reply_queue not in sqs.list_queues().get("QueueUrls", [])


def test_the_state_goes_from_unopened_to_opened_to_closed(sqs: Any, queue_url: str) -> None:
    rpc = RpcClient(sqs_client=sqs)
    assert repr(rpc) == "<RpcClient unopened reply_queue=None>"
    with rpc:
        assert repr(rpc).startswith("<RpcClient opened ")
        assert not rpc.closed
    assert rpc.closed
    assert repr(rpc) == "<RpcClient closed reply_queue=None>"
    with pytest.raises(ClientClosedError, match="this RpcClient is closed; create a new one"):
        rpc.call_async(queue_url, 1)


def test_close_fails_pending_calls(sqs: Any, queue_url: str) -> None:
    rpc = RpcClient(sqs_client=sqs)
    future = rpc.call_async(queue_url, 1, timeout=60)
    rpc.close()
    with pytest.raises(ClientClosedError):
        future.result(timeout=5)


def test_close_is_idempotent_and_use_after_close_raises(sqs: Any, queue_url: str) -> None:
    rpc = RpcClient(sqs_client=sqs)
    rpc.close()
    rpc.close()
    with pytest.raises(ClientClosedError, match="closed"):
        rpc.call(queue_url, 1)
    with pytest.raises(ClientClosedError):
        rpc.publish(queue_url, 1)
    with pytest.raises(ClientClosedError), rpc:
        pass


def test_context_manager_closes_on_exception(sqs: Any, queue_url: str, serve: Serve) -> None:
    serve(queue_url, Echo())
    rpc = RpcClient(sqs_client=sqs)
    used: list[str | None] = []

    def use_then_fail() -> None:
        with rpc:
            rpc.call(queue_url, 1, timeout=10)
            used.append(rpc.reply_queue_url)
            raise RuntimeError("user code failed")

    with pytest.raises(RuntimeError):
        use_then_fail()
    assert rpc.closed
    assert used[0] is not None
    assert used[0] not in sqs.list_queues().get("QueueUrls", [])


def test_waiting_caller_uses_no_cpu(client: RpcClient, queue_url: str, serve: Serve) -> None:
    slow = Gate()
    serve(queue_url, slow)
    future = client.call_async(queue_url, "x", timeout=30)
    assert slow.started.wait(10)
    cpu_before = time.thread_time()
    timer = threading.Timer(1.0, slow.release.set)
    timer.start()
    try:
        assert future.result(timeout=30) == "x"
    finally:
        timer.cancel()
    # Blocking on the future costs this thread nothing; a poll loop would burn CPU here.
    assert time.thread_time() - cpu_before < 0.05


def test_reusing_a_pending_correlation_id_is_rejected(client: RpcClient, queue_url: str) -> None:
    client.send(RequestMessage(queue_url, 1, correlation_id="same"), timeout=30)
    with pytest.raises(ConfigurationError, match="already waiting"):
        client.send(RequestMessage(queue_url, 2, correlation_id="same"), timeout=30)


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (RequestMessage("not-a-url", 1), "URL"),
        (RequestMessage("http://q/x", 1, delay_seconds=901), "delay_seconds"),
        (RequestMessage("http://q/x", 1, attributes={"ReplyTo": "x"}), "reserved"),
    ],
)
def test_bad_requests_fail_before_any_queue_is_created(
    sqs: Any, message: RequestMessage, match: str
) -> None:
    with RpcClient(sqs_client=sqs) as rpc:
        with pytest.raises(ConfigurationError, match=match):
            rpc.send(message)
        assert rpc.reply_queue_url is None


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"default_timeout": 0}, "default_timeout"),
        ({"default_timeout": float("inf")}, "default_timeout"),
        ({"reply_queue_prefix": "bad prefix!"}, "reply_queue_prefix"),
        ({"reply_queue_prefix": "x" * 49}, "reply_queue_prefix"),
        ({"heartbeat_interval": 60, "idle_retention": 100}, "idle_retention"),
        ({"codec": object()}, "codec"),
        ({"endpoint_url": "localhost:4566"}, "http"),
    ],
)
def test_invalid_client_options_name_the_fix(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        RpcClient(region_name="us-east-1", **options)


def test_the_reply_queue_prefix_has_one_name() -> None:
    # Renamed from queue_prefix=, so that it reads like the servers' reply prefix options.
    with pytest.raises(TypeError, match="queue_prefix"):
        RpcClient(region_name="us-east-1", queue_prefix="orders-reply-")  # type: ignore[call-arg]


def test_sqs_client_and_endpoint_together_are_rejected(sqs: Any) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        RpcClient(sqs_client=sqs, endpoint_url="http://127.0.0.1:1")


def test_a_codec_failure_fails_the_call_at_once(sqs: Any, queue_url: str, serve: Serve) -> None:
    class Fragile(JsonCodec):
        def decode(self, data: str) -> Any:
            if data.startswith('{"echo"'):
                raise RuntimeError("codec bug")
            return super().decode(data)

    serve(queue_url, Echo())
    with RpcClient(sqs_client=sqs, codec=Fragile()) as rpc:
        with pytest.raises(DecodeError, match="codec bug"):  # not RpcTimeout at 30 s
            rpc.call(queue_url, 1, timeout=30)
        assert rpc.pending_calls == 0
