"""Started: what a test starts and must stop, as a context manager (stdlib only).

The fault proxy and the fauxqs server share it; the soak tool imports the proxy outside pytest.
"""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

__all__ = ["Started"]

_S = TypeVar("_S", bound="Started")


class Started:
    """A server a test starts: ``with`` starts it and always stops it.

    Example::

        with FaultProxy(endpoint.endpoint_url) as proxy:
            ...  # proxy.endpoint_url
    """

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
