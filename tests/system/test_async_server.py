"""200 async handlers in flight at once on concurrency=200, on a few threads (slow: 200 calls)."""

from __future__ import annotations

from sqs_rpc import RpcClient
from tests.integration.test_async_server import Serve, run_gated_calls


def test_200_async_handlers_in_flight_at_once_on_a_few_threads(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    run_gated_calls(client, queue_url, serve, 200)
