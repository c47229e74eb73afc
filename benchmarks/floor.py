"""botocore's own CPU per SQS request on this machine: the floor under CPU per call.

Every call costs each side a share of some SQS requests, and each request costs botocore
(serializing, signing, HTTP, parsing) the same CPU whoever makes it. This measures that cost
on the profile's SQS server, one thread, one operation at a time, messages like the suite's,
batches of 10; then :func:`floor_per_call` prices a block's requests with it. What a side
spends above its floor is its own work (and the harness's, in the callers' process).

    python -m benchmarks.floor ENDPOINT        # print the cost of each operation
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .clients import sqs_client

BATCH = 10
BODY = json.dumps({"i": 12345})


def _attributes(reply_to: str) -> dict[str, Any]:
    return {
        "ReplyTo": {"DataType": "String", "StringValue": reply_to},
        "CorrelationId": {"DataType": "String", "StringValue": uuid.uuid4().hex},
    }


def _cpu_ms(run: Callable[[], object], times: int) -> float:
    """Median CPU milliseconds of this thread (user and system) per ``run()``, in 3 rounds."""
    rounds = []
    for _ in range(3):
        started = time.thread_time()
        for _ in range(times):
            run()
        rounds.append((time.thread_time() - started) * 1000 / times)
    return statistics.median(rounds)


def request_cpu(endpoint: str, times: int = 30) -> dict[str, float]:
    """CPU ms per request of each operation the two implementations use, on ``endpoint``."""
    sqs = sqs_client(endpoint, pool=1)
    url = sqs.create_queue(QueueName=f"bench-floor-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    attributes = _attributes(url)
    entries = [
        {"Id": str(i), "MessageBody": BODY, "MessageAttributes": attributes} for i in range(BATCH)
    ]
    handles: list[list[str]] = []

    def receive() -> None:
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=BATCH,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
            VisibilityTimeout=600,
        ).get("Messages", [])
        handles.append([m["ReceiptHandle"] for m in messages])

    def delete() -> None:
        batch = handles.pop() or ["missing"]  # an empty receive: still one request
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(batch)],
        )

    try:
        for _ in range(5):  # warm up: the connection, botocore's caches
            sqs.send_message(QueueUrl=url, MessageBody=BODY, MessageAttributes=attributes)
        sqs.purge_queue(QueueUrl=url)
        costs = {
            "SendMessage": _cpu_ms(
                lambda: sqs.send_message(
                    QueueUrl=url, MessageBody=BODY, MessageAttributes=attributes
                ),
                times,
            ),
            "SendMessageBatch": _cpu_ms(
                lambda: sqs.send_message_batch(QueueUrl=url, Entries=entries), times
            ),
        }
        # 3 x times batches of 10 and 3 x times single messages are waiting: receive the
        # batches' worth, 10 at a time, then delete what each receive brought.
        costs["ReceiveMessage"] = _cpu_ms(receive, times)
        costs["DeleteMessageBatch"] = _cpu_ms(delete, times)
        return costs
    finally:
        sqs.delete_queue(QueueUrl=url)


def floor_per_call(requests: Mapping[str, int], calls: int, costs: Mapping[str, float]) -> float:
    """CPU ms per call that botocore alone spends on ``requests`` (by operation) for ``calls``."""
    return sum(count * costs.get(op, 0.0) for op, count in requests.items()) / max(calls, 1)


def floors(blocks: Iterable[Mapping[str, Any]], costs: Mapping[str, float]) -> dict[str, Any]:
    """Per phase and implementation: the median floor of the client and the server side."""
    found: dict[str, dict[str, dict[str, list[float]]]] = {}
    for block in blocks:
        sides = found.setdefault(block["phase"], {}).setdefault(
            block["impl"], {"client": [], "server": []}
        )
        for side in ("client", "server"):
            requests = block[f"{side}_requests"]
            sides[side].append(floor_per_call(requests, block["calls"], costs))
    return {
        phase: {
            impl: {side: statistics.median(v) for side, v in sides.items()}
            for impl, sides in impls.items()
        }
        for phase, impls in found.items()
    }


def main() -> None:
    costs = request_cpu(sys.argv[1])
    for op, ms in costs.items():
        print(f"{op:20} {ms:.2f} ms CPU per request")


if __name__ == "__main__":
    main()
