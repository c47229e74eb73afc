"""AsyncRpcClient: the asyncio face of :class:`~sqs_rpc.RpcClient`, on the same machinery.

An ``AsyncRpcClient`` wraps one ``RpcClient``: the same reply queue, reply poller, pending map
and timeout timer serve both. Nothing of the protocol is implemented twice, and there is no
thread per call.

- ``SendMessage`` is a blocking boto3 request. It runs on a small pool owned by this client
  (``send_threads`` threads, named ``sqs-rpc-async-send-<owner id>_<n>``), never on the event
  loop. A dedicated pool's size is the number of sends in flight, whatever else the
  application runs in the loop's default executor. It is shut down with the client.
- Waiting for the reply costs no thread. :func:`asyncio.wrap_future` bridges the
  ``concurrent.futures.Future`` of ``RpcClient.send`` to the loop. The reply poller's thread
  then resolves the awaiting task through ``call_soon_threadsafe``.
- Cancelling an awaiting task cancels that future. A cancelled future leaves the pending map
  at once, and a reply that still arrives is dropped as unknown.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar, cast

from sqs_rpc._attributes import AttributeValue
from sqs_rpc._errors import ConfigurationError
from sqs_rpc._loop import owner_id, thread_name
from sqs_rpc._state import ClientState
from sqs_rpc._stats import ClientStats

from .client import RequestMessage, RpcClient
from .proxy import async_proxy

__all__ = ["DEFAULT_SEND_THREADS", "AsyncRpcClient"]

DEFAULT_SEND_THREADS = 10

T = TypeVar("T")


class AsyncRpcClient:
    """Calls services behind SQS queues from asyncio code.

    Example::

        async with AsyncRpcClient(region_name="eu-west-1") as client:
            reply = await client.call(queue_url, {"x": 1}, timeout=10)
            replies = await asyncio.gather(*(client.call(queue_url, i) for i in range(100)))
            await client.publish(queue_url, {"x": 3})   # one-way

    Args:
        client: an :class:`RpcClient` to wrap. You keep ownership: ``aclose`` leaves it
            open. Without it, one is built from ``options`` and closed by ``aclose``.
        send_threads: threads that run the blocking ``SendMessage`` requests, so the event
            loop never blocks on SQS. At most this many sends are in flight at once.
        **options: keyword options of :class:`RpcClient` (``endpoint_url=``, ``sqs_client=``,
            ``default_timeout=``, ``hooks=``, ...), when no ``client`` is given.
    """

    def __init__(
        self,
        client: RpcClient | None = None,
        *,
        send_threads: int = DEFAULT_SEND_THREADS,
        **options: Any,
    ) -> None:
        if client is not None and options:
            raise ConfigurationError(
                f"pass either client= or RpcClient options ({', '.join(sorted(options))}), "
                "not both: the given client is already configured"
            )
        if isinstance(send_threads, bool) or not isinstance(send_threads, int) or send_threads < 1:
            raise ConfigurationError(f"send_threads={send_threads!r} must be an int >= 1")
        self._owns_client = client is None
        self._client = client if client is not None else RpcClient(**options)
        self._send_threads = send_threads
        # Guards the state and the pool. Every change of state is in _get_pool() or aclose().
        self._lock = threading.Lock()
        self._state = ClientState.UNOPENED
        self._pool: ThreadPoolExecutor | None = None  # created by the first send

    # -- context manager ------------------------------------------------------------------

    async def __aenter__(self) -> AsyncRpcClient:
        with self._lock:
            self._state = self._state.open("AsyncRpcClient")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncRpcClient {self._state.value} reply_queue={self.reply_queue_url!r}>"

    @property
    def client(self) -> RpcClient:
        """The wrapped :class:`RpcClient`."""
        return self._client

    @property
    def closed(self) -> bool:
        return self._state is ClientState.CLOSED

    @property
    def reply_queue_url(self) -> str | None:
        """The reply queue's URL, or None before the first call (and after close)."""
        return self._client.reply_queue_url

    @property
    def pending_calls(self) -> int:
        """How many calls are waiting for a reply."""
        return self._client.pending_calls

    def stats(self) -> ClientStats:
        """The wrapped client's :meth:`RpcClient.stats` (its calls from any thread or loop).

        A cancelled awaiting task counts in ``cancelled``.
        """
        return self._client.stats()

    # -- calls -------------------------------------------------------------------------------

    async def call(
        self,
        queue_url: str,
        payload: Any = None,
        *,
        timeout: float | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
    ) -> Any:
        """Send ``payload`` to ``queue_url`` and return the decoded reply.

        Raises as :meth:`RpcClient.call` does (:class:`RpcTimeout`, :class:`RemoteError`,
        :class:`EncodeError`, :class:`SqsError`, ...). Cancelling the awaiting task forgets
        the call.
        """
        message = RequestMessage(
            queue_url,
            payload,
            attributes=attributes or {},
            group_id=group_id,
            deduplication_id=deduplication_id,
        )
        return await self.send(message, timeout=timeout)

    async def send(self, message: RequestMessage, *, timeout: float | None = None) -> Any:
        """Send a :class:`RequestMessage` and return the decoded reply."""
        reply = await self._in_pool(functools.partial(self._client.send, message, timeout=timeout))
        # The reply poller's thread settles `reply`; wrap_future hands the outcome to this
        # loop, and cancelling the wrapper cancels `reply`, which leaves the pending map.
        return await asyncio.wrap_future(reply)

    def proxy(
        self,
        service: Callable[..., T],
        queue_url: str,
        *,
        timeout: float | None = None,
        errors: Iterable[type[Exception]] = (),
    ) -> T:
        """A typed stand-in for a service, whose every method is awaited.

        ``service`` is a ``typing.Protocol`` (or a Service class) whose operations are all
        declared ``async def``, so type checkers see awaitables; for a service written with
        ``def`` methods, declare such a Protocol. Options as :meth:`RpcClient.proxy`.

        Example::

            class PricingAsync(Protocol):
                async def quote(self, sku: str, qty: int = 1) -> Quote: ...

            pricing = client.proxy(PricingAsync, queue_url)
            quotes = await asyncio.gather(pricing.quote("A-1"), pricing.quote("B-2"))
        """
        return cast(
            T,
            async_proxy(self, cast(type, service), queue_url, timeout=timeout, errors=errors),
        )

    async def publish(
        self,
        queue_url: str,
        payload: Any = None,
        *,
        attributes: Mapping[str, AttributeValue] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        delay_seconds: int = 0,
    ) -> str:
        """Send a one-way message (no reply is expected) and return its SQS message id."""
        send = functools.partial(
            self._client.publish,
            queue_url,
            payload,
            attributes=attributes,
            group_id=group_id,
            deduplication_id=deduplication_id,
            delay_seconds=delay_seconds,
        )
        return await self._in_pool(send)

    # -- lifecycle ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Fail pending calls, stop the threads, delete the reply queue. Idempotent.

        The blocking part, :meth:`RpcClient.close`, runs on the send pool, so the event loop
        keeps running meanwhile. It wakes and joins the reply poller and deletes the queue.
        """
        with self._lock:
            if self._state is ClientState.CLOSED:
                return
            self._state = ClientState.CLOSED
            pool = self._pool
        # Shutdown order: (1) new calls are refused (above); (2) the wrapped client closes,
        # failing the calls still waiting (their tasks see ClientClosedError); (3) the send
        # pool stops: its threads are idle by then and exit at once.
        try:
            if self._owns_client:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(pool, self._client.close)
        finally:
            if pool is not None:
                pool.shutdown(wait=False)

    # -- internals ---------------------------------------------------------------------------

    def _get_pool(self) -> ThreadPoolExecutor:
        """Open the client on first use and return the send pool, created lazily."""
        with self._lock:
            self._state = self._state.open("AsyncRpcClient")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self._send_threads,
                    thread_name_prefix=thread_name("async-send", owner_id(self)),
                )
            return self._pool

    async def _in_pool(self, function: Callable[[], T]) -> T:
        """Run a blocking ``function`` on the send pool, in the caller's context."""
        # copy_context: contextvars (the trace context among them) reach the send thread.
        context = contextvars.copy_context()
        submitted: Future[T] = self._get_pool().submit(context.run, function)
        try:
            return await asyncio.wrap_future(submitted)
        except asyncio.CancelledError:
            # Cancelled while the send was running: it cannot be stopped, but a call it
            # starts must not wait for a reply nobody will read.
            submitted.add_done_callback(_cancel_result)
            raise


def _cancel_result(submitted: Future[Any]) -> None:
    if submitted.cancelled() or submitted.exception() is not None:
        return
    result = submitted.result()
    if isinstance(result, Future):
        result.cancel()
