"""A typed service with models, called through a proxy, on the embedded SQS-compatible server.

    python examples/typed_service.py

Needs the server extra: pip install -e ".[server]".
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from typing import Protocol

import sqs_rpc
from sqs_rpc import EmbeddedSqs, MessagePoller, RemoteError, RpcClient, Service, ServiceError, rpc


class Tier(enum.Enum):
    BASIC = "basic"
    GOLD = "gold"


@dataclass
class Quote:
    sku: str
    price_cents: int
    valid_until: datetime.datetime


class OutOfStock(ServiceError):
    code = "out_of_stock"

    def __init__(self, sku: str) -> None:
        super().__init__(self.code, f"no stock of {sku}", details={"sku": sku})


# -- the server's code -------------------------------------------------------------------------


class Pricing(Service):
    @rpc
    def quote(self, sku: str, qty: int = 1, tier: Tier = Tier.BASIC) -> Quote:
        if sku == "X-0":
            raise OutOfStock(sku)
        price = 250 * qty * (80 if tier is Tier.GOLD else 100) // 100
        until = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
        return Quote(sku, price, until)


# -- the caller's code: a Protocol, so it needs nothing of the server's --------------------------


class PricingApi(Protocol):
    def quote(self, sku: str, qty: int = 1, tier: Tier = Tier.BASIC) -> Quote: ...


def main() -> None:
    with EmbeddedSqs() as sqs:
        queue_url = sqs.create_queue("pricing-requests")
        poller = MessagePoller(queue_url, Pricing(), sqs_client=sqs.client(), wait_time_seconds=1)
        poller.start()
        try:
            with RpcClient(sqs_client=sqs.client()) as client:
                pricing = client.proxy(PricingApi, queue_url, timeout=10, errors=[OutOfStock])
                quote = pricing.quote("A-1", qty=3, tier=Tier.GOLD)  # a Quote, validated
                print(f"{quote.sku}: {quote.price_cents} cents until {quote.valid_until:%Y-%m-%d}")
                futures = [sqs_rpc.future(pricing.quote)(sku) for sku in ("B-2", "C-3")]
                print("concurrent:", [f.result(timeout=10).price_cents for f in futures])
                try:
                    pricing.quote("X-0")
                except OutOfStock as exc:
                    print("out of stock:", exc.details)
                try:
                    pricing.quote(["not", "a", "sku"])  # type: ignore[arg-type]
                except RemoteError as exc:
                    print("invalid:", exc.code, [e["loc"] for e in exc.details["errors"]])  # type: ignore[index]
        finally:
            poller.stop()


if __name__ == "__main__":
    main()
