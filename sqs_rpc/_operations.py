"""Operations: the ``@rpc`` marker, and what both sides read from a service's class.

A server reads a :class:`~sqs_rpc.Service` subclass, a caller the same class or a
``typing.Protocol`` that mirrors it: an :class:`Operation` per method, with its wire name, its
signature and its type hints (resolved on first use, so that models may be defined after the
service). The body of a call is a JSON object of the arguments by name.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar, overload

from ._errors import ConfigurationError
from ._models import Invalid, from_data, to_data

__all__ = ["Operation", "operations_of", "rpc"]

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__sqs_rpc_operation__"


@overload
def rpc(function: F, /) -> F: ...
@overload
def rpc(*, name: str | None = None) -> Callable[[F], F]: ...
def rpc(function: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
    """Mark a method of a :class:`~sqs_rpc.Service` (or of its Protocol) as an operation.

    The operation's wire name is the method's name unless ``name=`` is given. Methods may be
    ``def`` (run on the poller's worker threads) or ``async def`` (run on its event loop).
    Arguments and results are JSON values, dataclasses, ``TypedDict``s, enums, datetimes or
    pydantic models, validated from the type hints.

    Example::

        class Pricing(Service):
            @rpc
            def quote(self, sku: str, qty: int = 1) -> Quote: ...

            @rpc(name="reprice-v2")
            async def reprice(self, sku: str) -> None: ...
    """

    def mark(function: F) -> F:
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigurationError(f"rpc(name={name!r}) must be a non-empty string")
        setattr(function, _MARK, name or function.__name__)
        return function

    return mark if function is None else mark(function)


class Operation:
    """One operation of a service: its names, its signature, and its hints (resolved lazily)."""

    def __init__(self, attribute: str, name: str, function: Callable[..., Any]) -> None:
        self.attribute = attribute  # the Python method's name
        self.name = name  # the wire name (SqsRpcOperation)
        self.function = function
        self.is_async = inspect.iscoroutinefunction(function)
        signature = inspect.signature(function)
        parameters = list(signature.parameters.values())[1:]  # without self
        for parameter in parameters:
            if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                raise ConfigurationError(
                    f"operation {name!r}: parameter {parameter} cannot be sent by name; use "
                    "plain or keyword-only parameters (no *args, **kwargs or positional-only)"
                )
        self.signature = signature.replace(parameters=parameters)

    def __repr__(self) -> str:
        return f"<Operation {self.name} {self.signature}>"

    @functools.cached_property
    def hints(self) -> dict[str, Any]:
        try:
            return typing.get_type_hints(self.function, include_extras=True)
        except Exception as exc:
            raise ConfigurationError(
                f"cannot resolve the type hints of operation {self.name!r}: {exc!r}; define "
                "its models at module level"
            ) from exc

    def check_hints(self) -> None:
        """Raise ConfigurationError now if the hints cannot be resolved."""
        _ = self.hints

    # -- the caller's side -------------------------------------------------------------------

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The request body: arguments by name (defaults left to the server), as JSON data."""
        bound = self.signature.bind(*args, **kwargs)  # TypeError, as a wrong Python call
        return {name: to_data(value) for name, value in bound.arguments.items()}

    def result(self, data: Any) -> Any:
        """The typed result; raise :class:`Invalid` when the reply does not fit."""
        return from_data(self.hints.get("return", Any), data)

    # -- the server's side -------------------------------------------------------------------

    def parse(self, body: Any) -> dict[str, Any]:
        """The keyword arguments of a request body; raise :class:`Invalid` if they do not fit."""
        if not isinstance(body, dict):
            raise Invalid(
                [{"loc": [], "msg": "the arguments must be a JSON object", "type": "dict_type"}]
            )
        errors: list[dict[str, Any]] = []
        values: dict[str, Any] = {}
        parameters = self.signature.parameters
        for key in body:
            if key not in parameters:
                errors.append(
                    {"loc": [str(key)[:100]], "msg": "unexpected argument", "type": "unexpected"}
                )
        for name, parameter in parameters.items():
            if name not in body:
                if parameter.default is parameter.empty:
                    errors.append({"loc": [name], "msg": "argument required", "type": "missing"})
                continue
            try:
                values[name] = from_data(self.hints.get(name, Any), body[name])
            except Invalid as exc:
                for error in exc.errors:
                    errors.append({**error, "loc": [name, *error["loc"]]})
        if errors:
            raise Invalid(errors)
        return values


def operations_of(cls: type, *, marked_only: bool = False) -> dict[str, Operation]:
    """The operations of a Service subclass or a Protocol, by Python attribute name.

    Methods marked ``@rpc``; when there are none and not ``marked_only`` (a plain Protocol),
    every public method. Inherited methods count; sqs-rpc's own classes' do not.
    """
    functions: dict[str, Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__):
        module = getattr(klass, "__module__", "")
        if klass is object or module in {"typing", "abc"} or module.startswith("sqs_rpc."):
            continue
        for attribute, value in vars(klass).items():
            if inspect.isfunction(value):
                functions[attribute] = value
    marked = {
        attribute: function
        for attribute, function in functions.items()
        if getattr(function, _MARK, None) is not None
    }
    if not marked and not marked_only:
        marked = {a: f for a, f in functions.items() if not a.startswith("_")}
    operations: dict[str, Operation] = {}
    names: dict[str, str] = {}
    for attribute, function in marked.items():
        name = getattr(function, _MARK, None) or attribute
        if name in names:
            raise ConfigurationError(
                f"{cls.__qualname__}: methods {names[name]!r} and {attribute!r} are both "
                f"operation {name!r}; give one another rpc(name=...)"
            )
        names[name] = attribute
        operations[attribute] = Operation(attribute, name, function)
    return operations
