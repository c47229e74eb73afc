"""Models on the wire: values to JSON-compatible data, and data back to typed values.

:func:`to_data` encodes by the value's own type: dataclasses and ``TypedDict``s become
objects, enums their value, datetimes ISO 8601 strings, pydantic v2 models
``model_dump(mode="json")``. :func:`from_data` validates data against a type hint and builds
the value; it collects every problem, as pydantic does (``loc``, ``msg``, ``type``), and
raises :class:`Invalid` with them. pydantic is imported only when a pydantic model is met.

Supported hints: ``Any``, ``None``, ``bool``, ``int``, ``float``, ``str``, ``Decimal``,
``UUID``, ``datetime``/``date``/``time``, enums, ``Literal``, ``X | Y`` and ``Optional``,
``list``/``Sequence``, ``tuple``, ``set``/``frozenset``, ``dict``/``Mapping`` with ``str``
keys, dataclasses, ``TypedDict``s, pydantic models, ``Annotated`` (its metadata is ignored).
An object's unknown keys are ignored, so that a newer peer may add fields.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import sys
import types
import typing
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from typing_extensions import is_typeddict

__all__ = ["Invalid", "from_data", "to_data"]

Loc = tuple[str | int, ...]


class Invalid(Exception):
    """Data that does not fit a type hint; ``errors`` lists every problem."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(_describe(error) for error in errors[:5]))
        self.errors = errors


def _describe(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


# -- encoding ------------------------------------------------------------------------------


def to_data(value: Any) -> Any:
    """``value`` as JSON-compatible data (by its own type, not a hint)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return to_data(value.value)
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: to_data(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {str(key): to_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_data(item) for item in value]
    pydantic = sys.modules.get("pydantic")  # a pydantic model means pydantic is imported
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    return value  # left to the codec, which refuses what it cannot encode


# -- decoding ------------------------------------------------------------------------------


def from_data(hint: Any, data: Any) -> Any:
    """Build a value of type ``hint`` from JSON data; raise :class:`Invalid` if it does not fit."""
    errors: list[dict[str, Any]] = []
    value = _build(hint, data, (), errors)
    if errors:
        raise Invalid(errors)
    return value


def _error(errors: list[dict[str, Any]], loc: Loc, kind: str, msg: str) -> None:
    errors.append({"loc": list(loc), "msg": msg, "type": kind})


def _type_name(data: Any) -> str:
    return {
        type(None): "null",
        bool: "boolean",
        int: "number",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(data), type(data).__name__)


_SENTINEL = object()


def _build(hint: Any, data: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
    if hint is Any or hint is object:
        return data
    if hint is None or hint is type(None):
        if data is not None:
            _error(errors, loc, "none_required", f"expected null, got {_type_name(data)}")
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _build(args[0], data, loc, errors)
    if origin is typing.Union or origin is types.UnionType:
        return _union(args, data, loc, errors)
    if origin is typing.Literal:
        # type() too: True == 1, but Literal[1] does not take true.
        if not any(data == arg and type(data) is type(arg) for arg in args):
            choices = ", ".join(repr(arg) for arg in args)
            _error(errors, loc, "literal_error", f"expected one of {choices}, got {data!r}")
            return None
        return data
    if origin is not None:
        return _generic(origin, args, data, loc, errors)
    if not isinstance(hint, type):
        raise TypeError(f"unsupported type hint {hint!r}")
    simple = _simple(hint, data, loc, errors)
    if simple is not _SENTINEL:
        return simple
    if dataclasses.is_dataclass(hint):
        return _dataclass(hint, data, loc, errors)
    if is_typeddict(hint):
        return _typeddict(hint, data, loc, errors)
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(hint, pydantic.BaseModel):
        return _pydantic(pydantic, hint, data, loc, errors)
    if isinstance(data, hint):  # anything else the codec decoded as it is
        return data
    raise TypeError(
        f"unsupported type {hint.__qualname__}; use a dataclass, TypedDict, enum or pydantic model"
    )


def _simple(hint: type, data: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
    """Scalars, enums and dates; ``_SENTINEL`` when ``hint`` is none of them."""
    if hint is bool:
        if not isinstance(data, bool):
            _error(errors, loc, "bool_type", f"expected a boolean, got {_type_name(data)}")
        return data
    if hint is int:
        if isinstance(data, bool) or not isinstance(data, int):
            _error(errors, loc, "int_type", f"expected an integer, got {_type_name(data)}")
        return data
    if hint is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            _error(errors, loc, "float_type", f"expected a number, got {_type_name(data)}")
            return data
        return float(data)
    if hint is str:
        if not isinstance(data, str):
            _error(errors, loc, "string_type", f"expected a string, got {_type_name(data)}")
        return data
    if issubclass(hint, enum.Enum):
        try:
            return hint(data)
        except ValueError:
            choices = ", ".join(repr(member.value) for member in hint)
            _error(errors, loc, "enum", f"expected one of {choices}, got {data!r}")
            return None
    parsers: dict[type, Any] = {
        datetime.datetime: datetime.datetime.fromisoformat,
        datetime.date: datetime.date.fromisoformat,
        datetime.time: datetime.time.fromisoformat,
        Decimal: Decimal,
        uuid.UUID: uuid.UUID,
    }
    parse = parsers.get(hint)
    if parse is None:
        return _SENTINEL
    if not isinstance(data, str):
        _error(errors, loc, "string_type", f"expected a {hint.__name__} string")
        return None
    if hint is datetime.datetime and data.endswith(("Z", "z")):
        data = data[:-1] + "+00:00"  # Python 3.10's fromisoformat does not read "Z"
    try:
        return parse(data)
    except (ValueError, InvalidOperation):
        kind = hint.__name__.lower()
        _error(errors, loc, f"{kind}_parsing", f"not a valid {kind}: {data[:100]!r}")
        return None


def _union(args: tuple[Any, ...], data: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
    # None first: an Optional's null never tries the other type.
    ordered = sorted(args, key=lambda arg: arg is not type(None))
    for arg in ordered:
        attempt: list[dict[str, Any]] = []
        value = _build(arg, data, loc, attempt)
        if not attempt:
            return value
    names = " | ".join(getattr(arg, "__name__", repr(arg)) for arg in args)
    _error(errors, loc, "union", f"does not fit any of {names}")
    return None


def _generic(
    origin: Any, args: tuple[Any, ...], data: Any, loc: Loc, errors: list[dict[str, Any]]
) -> Any:
    if origin in (dict, Mapping, typing.Mapping) or (
        isinstance(origin, type) and issubclass(origin, Mapping)
    ):
        if not isinstance(data, dict):
            _error(errors, loc, "dict_type", f"expected an object, got {_type_name(data)}")
            return None
        value_hint = args[1] if len(args) == 2 else Any
        return {key: _build(value_hint, item, (*loc, key), errors) for key, item in data.items()}
    if not isinstance(data, list):
        _error(errors, loc, "list_type", f"expected an array, got {_type_name(data)}")
        return None
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], item, (*loc, i), errors) for i, item in enumerate(data))
        if len(args) != len(data):
            _error(errors, loc, "tuple_length", f"expected {len(args)} items, got {len(data)}")
            return None
        pairs = enumerate(zip(args, data, strict=True))
        return tuple(_build(arg, item, (*loc, i), errors) for i, (arg, item) in pairs)
    item_hint = args[0] if args else Any
    items = [_build(item_hint, item, (*loc, i), errors) for i, item in enumerate(data)]
    if origin in (set, frozenset):
        try:
            return origin(items)
        except TypeError:
            _error(errors, loc, "set_type", "items are not hashable")
            return None
    if origin in (list, Sequence, typing.Sequence) or (
        isinstance(origin, type) and issubclass(origin, Sequence)
    ):
        return items
    raise TypeError(f"unsupported type hint {origin!r}")


def _fields(
    hints: Mapping[str, Any],
    required: set[str],
    data: Any,
    loc: Loc,
    errors: list[dict[str, Any]],
) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        _error(errors, loc, "model_type", f"expected an object, got {_type_name(data)}")
        return None
    values: dict[str, Any] = {}
    for name, hint in hints.items():
        if name in data:
            values[name] = _build(hint, data[name], (*loc, name), errors)
        elif name in required:
            _error(errors, (*loc, name), "missing", "field required")
    return values


def _dataclass(hint: type, data: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
    hints = typing.get_type_hints(hint, include_extras=True)
    fields = {field.name: field for field in dataclasses.fields(hint) if field.init}
    required = {
        name
        for name, field in fields.items()
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    }
    before = len(errors)
    values = _fields({name: hints[name] for name in fields}, required, data, loc, errors)
    if values is None or len(errors) > before:
        return None
    try:
        return hint(**values)
    except (TypeError, ValueError) as exc:  # a __post_init__ check
        _error(errors, loc, "value_error", str(exc))
        return None


def _typeddict(hint: type, data: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
    hints = typing.get_type_hints(hint, include_extras=True)
    required = set(getattr(hint, "__required_keys__", hints))
    return _fields(hints, required, data, loc, errors)


def _pydantic(pydantic: Any, hint: Any, data: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
    try:
        return hint.model_validate(data)
    except pydantic.ValidationError as exc:
        for error in exc.errors(include_url=False, include_context=False, include_input=False):
            _error(errors, (*loc, *error["loc"]), error["type"], error["msg"])
        return None
