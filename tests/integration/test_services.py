"""Typed services end to end: routing, proxies, models, error details, nested deadlines."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from typing import Any

import pytest

import sqs_rpc
from sqs_rpc import (
    AsyncRpcClient,
    ConfigurationError,
    IncomingMessage,
    MessageHandler,
    MessagePoller,
    RemoteError,
    RequestMessage,
    RpcClient,
    ValidationError,
)
from tests.support.services import (
    Front,
    OutOfStock,
    Pricing,
    PricingAsync,
    PricingProtocol,
    Quote,
    Tier,
)

Serve = Callable[..., MessagePoller]

UNTIL = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


@pytest.fixture
def pricing_url(queue_url: str, serve: Serve) -> str:
    serve(queue_url, Pricing(), concurrency=4)
    return queue_url


def test_service_call_returns_a_validated_model(client: RpcClient, pricing_url: str) -> None:
    pricing = client.proxy(Pricing, pricing_url)
    quote = pricing.quote("A-1", qty=3, tier=Tier.GOLD)
    assert quote == Quote("A-1", 750, Tier.GOLD, UNTIL, ["a", "b"])


def test_positional_arguments_travel_by_name(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    service = Pricing()
    serve(queue_url, service)
    pricing = client.proxy(Pricing, queue_url)
    assert pricing.quote("B", 2).price_cents == 500
    totals = pricing.total([{"sku": "x", "qty": 2}], datetime.date(2024, 2, 29))
    assert totals == {"x": 2}
    assert service.calls == [
        ("quote", ("B", 2, Tier.BASIC)),  # the default filled in by the server
        ("total", ([{"sku": "x", "qty": 2}], datetime.date(2024, 2, 29))),
    ]


def test_protocol_proxy_needs_no_server_code(client: RpcClient, pricing_url: str) -> None:
    pricing = client.proxy(PricingProtocol, pricing_url)
    assert pricing.quote("P").sku == "P"
    assert not hasattr(pricing, "reprice")  # the Protocol's operations only
    assert "PricingProtocol" in repr(pricing)


def test_async_operation_from_a_blocking_client(
    client: RpcClient, queue_url: str, serve: Serve
) -> None:
    service = Pricing()
    serve(queue_url, service)
    pricing = client.proxy(Pricing, queue_url)
    assert asyncio.run(pricing.reprice("R")) is None  # declared async def: awaited
    assert service.calls == [("reprice", "R")]


def test_future_sends_now_and_returns_the_model(client: RpcClient, pricing_url: str) -> None:
    pricing = client.proxy(Pricing, pricing_url)
    futures = [sqs_rpc.future(pricing.quote)(sku) for sku in ("F1", "F2", "F3")]
    assert [f.result(timeout=10).sku for f in futures] == ["F1", "F2", "F3"]
    with pytest.raises(ConfigurationError, match="blocking method"):
        sqs_rpc.future(pricing.reprice)


def test_async_client_proxy(sqs: Any, pricing_url: str) -> None:
    async def main() -> tuple[list[Quote], float | None]:
        async with AsyncRpcClient(sqs_client=sqs, default_timeout=10) as client:
            pricing = client.proxy(PricingAsync, pricing_url)
            quotes = await asyncio.gather(pricing.quote("X"), pricing.quote("Y", qty=2))
            await pricing.reprice("X")
            return list(quotes), await pricing.budget()

    quotes, budget = asyncio.run(main())
    assert [q.price_cents for q in quotes] == [250, 500]
    assert budget is not None
    assert 0 < budget <= 10


def test_async_client_refuses_blocking_methods(sqs: Any, pricing_url: str) -> None:
    client = AsyncRpcClient(sqs_client=sqs)
    with pytest.raises(ConfigurationError, match="async def"):
        client.proxy(PricingProtocol, pricing_url)


def test_unknown_operation_names_the_known_ones(client: RpcClient, pricing_url: str) -> None:
    with pytest.raises(RemoteError) as raised:
        client.send(RequestMessage(pricing_url, {}, operation="nope")).result(timeout=10)
    assert raised.value.error_type == "UnknownOperation"
    assert raised.value.code == "unknown_operation"
    assert raised.value.details is not None
    assert raised.value.details["operation"] == "nope"
    assert "quote" in raised.value.details["known"]
    with pytest.raises(RemoteError, match="has no operation None"):
        client.call(pricing_url, {"sku": "A"})  # a plain call names no operation


def test_invalid_arguments_are_an_error_reply(client: RpcClient, pricing_url: str) -> None:
    body = {"sku": 5, "qty": "many", "colour": "red"}
    with pytest.raises(RemoteError) as raised:
        client.send(RequestMessage(pricing_url, body, operation="quote")).result(timeout=10)
    assert raised.value.error_type == "ValidationError"
    assert raised.value.code == "invalid_arguments"
    assert raised.value.details is not None
    errors = raised.value.details["errors"]
    assert sorted((e["loc"], e["type"]) for e in errors) == [
        (["colour"], "unexpected"),
        (["qty"], "int_type"),
        (["sku"], "string_type"),
    ]


def test_missing_and_nested_errors_name_their_place(client: RpcClient, pricing_url: str) -> None:
    body = {"lines": [{"sku": "a", "qty": 1}, {"sku": "b"}], "when": "not a date"}
    with pytest.raises(RemoteError) as raised:
        client.send(RequestMessage(pricing_url, body, operation="total")).result(timeout=10)
    assert raised.value.details is not None
    locs = sorted(e["loc"] for e in raised.value.details["errors"])
    assert locs == [["lines", 1, "qty"], ["when"]]


def test_a_reply_that_does_not_fit_raises_validation_error(
    client: RpcClient, pricing_url: str
) -> None:
    pricing = client.proxy(Pricing, pricing_url)
    with pytest.raises(ValidationError) as raised:
        pricing.broken_reply()
    assert raised.value.code == "invalid_reply"
    assert {e["type"] for e in raised.value.errors} == {"string_type", "missing"}


def test_service_error_code_and_details_reach_the_caller(
    client: RpcClient, pricing_url: str
) -> None:
    pricing = client.proxy(Pricing, pricing_url)
    with pytest.raises(RemoteError) as raised:
        pricing.quote("plain")
    assert (raised.value.error_type, raised.value.code) == ("ServiceError", "plain_code")
    assert raised.value.details == {"n": 1}
    with pytest.raises(RemoteError) as unregistered:
        pricing.quote("none")
    assert unregistered.value.code == "out_of_stock"
    assert unregistered.value.details == {"sku": "none"}


def test_registered_errors_are_raised_as_themselves(client: RpcClient, pricing_url: str) -> None:
    pricing = client.proxy(Pricing, pricing_url, errors=[OutOfStock, KeyError])
    with pytest.raises(OutOfStock) as raised:
        pricing.quote("none")
    assert (raised.value.code, raised.value.details) == ("out_of_stock", {"sku": "none"})
    assert isinstance(raised.value.__cause__, RemoteError)
    with pytest.raises(RemoteError):  # registered classes only: ServiceError is not
        pricing.quote("plain")
    future = sqs_rpc.future(pricing.quote)("none")
    assert isinstance(future.exception(timeout=10), OutOfStock)


def test_async_proxy_raises_registered_errors(sqs: Any, pricing_url: str) -> None:
    async def main() -> None:
        async with AsyncRpcClient(sqs_client=sqs, default_timeout=10) as client:
            pricing = client.proxy(PricingAsync, pricing_url, errors=[OutOfStock])
            with pytest.raises(OutOfStock):
                await pricing.quote("none")

    asyncio.run(main())


class Router(MessageHandler):
    """A plain handler still works, and may route by hand."""

    def handle(self, message: IncomingMessage) -> Any:
        return {"operation": message.operation, "body": message.body}


def test_plain_handler_sees_the_operation(client: RpcClient, queue_url: str, serve: Serve) -> None:
    serve(queue_url, Router())
    assert client.call(queue_url, 1) == {"operation": None, "body": 1}
    routed = client.send(RequestMessage(queue_url, {"a": 1}, operation="op")).result(timeout=10)
    assert routed == {"operation": "op", "body": {"a": 1}}


def test_service_call_leaves_two_attributes(client: RpcClient, queue_url: str) -> None:
    three = {"a": "1", "b": "2", "c": "3"}
    with pytest.raises(ConfigurationError, match="at most 2"):
        client.send(RequestMessage(queue_url, {}, attributes=three, operation="op"))


# -- nested deadlines ------------------------------------------------------------------------


def test_nested_call_defaults_to_the_inbound_deadline(
    sqs: Any, client: RpcClient, make_queue: Callable[..., str], serve: Serve
) -> None:
    pricing_url, front_url = make_queue(), make_queue()
    serve(pricing_url, Pricing())
    with RpcClient(sqs_client=sqs, default_timeout=60) as inner_client:
        serve(front_url, Front(inner_client, pricing_url))
        front = client.proxy(Front, front_url, timeout=8)
        budgets = front.budgets()
    outer, inner = budgets["outer"], budgets["inner"]
    assert outer is not None
    assert inner is not None
    assert 0 < inner <= outer <= 8  # not the inner client's default of 60


def test_nested_call_with_a_longer_timeout_is_capped(
    sqs: Any, client: RpcClient, make_queue: Callable[..., str], serve: Serve
) -> None:
    pricing_url, front_url = make_queue(), make_queue()
    serve(pricing_url, Pricing())
    with RpcClient(sqs_client=sqs) as inner_client:
        serve(front_url, Front(inner_client, pricing_url))
        budgets = client.proxy(Front, front_url, timeout=8).budgets(timeout=300)
    outer, inner = budgets["outer"], budgets["inner"]
    assert outer is not None
    assert inner is not None
    assert 0 < inner <= outer <= 8


def test_async_handler_reads_its_budget(client: RpcClient, pricing_url: str) -> None:
    budget = asyncio.run(client.proxy(Pricing, pricing_url, timeout=7).budget_async())
    assert budget is not None
    assert 0 < budget <= 7
    assert sqs_rpc.remaining_time() is None  # outside a handler
