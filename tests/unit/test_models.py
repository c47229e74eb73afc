"""Models on the wire: encoding by value, validation by hint, pydantic only when used."""

from __future__ import annotations

import datetime
import enum
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal, TypedDict

import pydantic
import pytest

from sqs_rpc._models import Invalid, from_data, to_data
from tests.support.helpers import ROOT


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(TypedDict):
    x: int
    y: int


@dataclass
class Shape:
    name: str
    colour: Colour
    points: list[Point]
    made: datetime.datetime
    tags: set[str] = field(default_factory=set)
    ratio: float = 1.0
    id: uuid.UUID | None = None


class Price(pydantic.BaseModel):
    amount: Decimal
    currency: Literal["EUR", "USD"]


def test_dataclass_round_trip() -> None:
    made = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    shape = Shape("tri", Colour.RED, [{"x": 1, "y": 2}], made, {"a"}, 2, uuid.UUID(int=5))
    data = to_data(shape)
    assert data["made"] == "2024-05-06T07:08:09+00:00"
    assert data["colour"] == "red"
    assert from_data(Shape, data) == shape


def test_errors_name_every_place() -> None:
    data = {"name": 1, "colour": "green", "points": [{"x": 1}, {"x": "a", "y": 2}], "made": "x"}
    with pytest.raises(Invalid) as raised:
        from_data(Shape, data)
    assert sorted((e["loc"], e["type"]) for e in raised.value.errors) == [
        (["colour"], "enum"),
        (["made"], "datetime_parsing"),
        (["name"], "string_type"),
        (["points", 0, "y"], "missing"),
        (["points", 1, "x"], "int_type"),
    ]


@pytest.mark.parametrize(
    ("hint", "data", "value"),
    [
        (int | None, None, None),
        (float, 3, 3.0),
        (
            datetime.datetime,
            "2024-01-01T00:00:00Z",
            datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
        ),
        (datetime.date, "2024-02-29", datetime.date(2024, 2, 29)),
        (tuple[int, str], [1, "a"], (1, "a")),
        (dict[str, list[int]], {"a": [1]}, {"a": [1]}),
        (Literal[1, "a"], "a", "a"),
        (Annotated[int, "meta"], 4, 4),
        (Any, {"x": [1]}, {"x": [1]}),
    ],
)
def test_hints_accept(hint: Any, data: Any, value: Any) -> None:
    assert from_data(hint, data) == value


@pytest.mark.parametrize(
    ("hint", "data"),
    [
        (int, True),
        (int, 1.5),
        (bool, 1),
        (str, None),
        (Literal[1], True),
        (list[int], {}),
        (tuple[int, int], [1]),
        (int | str, []),
    ],
)
def test_hints_refuse(hint: Any, data: Any) -> None:
    with pytest.raises(Invalid):
        from_data(hint, data)


def test_unknown_object_keys_are_ignored() -> None:
    assert from_data(Point, {"x": 1, "y": 2, "z": 3}) == {"x": 1, "y": 2}


def test_pydantic_models_and_their_errors() -> None:
    price = Price(amount=Decimal("1.50"), currency="EUR")
    assert to_data(price) == {"amount": "1.50", "currency": "EUR"}
    assert from_data(list[Price], [to_data(price)]) == [price]
    with pytest.raises(Invalid) as raised:
        from_data(list[Price], [{"amount": "x", "currency": "GBP"}])
    assert sorted(e["loc"][-1] for e in raised.value.errors) == ["amount", "currency"]


def test_pydantic_is_not_imported_without_pydantic_models() -> None:
    code = (
        "import sys, datetime, sqs_rpc\n"
        "from sqs_rpc._models import from_data, to_data\n"
        "from tests.support.services import Pricing, Quote\n"
        "q = from_data(Quote, to_data(Quote('a', 1)))\n"
        "assert 'pydantic' not in sys.modules, 'pydantic imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
