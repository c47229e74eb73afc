"""Requests from other libraries over HTTP: the Java temporary-queues client, python-sqs-client.

The messages below are the ones those clients send (attribute for attribute), so the server's
answers are checked the way those clients read them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from sqs_rpc import IncomingMessage, MessageHandler, MessagePoller
from tests.support.helpers import wait_for

from .test_processing import receive_replies

Serve = Callable[..., MessagePoller]

# The Java client names its per-call queues and its host queues (of virtual queues) alike:
# __RequesterClientQueues__<uuid> and __RequesterClientQueues__<uuid>-<n>.
JAVA_PREFIXES = ("__RequesterClientQueues__",)


class Shout(MessageHandler):
    def __init__(self) -> None:
        self.calls: list[IncomingMessage] = []

    def handle(self, message: IncomingMessage) -> Any:
        self.calls.append(message)
        return {"shout": str(message.body["text"]).upper()}


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def test_java_requester_with_a_plain_response_queue(
    sqs: Any, queue_url: str, make_queue: Callable[..., str], serve: Serve
) -> None:
    # AmazonSQSRequesterClient: one response queue per call, named by its internal prefix.
    response_queue = make_queue(f"__RequesterClientQueues__{uuid.uuid4()}")
    handler = Shout()
    serve(queue_url, handler, reply_queue_prefix=JAVA_PREFIXES)
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({"text": "hi"}),
        MessageAttributes={"ResponseQueueUrl": _string(response_queue)},
    )
    (reply,) = receive_replies(sqs, response_queue, 1)
    assert json.loads(reply["Body"]) == {"shout": "HI"}
    assert reply["MessageAttributes"]["Status"]["StringValue"] == "ok"
    (call,) = handler.calls
    assert call.reply_to == response_queue
    assert call.correlation_id  # the request's message id stands in


def test_java_requester_with_a_virtual_response_queue(
    sqs: Any, queue_url: str, make_queue: Callable[..., str], serve: Serve
) -> None:
    # AmazonSQSTemporaryQueuesClient: virtual queues HOST#NAME share one host queue; the reply
    # goes to the host with the virtual queue's name as an attribute.
    host = make_queue(f"__RequesterClientQueues__{uuid.uuid4()}-0")
    virtual = f"__RequesterClientQueues__{uuid.uuid4()}"
    serve(queue_url, Shout(), reply_queue_prefix=JAVA_PREFIXES)
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({"text": "virtual"}),
        MessageAttributes={"ResponseQueueUrl": _string(f"{host}#{virtual}")},
    )
    (reply,) = receive_replies(sqs, host, 1)
    assert json.loads(reply["Body"]) == {"shout": "VIRTUAL"}
    attributes = reply["MessageAttributes"]
    assert attributes["__AmazonSQSVirtualQueuesClient.QueueName"]["StringValue"] == virtual


def test_java_virtual_queue_names_and_hosts_are_checked(
    sqs: Any, queue_url: str, make_queue: Callable[..., str], serve: Serve
) -> None:
    host = make_queue(f"__RequesterClientQueues__{uuid.uuid4()}-0")
    other = make_queue()
    handler = Shout()
    poller = serve(queue_url, handler, reply_queue_prefix=JAVA_PREFIXES)
    for response_url in (f"{host}#bad/../name", f"{other}#__RequesterClientQueues__x"):
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps({"text": "x"}),
            MessageAttributes={"ResponseQueueUrl": _string(response_url)},
        )
    wait_for(lambda: poller.stats().rejected == 2, timeout=20)
    assert handler.calls == []


def test_python_sqs_client_gets_its_request_message_id_back(
    sqs: Any, queue_url: str, make_queue: Callable[..., str], serve: Serve, endpoint: Any
) -> None:
    # python-sqs-client: ReplyTo + RequestMessageId (a random 128-bit integer); its reply queue
    # is named by the user's prefix plus digits, so the server allows it with a pattern.
    reply_queue = make_queue(f"reply_queue_{uuid.uuid4().hex[:8]}_{uuid.uuid4().int}")
    host = reply_queue.rsplit("/", 2)[0]  # the host the server puts in queue URLs
    serve(queue_url, Shout(), reply_to_allowed=[f"{host}/*/reply_queue_*"])
    request_id = str(uuid.uuid4().int)
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({"text": "py"}),
        MessageAttributes={
            "ReplyTo": _string(reply_queue),
            "RequestMessageId": _string(request_id),
        },
    )
    (reply,) = receive_replies(sqs, reply_queue, 1)
    assert reply["MessageAttributes"]["RequestMessageId"]["StringValue"] == request_id
    assert json.loads(reply["Body"]) == {"shout": "PY"}
