"""AsyncRpcClient end to end over HTTP: asyncio callers on the RpcClient machinery."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from sqs_rpc import (
    AsyncRpcClient,
    ClientClosedError,
    ConfigurationError,
    MessagePoller,
    RemoteError,
    RpcClient,
    RpcTimeout,
)
from tests.support.handlers import Echo, Gate

Serve = Callable[..., MessagePoller]


async def until(condition: Callable[[], Any], timeout: float = 15.0) -> None:
    """Let the loop run until ``condition()`` holds; fail the test at the deadline."""
    end = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > end:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)


def test_call_and_gather(sqs: Any, queue_url: str, serve: Serve) -> None:
    serve(queue_url, Echo(), concurrency=8)

    async def main() -> tuple[Any, list[Any], int]:
        async with AsyncRpcClient(sqs_client=sqs, default_timeout=20) as client:
            first = await client.call(queue_url, {"x": 1}, timeout=20)
            replies = await asyncio.gather(*(client.call(queue_url, i) for i in range(40)))
            senders = sum(t.name.startswith("sqs-rpc-async-send") for t in threading.enumerate())
            assert client.pending_calls == 0
            return first, list(replies), senders

    first, replies, senders = asyncio.run(main())
    assert first == {"echo": {"x": 1}}
    assert replies == [{"echo": i} for i in range(40)]  # each reply reached its own caller
    assert 1 <= senders <= 10  # a bounded pool, not a thread per call


def test_remote_error_and_timeout_raise_the_usual_exceptions(
    sqs: Any, queue_url: str, make_queue: Callable[..., str], serve: Serve
) -> None:
    serve(queue_url, Echo())
    silent = make_queue()  # nobody consumes it

    async def main() -> None:
        async with AsyncRpcClient(sqs_client=sqs) as client:
            with pytest.raises(RemoteError, match="asked to fail") as info:
                await client.call(queue_url, "fail", timeout=20)
            assert info.value.error_type == "ValueError"
            with pytest.raises(RpcTimeout):
                await client.call(silent, "x", timeout=0.5)
            assert client.pending_calls == 0

    asyncio.run(main())


def test_the_loop_runs_while_a_call_waits(sqs: Any, queue_url: str, serve: Serve) -> None:
    gate = Gate()
    serve(queue_url, gate)

    async def main() -> None:
        async with AsyncRpcClient(sqs_client=sqs) as client:
            task = asyncio.create_task(client.call(queue_url, "slow", timeout=20))
            ticks = 0
            while not gate.started.is_set():  # this loop would starve if the call blocked it
                ticks += 1
                await asyncio.sleep(0.01)
                assert ticks < 3000, "the handler never started"
            assert not task.done()
            gate.release.set()
            assert await task == "slow"

    try:
        asyncio.run(main())
    finally:
        gate.release.set()


def test_cancelling_a_task_releases_its_pending_entry(
    sqs: Any, queue_url: str, serve: Serve
) -> None:
    gate = Gate()
    serve(queue_url, gate)

    async def main() -> None:
        async with AsyncRpcClient(sqs_client=sqs) as client:
            task = asyncio.create_task(client.call(queue_url, "abandoned", timeout=20))
            await until(gate.started.is_set)  # sent, and the handler holds the reply back
            assert client.pending_calls == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # At once when the task waited for its reply; when it was cancelled during the
            # send (which cannot be interrupted), as soon as that send returns.
            await until(lambda: client.pending_calls == 0)
            gate.release.set()  # the late reply arrives and is dropped as unknown
            assert await client.call(queue_url, "next", timeout=20) == "next"

    try:
        asyncio.run(main())
    finally:
        gate.release.set()


def test_close_fails_waiting_calls(sqs: Any, queue_url: str, serve: Serve) -> None:
    gate = Gate()
    serve(queue_url, gate)

    async def main() -> None:
        client = AsyncRpcClient(sqs_client=sqs)
        task = asyncio.create_task(client.call(queue_url, "x", timeout=20))
        await until(lambda: client.pending_calls == 1)
        await client.aclose()
        with pytest.raises(ClientClosedError):
            await task
        assert client.closed
        assert client.client.closed  # it owned the RpcClient
        with pytest.raises(ClientClosedError):
            await client.call(queue_url, "y")
        await client.aclose()  # idempotent

    try:
        asyncio.run(main())
    finally:
        gate.release.set()


def test_a_given_client_stays_open(sqs: Any, queue_url: str, serve: Serve) -> None:
    serve(queue_url, Echo())
    with RpcClient(sqs_client=sqs) as sync_client:

        async def main() -> str:
            async with AsyncRpcClient(sync_client) as client:
                await client.call(queue_url, 1, timeout=20)
                return await client.publish(queue_url, "one-way")

        message_id = asyncio.run(main())
        assert message_id
        assert not sync_client.closed
        assert sync_client.call(queue_url, 2, timeout=20) == {"echo": 2}


def test_bad_options_are_rejected(sqs: Any) -> None:
    with (
        RpcClient(sqs_client=sqs) as sync_client,
        pytest.raises(ConfigurationError, match="not both"),
    ):
        AsyncRpcClient(sync_client, default_timeout=3)
    with pytest.raises(ConfigurationError, match="send_threads"):
        AsyncRpcClient(sqs_client=sqs, send_threads=0)
    with pytest.raises(ConfigurationError, match="reply_queue_prefix"):
        AsyncRpcClient(sqs_client=sqs, reply_queue_prefix="bad prefix!")


def test_the_state_goes_from_unopened_to_opened_to_closed(sqs: Any, queue_url: str) -> None:
    async def main() -> None:
        client = AsyncRpcClient(sqs_client=sqs)
        assert repr(client) == "<AsyncRpcClient unopened reply_queue=None>"
        async with client:
            assert repr(client).startswith("<AsyncRpcClient opened ")
        assert repr(client) == "<AsyncRpcClient closed reply_queue=None>"
        with pytest.raises(ClientClosedError, match="this AsyncRpcClient is closed; create a new"):
            await client.publish(queue_url, 1)

    asyncio.run(main())
