"""Proxies: typed stand-ins for a service behind a queue, built from its class or a Protocol.

``RpcClient.proxy(Pricing, url)`` returns an object with a method per operation of
``Pricing``. A method declared ``def`` blocks and returns the validated result; one declared
``async def`` returns an awaitable, and on an :class:`AsyncRpcClient` every method must be
``async def``. :func:`future` turns a blocking method into one that returns a
``concurrent.futures.Future``. Typing: ``proxy`` is declared to return the class itself, so
mypy checks each call against the service's own signatures.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sqs_rpc._errors import (
    ConfigurationError,
    RemoteError,
    RpcTimeout,
    ServiceError,
    ValidationError,
)
from sqs_rpc._futures import settle
from sqs_rpc._models import Invalid
from sqs_rpc._operations import Operation, operations_of

from .request import RequestMessage, check_queue_url

if TYPE_CHECKING:
    from .async_client import AsyncRpcClient
    from .client import RpcClient

__all__ = ["ErrorClasses", "async_proxy", "future", "sync_proxy"]

P = ParamSpec("P")
R = TypeVar("R")

ErrorClasses = Iterable[type[Exception]]

_START = "__sqs_rpc_start__"  # on a proxy's blocking method: starts the call, returns a Future


class _Proxy:
    """A service behind a queue: one attribute per operation."""

    def __init__(self, service: type, queue_url: str, methods: Mapping[str, Any]) -> None:
        self._service = service
        self._queue_url = queue_url
        for attribute, method in methods.items():
            setattr(self, attribute, method)

    def __repr__(self) -> str:
        return f"<proxy of {self._service.__qualname__} at {self._queue_url}>"


class _Errors:
    """The caller's registered exception classes, by the code or type name they answer to."""

    def __init__(self, classes: ErrorClasses) -> None:
        self._by_key: dict[str, type[Exception]] = {}
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, Exception)):
                raise ConfigurationError(f"errors=: {cls!r} is not an exception class")
            code = getattr(cls, "code", None)
            declared = isinstance(code, str) and "code" in _own_attributes(cls)
            self._by_key[str(code) if declared else cls.__name__] = cls

    def translate(self, exc: RemoteError) -> Exception:
        """The registered exception ``exc`` stands for, or ``exc`` itself."""
        cls = (exc.code is not None and self._by_key.get(exc.code)) or self._by_key.get(
            exc.error_type
        )
        if not cls:
            return exc
        if issubclass(cls, ServiceError):
            # Not through the class's own __init__, whose parameters are its author's: the
            # fields come from the reply, as the server set them.
            instance: Exception = cls.__new__(cls)
            Exception.__init__(instance, exc.remote_message)
            instance.code = exc.code or cls.code  # type: ignore[attr-defined]
            instance.message = exc.remote_message  # type: ignore[attr-defined]
            instance.details = exc.details  # type: ignore[attr-defined]
        else:
            instance = cls(exc.remote_message)
        instance.__cause__ = exc  # the reply as it came, for logs and debugging
        return instance


def _own_attributes(cls: type) -> set[str]:
    """Attributes declared by ``cls`` or its bases below sqs-rpc's own classes."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("sqs_rpc.") or klass.__module__ == "builtins":
            break
        names.update(vars(klass))
    return names


def _invalid_reply(operation: Operation, exc: Invalid) -> ValidationError:
    return ValidationError(
        "invalid_reply", f"the reply of {operation.name} does not fit its type: {exc}", exc.errors
    )


def _operations(service: type) -> dict[str, Operation]:
    if not isinstance(service, type):
        raise ConfigurationError(
            f"proxy() takes the service's class or a Protocol of it, not {service!r}"
        )
    operations = operations_of(service)
    if not operations:
        raise ConfigurationError(f"{service.__qualname__} has no operations to call")
    for operation in operations.values():
        operation.check_hints()  # unresolvable hints fail here, not at the first call
    return operations


def sync_proxy(
    client: RpcClient,
    service: type[Any],
    queue_url: str,
    *,
    timeout: float | None,
    errors: ErrorClasses,
) -> Any:
    """The proxy behind :meth:`RpcClient.proxy`."""
    check_queue_url(queue_url)
    registry = _Errors(errors)

    def start(
        operation: Operation, args: tuple[Any, ...], kwargs: dict[str, Any], seconds: float
    ) -> Future[Any]:
        message = RequestMessage(
            queue_url, operation.arguments(args, kwargs), operation=operation.name
        )
        raw = client.send(message, timeout=seconds)
        typed: Future[Any] = Future()

        def finish(done: Future[Any]) -> None:
            if done.cancelled():
                typed.cancel()
                return
            error = done.exception()
            if isinstance(error, RemoteError):
                error = registry.translate(error)
            if error is not None:
                settle(typed, error=error)
                return
            try:
                settle(typed, result=operation.result(done.result()))
            except Invalid as exc:
                settle(typed, error=_invalid_reply(operation, exc))

        raw.add_done_callback(finish)
        # Cancelling the typed future forgets the call, as cancelling call_async's does.
        typed.add_done_callback(lambda f: raw.cancel() if f.cancelled() else None)
        return typed

    def wait(future: Future[Any], seconds: float) -> Any:
        try:
            return future.result(timeout=seconds)
        except FutureTimeout:
            # Only if this wait ends a hair before the call's timer: as RpcClient.call does.
            error = RpcTimeout(f"no reply within {seconds:g}s")
            if not settle(future, error=error):
                return future.result(timeout=0)
            raise error from None

    def method(operation: Operation) -> Callable[..., Any]:
        if operation.is_async:

            async def call_async(*args: Any, **kwargs: Any) -> Any:
                seconds = client._timeout(timeout)
                return await asyncio.wrap_future(start(operation, args, kwargs, seconds))

            return call_async

        def call(*args: Any, **kwargs: Any) -> Any:
            # Resolved once (inside a handler it shrinks with time): the timer and the wait
            # below share it.
            seconds = client._timeout(timeout)
            return wait(start(operation, args, kwargs, seconds), seconds)

        def begin(*args: Any, **kwargs: Any) -> Future[Any]:
            return start(operation, args, kwargs, client._timeout(timeout))

        setattr(call, _START, begin)
        return call

    methods = {}
    for attribute, operation in _operations(service).items():
        bound = method(operation)
        functools.update_wrapper(bound, operation.function)
        methods[attribute] = bound
    return _Proxy(service, queue_url, methods)


def async_proxy(
    client: AsyncRpcClient,
    service: type[Any],
    queue_url: str,
    *,
    timeout: float | None,
    errors: ErrorClasses,
) -> Any:
    """The proxy behind :meth:`AsyncRpcClient.proxy`: every method returns an awaitable."""
    check_queue_url(queue_url)
    registry = _Errors(errors)
    operations = _operations(service)
    blocking = sorted(op.attribute for op in operations.values() if not op.is_async)
    if blocking:
        raise ConfigurationError(
            f"AsyncRpcClient.proxy({service.__qualname__}): {', '.join(blocking)} declared "
            "def, but an asyncio proxy returns awaitables: declare a Protocol of the service "
            "with async def methods and pass that, so that type checkers see awaitables"
        )

    def method(operation: Operation) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            message = RequestMessage(
                queue_url, operation.arguments(args, kwargs), operation=operation.name
            )
            try:
                data = await client.send(message, timeout=timeout)
            except RemoteError as exc:
                translated = registry.translate(exc)
                if translated is exc:
                    raise
                raise translated from exc
            try:
                return operation.result(data)
            except Invalid as exc:
                raise _invalid_reply(operation, exc) from None

        return functools.update_wrapper(call, operation.function)

    methods = {attribute: method(op) for attribute, op in operations.items()}
    return _Proxy(service, queue_url, methods)


def future(method: Callable[P, R]) -> Callable[P, Future[R]]:
    """A proxy method that returns a ``concurrent.futures.Future`` instead of blocking.

    For the blocking methods of an :meth:`RpcClient.proxy`. The future holds the validated
    result, or the exception the call would raise.

    Example::

        pricing = client.proxy(Pricing, queue_url)
        futures = [sqs_rpc.future(pricing.quote)(sku) for sku in skus]   # all sent at once
        quotes = [f.result() for f in futures]                            # list[Quote]
    """
    start = getattr(method, _START, None)
    if start is None:
        raise ConfigurationError(
            f"future() takes a blocking method of an RpcClient proxy, not {method!r}; an "
            "async method is awaited (asyncio.gather runs several at once)"
        )
    return start  # type: ignore[no-any-return]
