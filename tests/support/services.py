"""Typed services for the tests: models, a Service, Protocols of it, and a nested caller."""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from sqs_rpc import RpcClient, Service, ServiceError, remaining_time, rpc

__all__ = [
    "Front",
    "Line",
    "OutOfStock",
    "Pricing",
    "PricingAsync",
    "PricingProtocol",
    "Quote",
    "Tier",
]


class Tier(enum.Enum):
    BASIC = "basic"
    GOLD = "gold"


class Line(TypedDict):
    sku: str
    qty: int


@dataclass
class Quote:
    sku: str
    price_cents: int
    tier: Tier = Tier.BASIC
    valid_until: datetime.datetime | None = None
    notes: list[str] = field(default_factory=list)


class OutOfStock(ServiceError):
    """Raised by the server; registered by callers that want it back as itself."""

    code = "out_of_stock"

    def __init__(self, sku: str) -> None:
        super().__init__(self.code, f"no stock of {sku}", details={"sku": sku})


class Pricing(Service):
    """The service under test; ``calls`` records what its operations received."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @rpc
    def quote(self, sku: str, qty: int = 1, tier: Tier = Tier.BASIC) -> Quote:
        self.calls.append(("quote", (sku, qty, tier)))
        if sku == "none":
            raise OutOfStock(sku)
        if sku == "plain":
            raise ServiceError("plain_code", "a plain service error", details={"n": 1})
        until = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        return Quote(sku, 250 * qty, tier, until, ["a", "b"])

    @rpc
    def total(self, lines: list[Line], when: datetime.date) -> dict[str, int]:
        self.calls.append(("total", (lines, when)))
        return {line["sku"]: line["qty"] for line in lines}

    @rpc
    async def reprice(self, sku: str) -> None:
        self.calls.append(("reprice", sku))

    @rpc(name="broken")
    def broken_reply(self) -> Quote:
        return {"sku": 7}  # type: ignore[return-value]  # a reply the caller refuses

    @rpc
    def budget(self) -> float | None:
        """The time this request has left, as the handler sees it."""
        return remaining_time()

    @rpc
    async def budget_async(self) -> float | None:
        return remaining_time()

    def helper(self) -> None:
        """Not an operation: no @rpc."""


class PricingProtocol(Protocol):
    """What a caller declares instead of importing Pricing."""

    def quote(self, sku: str, qty: int = 1, tier: Tier = Tier.BASIC) -> Quote: ...

    def total(self, lines: list[Line], when: datetime.date) -> dict[str, int]: ...


class PricingAsync(Protocol):
    """The same operations, awaited: for AsyncRpcClient.proxy."""

    async def quote(self, sku: str, qty: int = 1, tier: Tier = Tier.BASIC) -> Quote: ...

    async def reprice(self, sku: str) -> None: ...

    async def budget(self) -> float | None: ...


class Front(Service):
    """A service that calls Pricing while handling a request: deadlines propagate."""

    def __init__(self, client: RpcClient, pricing_url: str) -> None:
        self._client = client
        self._pricing_url = pricing_url

    @rpc
    def budgets(self, timeout: float | None = None) -> dict[str, float | None]:
        """The outer request's time left, and the inner call's (``timeout=``, if given)."""
        outer = remaining_time()
        pricing = self._client.proxy(Pricing, self._pricing_url, timeout=timeout)
        return {"outer": outer, "inner": pricing.budget()}
