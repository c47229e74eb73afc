"""Arbitrary messages sent straight to a request queue served by a MessagePoller: every one ends
in a reply (ok or error), a handled one-way message, redrive to the dead-letter queue, or, when
its deadline has passed, deletion unrun with a log line. The poller never crashes and never
drops a message silently.

Each example is a batch of messages built by hand with boto3 (not by sqs-rpc's encoder), with
arbitrary bodies, sizes, attribute sets and types, protocol versions, content types, deadlines
and reply addresses. Every message carries a ``FuzzId`` attribute so its fate can be traced.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller, RpcClient
from tests.support.helpers import wait_for

# Text SQS accepts: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD and beyond #x10000.
sqs_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="".join(chr(c) for c in range(0x20) if c not in (9, 10, 13))
        + "\ufffe\uffff",
    ),
    max_size=40,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | sqs_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(sqs_text, children),
    max_leaves=8,
)
bodies = st.one_of(
    json_values.map(json.dumps),  # valid JSON
    json_values.map(json.dumps).map(lambda s: s[: max(1, len(s) // 2)]),  # truncated
    sqs_text.filter(bool),  # anything
    st.integers(0, 200_000).map(lambda n: json.dumps("x" * n)),  # up to near SQS's 256 KiB
    st.sampled_from([3, 999, 5000]).map(lambda n: "[" * n + "]" * n),  # nested past the limit
    st.just(json.dumps("!raise")),  # the handler raises
)
attribute_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,15}", fullmatch=True).filter(
    lambda n: not n.lower().startswith(("aws", "amazon"))
)
attribute_values = st.one_of(
    sqs_text.filter(bool).map(lambda v: {"DataType": "String", "StringValue": v}),
    st.integers().map(lambda v: {"DataType": "Number", "StringValue": str(v)}),
    st.binary(min_size=1, max_size=32).map(lambda v: {"DataType": "Binary", "BinaryValue": v}),
    sqs_text.filter(bool).map(lambda v: {"DataType": "String.custom", "StringValue": v}),
)


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


@st.composite
def messages(draw: st.DrawFn, reply_to: str, gone: str) -> dict[str, Any]:
    """SendMessage arguments (no QueueUrl) for one fuzzed message."""
    attributes: dict[str, Any] = draw(
        st.dictionaries(attribute_names, attribute_values, max_size=4)
    )
    protocol: dict[str, st.SearchStrategy[str | None]] = {
        "ReplyTo": st.sampled_from([reply_to, reply_to, gone, "", None]),
        "CorrelationId": st.one_of(st.none(), st.just(""), st.just(uuid.uuid4().hex)),
        "ContentType": st.sampled_from([None, "application/json", "text/plain", ""]),
        "SqsRpcVersion": st.sampled_from([None, "1", "1", "2", "0", "v1"]),
        "Deadline": st.one_of(
            st.none(),
            st.integers(0, 2**63).map(str),
            st.sampled_from(["soon", "1.5", "-1", "9" * 400]),
        ),
    }
    for name, values in protocol.items():
        value = draw(values)
        if value is not None:
            attributes[name] = (
                {"DataType": "Number", "StringValue": value}
                if name == "Deadline" and value.lstrip("-").isdigit()
                else _string(value)
            )
    if attributes.get("ReplyTo", {}).get("StringValue") and "CorrelationId" in attributes:
        # A fresh id per message, so its reply can be told apart.
        attributes["CorrelationId"] = _string(uuid.uuid4().hex)
    attributes["FuzzId"] = _string(uuid.uuid4().hex)
    return {"MessageBody": draw(bodies), "MessageAttributes": attributes}


def _known(reply_to: str | None, body: str, version: str = "1") -> dict[str, Any]:
    attributes = {"SqsRpcVersion": _string(version), "FuzzId": _string(uuid.uuid4().hex)}
    if reply_to is not None:
        attributes["ReplyTo"] = _string(reply_to)
        attributes["CorrelationId"] = _string(uuid.uuid4().hex)
    return {"MessageBody": body, "MessageAttributes": attributes}


def _past(attributes: dict[str, Any]) -> bool:
    """Whether the message's Deadline attribute is a time (epoch ms) that has passed."""
    value = attributes.get("Deadline", {}).get("StringValue", "")
    return value.lstrip("-").isdigit() and int(value) < time.time() * 1000


class Tracer(MessageHandler):
    """Records the FuzzId of every message it handles; raises when asked to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.handled: set[str] = set()

    def handle(self, message: IncomingMessage) -> Any:
        with self._lock:
            fuzz_id = message.attributes.get("FuzzId")
            if isinstance(fuzz_id, str):
                self.handled.add(fuzz_id)
        if message.body == "!raise":
            raise ValueError("asked to raise")
        return message.body


def _drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    received = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
    ).get("Messages", [])
    for message in received:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return list(received)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_every_fuzzed_message_is_answered_handled_or_redriven(
    sqs: Any,
    make_queue: Callable[..., str],
    serve: Callable[..., MessagePoller],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    caplog.set_level(logging.INFO, logger="sqs_rpc._server.deadline")  # to see expired requests
    dlq = make_queue()
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    requests = make_queue(
        VisibilityTimeout="1",
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}),
    )
    reply_queue = make_queue()
    gone = make_queue()
    sqs.delete_queue(QueueUrl=gone)  # a reply address whose queue no longer exists
    tracer = Tracer()
    poller = serve(requests, tracer, concurrency=4)
    replies: dict[str, str] = {}  # correlation id -> status
    redriven: set[str] = set()  # FuzzIds found in the DLQ

    def collect() -> None:
        for message in _drain(sqs, reply_queue):
            attrs = message.get("MessageAttributes", {})
            status = attrs.get("Status", {}).get("StringValue", "?")
            replies[attrs.get("CorrelationId", {}).get("StringValue", "")] = status
        for message in _drain(sqs, dlq):
            redriven.add(message["MessageAttributes"]["FuzzId"]["StringValue"])

    def expired() -> set[str]:
        """Correlation or message ids of requests deleted unrun: past their caller's deadline."""
        return {
            str(record.args[0])
            for record in caplog.records
            if "after its caller's deadline" in record.msg and isinstance(record.args, tuple)
        }

    def settled(sent: dict[str, dict[str, Any]]) -> bool:
        collect()
        gone = expired()
        for fuzz_id, attrs in sent.items():
            correlation_id = attrs.get("CorrelationId", {}).get("StringValue")
            replied = correlation_id in replies
            handled_one_way = fuzz_id in tracer.handled and not replied
            # Its deadline had passed: deleted without running, and nobody waits for a reply.
            dropped = (correlation_id or attrs["MessageId"]) in gone and _past(attrs)
            if not (replied or handled_one_way or fuzz_id in redriven or dropped):
                return False
        return True

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(messages(reply_queue, gone), min_size=1, max_size=6))
    @example(  # always, whatever hypothesis draws: the cases that once escaped the poller
        [
            _known(reply_queue, "[" * 5000 + "]" * 5000),
            _known(None, "[" * 5000 + "]" * 5000),
            _known(reply_queue, "1", version="2"),
            _known(None, json.dumps("!raise")),
        ]
    )
    def run(batch: list[dict[str, Any]]) -> None:
        sent: dict[str, dict[str, Any]] = {}
        for arguments in batch:
            try:
                message_id = sqs.send_message(QueueUrl=requests, **arguments)["MessageId"]
            except ClientError:
                continue  # SQS itself refused it (too big, bad attribute): not the poller's
            attrs = arguments["MessageAttributes"]
            sent[attrs["FuzzId"]["StringValue"]] = {**attrs, "MessageId": message_id}
        wait_for(lambda: settled(sent), timeout=30, interval=0.1)
        for attrs in sent.values():
            correlation_id = attrs.get("CorrelationId", {}).get("StringValue")
            if correlation_id in replies:
                assert replies[correlation_id] in ("ok", "error")

    run()
    # The poller survived all of it and still serves a well-formed call.
    assert poller.running
    with RpcClient(sqs_client=sqs, default_timeout=30) as client:
        assert client.call(requests, {"still": "alive"}) == {"still": "alive"}
    assert "unexpected error" not in caplog.text
