"""The soak's call mix: which behaviour each call asks of the handler, and what the caller expects.

A call's kind is a pure function of the run's seed and the call's number, so the server (which
reads the kind from the payload), the caller and the report agree on it without talking.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

__all__ = ["EXPECTED", "KINDS", "MIX", "Kind", "draw", "kind_of", "payload"]

Kind = Literal["fast", "slow", "fail", "timeout"]
KINDS: tuple[Kind, ...] = ("fast", "slow", "fail", "timeout")
# Shares of the calls. Slow and timing-out calls hold a server worker for seconds, so they are
# few: enough to be thousands in a 50,000-call run, not so many that they starve the rest.
MIX: dict[Kind, float] = {"fast": 0.86, "slow": 0.08, "fail": 0.04, "timeout": 0.02}
# What the caller must see for each kind.
EXPECTED: dict[str, str] = {
    "fast": "ok",
    "slow": "ok",
    "fail": "remote-error",
    "timeout": "timeout",
}
SLOW_SECONDS = (0.1, 0.6)
# A timing-out handler sleeps this much longer than its caller waits.
TIMEOUT_OVERRUN = 1.5


def draw(seed: int, number: int, salt: str = "") -> float:
    """A reproducible number in [0, 1) for call ``number`` of a run."""
    digest = hashlib.blake2b(f"{seed}:{number}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def kind_of(seed: int, number: int) -> Kind:
    value = draw(seed, number)
    for kind in KINDS:
        if value < MIX[kind]:
            return kind
        value -= MIX[kind]
    return "fast"  # rounding


def payload(call_id: str, kind: Kind, seed: int, number: int, short_timeout: float) -> Any:
    """The request body: the call's unique id, its kind, and how long the handler sleeps."""
    sleep = 0.0
    if kind == "slow":
        low, high = SLOW_SECONDS
        sleep = low + (high - low) * draw(seed, number, "sleep")
    elif kind == "timeout":
        sleep = short_timeout + TIMEOUT_OVERRUN
    return {"id": call_id, "kind": kind, "sleep": round(sleep, 3)}
