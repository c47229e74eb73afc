"""Memory with many calls in flight: Python heap per call, and what finished calls leave.

Not a paired phase (the heap does not depend on a noisy neighbour): it runs once per
implementation after a profile's timed phases, with ``--phases memory``.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .clients import make_client, sqs_client


def memory(impl: str, endpoint: str, calls: int) -> dict[str, Any]:
    """Python heap per in-flight call, and what is left once the calls have finished.

    The calls go to queues no server reads, with a timeout far longer than the phase, so all
    of them are in flight when the last is sent (an expiry computed from a send rate proved
    wrong twice: moto slows down as the queues fill). Then sqs-rpc's client is closed, which
    fails every pending call, and the heap is measured again: what the finished calls left.
    (Expiry by timeout frees the same entries; tests/unit/test_pending.py covers it.) The baseline
    is only measured in flight: it has no way to finish an abandoned call.
    """
    sqs = sqs_client(endpoint, pool=16)
    # moto's cost per request grows with the messages in a queue: spread the parked calls
    # over queues of at most 1,000, so the server, not the queue length, sets the send rate.
    parking = [
        sqs.create_queue(QueueName=f"bench-parked-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        for _ in range(max(calls // 1000, 1))
    ]
    client = make_client(impl, sqs)
    try:
        client.call_async(parking[0], {"i": 0}, timeout=5)  # the reply queue and threads
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        start = time.monotonic()
        futures: list[Future[Any]] = []
        # Heap at each quarter of the sends: linear growth means equal steps.
        quarters: list[int] = []
        with ThreadPoolExecutor(8) as pool:
            for f in pool.map(
                lambda i: client.call_async(parking[i % len(parking)], {"i": i}, timeout=3600),
                range(calls),
            ):
                futures.append(f)
                if len(futures) % max(calls // 4, 1) == 0 and len(quarters) < 4:
                    quarters.append(tracemalloc.get_traced_memory()[0] - base)
        sent_at = time.monotonic()
        in_flight = sum(not f.done() for f in futures)
        peak = tracemalloc.get_traced_memory()[0] - base
        result: dict[str, Any] = {
            "calls": calls,
            "in_flight_at_peak": in_flight,
            "send_seconds": sent_at - start,
            "heap_bytes_at_each_quarter": quarters,
            "bytes_per_call": peak / calls,
        }
        if impl == "sqs-rpc":
            client.close()  # fails every pending call: they are finished
            finished = sum(f.exception(timeout=60) is not None for f in futures)
            futures.clear()
            gc.collect()
            result["finished_by_close"] = finished
            result["retained_bytes_after_finish"] = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        return result
    finally:
        client.close()
        for url in parking:
            sqs.delete_queue(QueueUrl=url)
