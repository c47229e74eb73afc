"""Service routing, operations, deadline propagation and the typing of proxies, without SQS."""

from __future__ import annotations

import asyncio
import contextvars
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from sqs_rpc import ConfigurationError, IncomingMessage, RpcTimeout, Service, ValidationError, rpc
from sqs_rpc._deadline_context import bounded_timeout, remaining_time, set_inbound_deadline
from sqs_rpc._operations import operations_of
from sqs_rpc._server.service import UnknownOperation
from tests.support.helpers import ROOT
from tests.support.services import Pricing, PricingAsync, PricingProtocol, Quote, Tier


def _message(operation: str | None, body: Any) -> IncomingMessage:
    return IncomingMessage(body=body, operation=operation)


def test_handle_routes_and_encodes() -> None:
    result = Pricing().handle(_message("quote", {"sku": "A", "tier": "gold"}))
    assert result["price_cents"] == 250
    assert result["tier"] == "gold"
    assert result["valid_until"] == "2030-01-02T03:04:05+00:00"


def test_async_operations_return_a_coroutine() -> None:
    service = Pricing()
    assert asyncio.run(service.handle(_message("reprice", {"sku": "A"}))) is None
    assert service.calls == [("reprice", "A")]


def test_unknown_operation() -> None:
    with pytest.raises(UnknownOperation) as raised:
        Pricing().handle(_message("x" * 500, {}))
    assert raised.value.details is not None
    assert len(raised.value.details["operation"]) == 100  # a sender's name, bounded


def test_arguments_must_be_an_object() -> None:
    with pytest.raises(ValidationError) as raised:
        Pricing().handle(_message("quote", ["A"]))
    assert raised.value.code == "invalid_arguments"


def test_operations_of_service_and_protocols() -> None:
    assert set(operations_of(Pricing, marked_only=True)) == {
        "quote",
        "total",
        "reprice",
        "broken_reply",
        "budget",
        "budget_async",
    }
    assert operations_of(Pricing)["broken_reply"].name == "broken"
    assert set(operations_of(PricingProtocol)) == {"quote", "total"}
    assert all(op.is_async for op in operations_of(PricingAsync).values())


def test_arguments_bind_like_a_python_call() -> None:
    quote = operations_of(PricingProtocol)["quote"]
    assert quote.arguments(("A", 2), {"tier": Tier.GOLD}) == {"sku": "A", "qty": 2, "tier": "gold"}
    with pytest.raises(TypeError):
        quote.arguments(("A",), {"colour": "red"})
    assert quote.result({"sku": "A", "price_cents": 1}) == Quote("A", 1)


def test_operations_refuse_var_arguments() -> None:
    with pytest.raises(ConfigurationError, match="by name"):

        class Bad(Service):
            @rpc
            def op(self, *args: int) -> None: ...


def test_duplicate_operation_names_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="both"):

        class Twice(Service):
            @rpc(name="op")
            def one(self) -> None: ...

            @rpc(name="op")
            def two(self) -> None: ...


# -- deadlines -------------------------------------------------------------------------------


def _in_handler(deadline: float | None, timeout: float | None) -> float:
    def run() -> float:
        set_inbound_deadline(deadline)
        return bounded_timeout(timeout, 30.0)

    return contextvars.Context().run(run)


def test_outside_a_handler_the_timeout_stands() -> None:
    assert bounded_timeout(None, 30.0) == 30.0
    assert bounded_timeout(100.0, 30.0) == 100.0
    assert remaining_time() is None


def test_inside_a_handler_the_deadline_bounds_calls() -> None:
    deadline = time.time() + 5
    assert 0 < _in_handler(deadline, None) <= 5  # the default: the time left
    assert 0 < _in_handler(deadline, 60.0) <= 5  # capped
    assert _in_handler(deadline, 1.0) == 1.0  # shorter stands
    assert _in_handler(None, None) == 30.0  # a one-way message has no deadline


def test_no_time_left_fails_before_sending() -> None:
    with pytest.raises(RpcTimeout, match="ran out of time"):
        _in_handler(time.time() - 1, None)


# -- what mypy checks --------------------------------------------------------------------------


def _mypy(tmp_path: Path, source: str) -> tuple[str, int]:
    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(source))
    # The project's own configuration (strict) and cache: a warm cache makes this quick.
    # mypy comes with the dev extra (CI installs it); the test extra alone skips this check.
    mypy_api = pytest.importorskip("mypy.api", reason="mypy is in the dev extra")
    out, err, status = mypy_api.run([str(path)])
    return out + err, status


SNIPPET = """
    from tests.support.services import Pricing, PricingProtocol, Quote
    from sqs_rpc import RpcClient, future

    def use(client: RpcClient, url: str) -> None:
        pricing = client.proxy(Pricing, url)
        ok: Quote = pricing.quote("A", qty=2)
        api = client.proxy(PricingProtocol, url)
        fut = future(api.quote)("B")
        reveal_type(fut)
        {wrong}
"""


@pytest.mark.timeout(180)
def test_mypy_checks_proxy_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    output, status = _mypy(tmp_path, SNIPPET.format(wrong='api.quote(3, qty="many")'))
    assert status == 1, output
    assert 'Argument 1 to "quote" of "PricingProtocol" has incompatible type "int"' in output
    assert "[arg-type]" in output
    assert (
        'Revealed type is "concurrent.futures._base.Future[tests.support.services.Quote]"' in output
    )
    output, status = _mypy(tmp_path, SNIPPET.format(wrong="pass"))
    assert status == 0, output
