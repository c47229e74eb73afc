"""Settling ``concurrent.futures.Future`` objects that several threads may race to finish."""

from __future__ import annotations

from concurrent.futures import Future, InvalidStateError
from typing import Any

__all__ = ["settle"]


def settle(future: Future[Any], *, result: Any = None, error: BaseException | None = None) -> bool:
    """Resolve ``future`` unless it is already done (cancelled, timed out); True if this did.

    A reply, a timeout and a close may all try to finish one call: the first one wins.
    """
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        return False
    return True
