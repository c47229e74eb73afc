"""Safe replies: a server replies only to reply queues its policy allows (reply-to injection)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import (
    ConfigurationError,
    MessagePoller,
    RpcClient,
)
from sqs_rpc._server.reply_policy import ReplyPolicy, parse_queue_url
from tests.support.handlers import EchoBody
from tests.support.helpers import wait_for

Serve = Callable[..., MessagePoller]

HOME = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
GOOD = "https://sqs.eu-west-1.amazonaws.com/123456789012/sqs-rpc-reply-0123abcd"


@pytest.mark.parametrize(
    "reply_to",
    [
        GOOD,
        "https://eu-west-1.queue.amazonaws.com/123456789012/sqs-rpc-reply-0123abcd",  # legacy
        "https://SQS.eu-west-1.amazonaws.com/123456789012/sqs-rpc-reply-x",  # host case
        "https://sqs.eu-west-1.amazonaws.com:443/123456789012/sqs-rpc-reply-x",  # default port
        "https://sqs.eu-west-1.amazonaws.com/123456789012/sqs-rpc-reply-x.fifo",
    ],
)
def test_default_policy_allows_prefixed_queues_of_the_same_account_and_region(
    reply_to: str,
) -> None:
    assert ReplyPolicy(HOME, prefix="sqs-rpc-reply-", allowed=None).allows(reply_to)


@pytest.mark.parametrize(
    "reply_to",
    [
        "https://sqs.eu-west-1.amazonaws.com/999999999999/sqs-rpc-reply-x",  # other account
        "https://sqs.us-east-1.amazonaws.com/123456789012/sqs-rpc-reply-x",  # other region
        "https://sqs.eu-west-1.evil.com/123456789012/sqs-rpc-reply-x",  # other host
        "https://sqs.eu-west-1.amazonaws.com.evil.com/123456789012/sqs-rpc-reply-x",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",  # not prefixed
        "https://sqs.eu-west-1.amazonaws.com/123456789012/my-sqs-rpc-reply-x",
        "https://sqs.eu-west-1.amazonaws.com:8443/123456789012/sqs-rpc-reply-x",  # other port
        "http://sqs.eu-west-1.amazonaws.com:443/123456789012/sqs-rpc-reply-x",  # other scheme
        "https://sqs.eu-west-1.amazonaws.com@evil.com/123456789012/sqs-rpc-reply-x",  # userinfo
        "https://evil.com@sqs.eu-west-1.amazonaws.com/123456789012/sqs-rpc-reply-x",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/sqs-rpc-reply-x/../../999999999999/q",
        "https://sqs.eu-west-1.amazonaws.com/999999999999/../123456789012/sqs-rpc-reply-x",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/sqs-rpc-reply-%2e%2e",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/sqs-rpc-reply-x?Action=DeleteQueue",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/sqs-rpc-reply-x#f/g",  # fragment
        "https://sqs.eu-west-1.amazonaws.com/123456789012/sqs-rpc-reply-x#",
        "https://sqs.eu-west-1.amazonaws.com\\@evil.com/123456789012/sqs-rpc-reply-x",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/sqs-rpc-reply-x/",
        " https://sqs.eu-west-1.amazonaws.com/123456789012/sqs-rpc-reply-x",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/sqs-rpc-reply-x\n",
        "sqs-rpc-reply-x",
        "",
    ],
)
def test_default_policy_refuses_everything_else(reply_to: str) -> None:
    assert not ReplyPolicy(HOME, prefix="sqs-rpc-reply-", allowed=None).allows(reply_to)


def test_legacy_us_east_1_host_is_the_same_endpoint() -> None:
    policy = ReplyPolicy(
        "https://sqs.us-east-1.amazonaws.com/123456789012/orders", prefix="r-", allowed=None
    )
    assert policy.allows("https://queue.amazonaws.com/123456789012/r-1")
    assert not policy.allows("https://queue.amazonaws.com.evil/123456789012/r-1")


def test_parse_takes_moto_and_aws_urls_apart() -> None:
    moto = parse_queue_url("http://127.0.0.1:5000/123456789012/q")
    assert moto is not None
    assert moto.endpoint == "http://127.0.0.1:5000"
    assert (moto.account, moto.name) == ("123456789012", "q")
    aws = parse_queue_url(GOOD)
    assert aws is not None
    assert aws.endpoint == "aws:eu-west-1"


def test_patterns_and_callables_replace_the_default() -> None:
    patterns = ReplyPolicy(
        HOME, prefix="unused", allowed=["https://sqs.*.amazonaws.com/123456789012/team-*"]
    )
    assert patterns.allows("https://sqs.us-east-1.amazonaws.com/123456789012/team-a")
    assert not patterns.allows(GOOD)
    # A pattern's "*" cannot stretch over userinfo or extra path segments.
    assert not patterns.allows(
        "https://x@sqs.us-east-1.amazonaws.com/123456789012/team-a/../../1/x"
    )
    assert ReplyPolicy(HOME, prefix="x", allowed=lambda url: url.endswith("-ok")).allows("a-ok")

    def broken(url: str) -> bool:
        raise RuntimeError("bug")

    assert not ReplyPolicy(HOME, prefix="x", allowed=broken).allows(GOOD)


@pytest.mark.parametrize(
    ("queue_url", "options", "match"),
    [
        (HOME, {"reply_to_allowed": "https://sqs.*"}, "list"),
        (HOME, {"reply_to_allowed": [""]}, "non-empty"),
        (HOME, {"reply_queue_prefix": ""}, "reply_queue_prefix"),
        ("http://localhost/queue/orders", {}, "reply_to_allowed"),
    ],
)
def test_bad_policy_options_are_rejected(
    sqs: Any, queue_url: str, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        MessagePoller(queue_url, EchoBody(), sqs_client=sqs, **options)


def _send(sqs: Any, queue_url: str, reply_to: str) -> None:
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody="1",
        MessageAttributes={
            "ReplyTo": {"DataType": "String", "StringValue": reply_to},
            "CorrelationId": {"DataType": "String", "StringValue": uuid.uuid4().hex},
        },
    )


def _injections(endpoint_url: str, reply_queue: str, unprefixed: str) -> list[str]:
    host = endpoint_url.split("://", 1)[1]
    name = reply_queue.rsplit("/", 1)[1]
    return [
        unprefixed,  # a real queue of the same account, not a reply queue
        f"{endpoint_url}/999999999999/{name}",  # other account
        f"http://localhost.evil:1/123456789012/{name}",  # other host
        f"https://sqs.eu-west-1.amazonaws.com/123456789012/{name}",  # other region/endpoint
        f"http://evil@{host}/123456789012/{name}",  # userinfo
        f"{endpoint_url}/123456789012/{name}/../{unprefixed.rsplit('/', 1)[1]}",  # traversal
    ]


def test_injected_reply_to_is_not_run_and_is_left_for_redrive(
    sqs: Any,
    endpoint: Any,
    queue_url: str,
    make_queue: Callable[..., str],
    serve: Serve,
) -> None:
    reply_queue = make_queue(f"sqs-rpc-reply-{uuid.uuid4().hex}")
    victim = make_queue()
    handler = EchoBody()
    poller = serve(queue_url, handler, reply_cache_ttl=0)
    injections = _injections(endpoint.endpoint_url, reply_queue, victim)
    for reply_to in injections:
        _send(sqs, queue_url, reply_to)
    wait_for(lambda: poller.stats().rejected >= len(injections), timeout=30)
    poller.stop()
    assert handler.calls == 0
    # Nothing reached the victim queue, and every request is still in the request queue.
    assert "Messages" not in sqs.receive_message(QueueUrl=victim, WaitTimeSeconds=0)
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessagesNotVisible"]) == len(injections)


def test_custom_client_prefix_needs_the_same_server_prefix(
    sqs: Any, queue_url: str, serve: Serve
) -> None:
    serve(queue_url, EchoBody(), reply_queue_prefix="billing-reply-")
    with RpcClient(sqs_client=sqs, reply_queue_prefix="billing-reply-") as client:
        assert client.call(queue_url, {"a": 1}, timeout=20) == {"a": 1}


def test_allowlist_patterns_let_other_queues_through(
    sqs: Any, endpoint: Any, queue_url: str, make_queue: Callable[..., str], serve: Serve
) -> None:
    other = make_queue(f"other-{uuid.uuid4().hex[:8]}")
    # The pattern's host is the one the server puts in queue URLs (not always the endpoint's).
    host = other.rsplit("/", 2)[0]
    serve(queue_url, EchoBody(), reply_to_allowed=[f"{host}/*/other-*"])
    _send(sqs, queue_url, other)
    reply = sqs.receive_message(QueueUrl=other, WaitTimeSeconds=10)
    assert reply["Messages"][0]["Body"] == "1"
