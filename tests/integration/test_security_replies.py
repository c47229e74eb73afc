"""What a sender controls on the way to a reply: its correlation id, its ReplyTo, and SQS's
answers to a reply. The reply cache's bound holds against hostile ids, a ``reply_to_allowed``
callable sees the URL the request named, every AWS endpoint form of a region is that region,
and an oversized reply is recognised in every error-code form SQS implementations give.
"""

from __future__ import annotations

import gc
import hashlib
import json
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config

from sqs_rpc import (
    ConfigurationError,
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    RequestMessage,
    RpcClient,
)
from sqs_rpc._server.reply_cache import ReplyCache
from sqs_rpc._server.reply_policy import ReplyPolicy, parse_queue_url
from tests.support.helpers import Endpoint, messages_in, stored_reply, wait_for

Serve = Callable[..., MessagePoller]
KiB = 1024
ACCOUNT = "123456789012"


class Echo(MessageHandler):
    def __init__(self) -> None:
        self.calls: list[IncomingMessage] = []

    def handle(self, message: IncomingMessage) -> Any:
        self.calls.append(message)
        return message.body


def string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def receive_replies(sqs: Any, queue_url: str, count: int, timeout: float = 20) -> list[Any]:
    replies: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(replies) < count and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            WaitTimeSeconds=1,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
        )
        for message in response.get("Messages", []):
            replies.append(message)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return replies


# -- 3. the reply cache's byte bound -----------------------------------------------------------


def test_hostile_ids_and_bodies_cannot_stretch_the_reply_cache_past_its_bound() -> None:
    # What a flood of requests with 100 KiB correlation ids (and a ReplyTo a permissive
    # callable accepts) leaves in the cache: each id is held in the key and in the reply.
    # The body mixes ASCII with one emoji, so Python stores it at 4 bytes a character.
    bound = 4 * 1024 * KiB
    cache = ReplyCache(ttl=300, max_bytes=bound)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(600):
            correlation_id = f"{i:06d}" + "c" * (100 * KiB)
            reply_to = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/q-{i}" + "r" * (10 * KiB)
            body = "b" * (2 * KiB) + "\N{GRINNING FACE}"
            digest = hashlib.blake2b(body.encode(), digest_size=16).hexdigest()
            key = (reply_to, correlation_id, digest)
            assert cache.begin(key)[0] == "run"
            cache.remember(key, stored_reply(correlation_id, body))
            cache.done(key)
        del correlation_id, reply_to, body, digest, key
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= bound, f"the cache holds {held:,} bytes, over its bound of {bound:,}"
    assert cache.bytes <= bound


def test_a_request_with_an_overlong_correlation_id_is_refused_with_an_error_reply(
    sqs: Any, queue_url: str, reply_queue: str, serve: Serve
) -> None:
    handler = Echo()
    poller = serve(queue_url, handler)
    for correlation_id in ("x" * 129, "y" * (100 * KiB)):
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody="1",
            MessageAttributes={
                "ReplyTo": string(reply_queue),
                "CorrelationId": string(correlation_id),
            },
        )
    replies = receive_replies(sqs, reply_queue, 2)
    assert len(replies) == 2
    for reply in replies:
        assert reply["MessageAttributes"]["Status"]["StringValue"] == "error"
        error = json.loads(reply["Body"])
        assert error["type"] == "DecodeError"
        assert "over the protocol's 128" in error["message"]
    # The longest id allowed still works.
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody="2",
        MessageAttributes={"ReplyTo": string(reply_queue), "CorrelationId": string("z" * 128)},
    )
    (reply,) = receive_replies(sqs, reply_queue, 1)
    assert reply["Body"] == "2"
    assert poller.stats().undecodable == 2
    assert [call.body for call in handler.calls] == [2]


def test_a_client_refuses_an_overlong_correlation_id_before_sending(
    sqs: Any, queue_url: str
) -> None:
    with RpcClient(sqs_client=sqs) as client:
        with pytest.raises(ConfigurationError, match="at most 128 characters"):
            client.send(RequestMessage(queue_url, 1, correlation_id="x" * 129), timeout=5)
        assert client.reply_queue_url is None
    assert messages_in(sqs, queue_url) == 0


# -- 9. a reply_to_allowed callable sees the raw URL ---------------------------------------------


def test_a_reply_to_allowed_callable_gets_a_java_virtual_queue_url_whole(
    sqs: Any, queue_url: str, make_queue: Callable[..., str], serve: Serve
) -> None:
    host = make_queue(f"__RequesterClientQueues__{uuid.uuid4()}-0")
    virtual = f"__RequesterClientQueues__{uuid.uuid4()}"
    seen: list[str] = []

    def allowed(url: str) -> bool:
        seen.append(url)
        return url == f"{host}#{virtual}"

    serve(queue_url, Echo(), reply_to_allowed=allowed)
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({"text": "virtual"}),
        MessageAttributes={"ResponseQueueUrl": string(f"{host}#{virtual}")},
    )
    (reply,) = receive_replies(sqs, host, 1)
    assert json.loads(reply["Body"]) == {"text": "virtual"}
    assert seen == [f"{host}#{virtual}"]


def test_patterns_and_the_default_rule_judge_a_virtual_queue_by_its_host() -> None:
    home = f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/orders"
    host = f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/__RequesterClientQueues__ab-0"
    default = ReplyPolicy(home, prefix="__RequesterClientQueues__", allowed=None)
    assert default.allows(f"{host}#__RequesterClientQueues__x")
    assert not default.allows(f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/other#v")
    patterns = ReplyPolicy(home, prefix="x", allowed=[f"{host[:-2]}*"])
    assert patterns.allows(f"{host}#anything")
    assert not patterns.allows(f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/other#v")


# -- 12. every AWS endpoint form of a region ---------------------------------------------------

SAME_REGION = [
    ("https://sqs.us-east-1.amazonaws.com", "us-east-1"),
    ("https://queue.amazonaws.com", "us-east-1"),  # the oldest form
    ("https://us-east-1.queue.amazonaws.com", "us-east-1"),  # legacy
    ("https://sqs-fips.us-east-1.amazonaws.com", "us-east-1"),  # AWS_USE_FIPS_ENDPOINT
    ("https://sqs.us-east-1.api.aws", "us-east-1"),  # AWS_USE_DUALSTACK_ENDPOINT
    ("https://sqs-fips.us-east-1.api.aws", "us-east-1"),  # both
    ("https://SQS-FIPS.US-EAST-1.AMAZONAWS.COM:443", "us-east-1"),  # case, default port
    ("https://vpce-0abc123def-xyz45678.sqs.us-east-1.vpce.amazonaws.com", "us-east-1"),
    ("https://vpce-0abc123def-xyz45678-us-east-1a.sqs.us-east-1.vpce.amazonaws.com", "us-east-1"),
    ("https://eu-west-1.queue.amazonaws.com", "eu-west-1"),
    ("https://sqs.eu-west-1.amazonaws.com", "eu-west-1"),
    ("https://sqs.eu-west-1.api.aws", "eu-west-1"),
    ("https://sqs.cn-north-1.amazonaws.com.cn", "cn-north-1"),  # China
    ("https://cn-north-1.queue.amazonaws.com.cn", "cn-north-1"),
    ("https://sqs.cn-north-1.api.amazonwebservices.com.cn", "cn-north-1"),
    ("https://vpce-0abc-xyz.sqs.cn-north-1.vpce.amazonaws.com.cn", "cn-north-1"),
    ("https://sqs.us-gov-west-1.amazonaws.com", "us-gov-west-1"),  # GovCloud (FIPS itself)
    ("https://sqs-fips.us-gov-east-1.amazonaws.com", "us-gov-east-1"),
    ("https://us-gov-west-1.queue.amazonaws.com", "us-gov-west-1"),
    ("https://sqs.us-gov-west-1.api.aws", "us-gov-west-1"),
    ("https://sqs.eusc-de-east-1.amazonaws.eu", "eusc-de-east-1"),  # EU sovereign cloud
    ("https://sqs.us-iso-east-1.c2s.ic.gov", "us-iso-east-1"),
    ("https://sqs.us-isob-east-1.sc2s.sgov.gov", "us-isob-east-1"),
]

NOT_AWS = [
    "https://sqs.us-east-1.amazonaws.com.evil.com",  # a suffix of someone else's domain
    "https://sqs.us-east-1.amazonaws.com:8443",  # another port: another endpoint
    "http://localhost:4566",
    "https://sqs.us-east-1.evil.aws",
    "https://vpce-0abc.sqs.us-east-1.vpce.evil.com",
    "https://queue.amazonaws.com.evil.com",
]


@pytest.mark.parametrize(("endpoint_url", "region"), SAME_REGION)
def test_every_aws_endpoint_form_of_a_region_is_that_region(endpoint_url: str, region: str) -> None:
    address = parse_queue_url(f"{endpoint_url}/{ACCOUNT}/sqs-rpc-reply-x")
    assert address is not None
    assert address.endpoint == f"aws:{region}"


@pytest.mark.parametrize("endpoint_url", NOT_AWS)
def test_other_hosts_are_not_an_aws_region(endpoint_url: str) -> None:
    address = parse_queue_url(f"{endpoint_url}/{ACCOUNT}/sqs-rpc-reply-x")
    assert address is not None
    assert not address.endpoint.startswith("aws:")


@pytest.mark.parametrize(
    "options",
    [
        {"use_fips_endpoint": True},
        {"use_dualstack_endpoint": True},
        {"use_fips_endpoint": True, "use_dualstack_endpoint": True},
    ],
    ids=["fips", "dualstack", "fips-dualstack"],
)
def test_a_request_queue_on_a_fips_or_dual_stack_endpoint_accepts_standard_reply_urls(
    options: dict[str, bool],
) -> None:
    # What a Lambda responder (or a poller given such a URL) builds from boto3's endpoint when
    # AWS_USE_FIPS_ENDPOINT / AWS_USE_DUALSTACK_ENDPOINT is set; SQS names the client's reply
    # queue in the standard form.
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client("sqs", region_name="us-east-1", config=Config(**options))
    endpoint_url = client.meta.endpoint_url
    assert endpoint_url.rstrip("/") != "https://sqs.us-east-1.amazonaws.com"
    policy = ReplyPolicy(
        f"{endpoint_url.rstrip('/')}/{ACCOUNT}/orders", prefix="sqs-rpc-reply-", allowed=None
    )
    assert policy.allows(f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/sqs-rpc-reply-abc")
    assert not policy.allows(f"https://sqs.us-west-2.amazonaws.com/{ACCOUNT}/sqs-rpc-reply-abc")
    assert not policy.allows("https://sqs.us-east-1.amazonaws.com/999999999999/sqs-rpc-reply-a")


# -- 13. an oversized reply, in every error-code form ---------------------------------------------


class Big(MessageHandler):
    def handle(self, message: IncomingMessage) -> Any:
        return "x" * 4096


@pytest.mark.parametrize("code", ["InvalidParameterValue", "InvalidParameterValueException"])
def test_a_reply_refused_as_too_long_becomes_an_error_reply_whatever_the_code_form(
    *,
    endpoint: Endpoint,
    queue_url: str,
    make_queue: Callable[..., str],
    serve: Serve,
    sqs: Any,
    code: str,
) -> None:
    # The reply queue takes at most 1 KiB; moto refuses the reply with InvalidParameterValue.
    # SQS's JSON protocol (and other emulators) name the same refusal
    # InvalidParameterValueException: the server's client reports it so (a botocore hook on
    # its parsed answer; the HTTP exchange with moto is real).
    reply_queue = make_queue(f"sqs-rpc-reply-{uuid.uuid4().hex}", MaximumMessageSize="1024")
    server_sqs = endpoint.client()

    def rename(parsed: Any, **_: Any) -> None:
        failures = [parsed.get("Error") or {}, *parsed.get("Failed", [])]
        for failure in failures:
            if failure.get("Code") == "InvalidParameterValue":
                failure["Code"] = code

    server_sqs.meta.events.register("after-call.sqs", rename)
    serve(queue_url, Big(), sqs_client=server_sqs)
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody="1",
        MessageAttributes={"ReplyTo": string(reply_queue), "CorrelationId": string("big")},
    )
    (reply,) = receive_replies(sqs, reply_queue, 1)
    assert reply["MessageAttributes"]["Status"]["StringValue"] == "error"
    assert json.loads(reply["Body"])["type"] == "EncodeError"
    wait_for(lambda: messages_in(sqs, queue_url) == 0)
