"""Typed services as a user writes them; checked by mypy --strict (not collected by pytest).

The proxy is typed as the service class (or Protocol) itself, so mypy checks each call's
arguments and result against the operation's own signature.
"""

from __future__ import annotations

import asyncio
import datetime
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

import sqs_rpc
from sqs_rpc import (
    AsyncRpcClient,
    MessagePoller,
    RemoteError,
    RpcClient,
    Service,
    ServiceError,
    ValidationError,
    remaining_time,
    rpc,
)


@dataclass
class Quote:
    sku: str
    price_cents: int
    valid_until: datetime.datetime | None = None


class OutOfStock(ServiceError):
    code = "out_of_stock"


class Pricing(Service):
    @rpc
    def quote(self, sku: str, qty: int = 1) -> Quote:
        left: float | None = remaining_time()
        if left is not None and left < 0.1:
            raise ServiceError("no_time", "not enough time left", details={"left": left})
        return Quote(sku, 250 * qty)

    @rpc(name="reprice")
    async def reprice(self, sku: str) -> None:
        await asyncio.sleep(0)


class PricingApi(Protocol):
    def quote(self, sku: str, qty: int = 1) -> Quote: ...


class PricingAsync(Protocol):
    async def quote(self, sku: str, qty: int = 1) -> Quote: ...


def serve(queue_url: str) -> MessagePoller:
    return MessagePoller(queue_url, Pricing())


def call(queue_url: str) -> None:
    with RpcClient() as client:
        pricing = client.proxy(Pricing, queue_url, timeout=5, errors=[OutOfStock])
        quote: Quote = pricing.quote("A-1", qty=3)
        cents: int = quote.price_cents
        later: Future[Quote] = sqs_rpc.future(pricing.quote)("B-2", 2)
        api = client.proxy(PricingApi, queue_url)
        again: Quote = api.quote("C-3")
        try:
            asyncio.run(pricing.reprice("A-1"))
        except OutOfStock as exc:
            print(exc.code, exc.details)
        except ValidationError as exc:
            print(exc.errors)
        except RemoteError as exc:
            print(exc.code, exc.details)
        print(cents, later.result(), again)


async def call_async(queue_url: str) -> list[Quote]:
    async with AsyncRpcClient() as client:
        pricing = client.proxy(PricingAsync, queue_url)
        return list(await asyncio.gather(pricing.quote("A-1"), pricing.quote("B-2", qty=2)))
