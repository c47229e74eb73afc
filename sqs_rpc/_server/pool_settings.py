"""A PollerPool's options, their defaults, and their checks.

The pool-side twin of :class:`~sqs_rpc._options.PollerSettings`: each option is validated
once, at construction, and a bad one raises :class:`~sqs_rpc.ConfigurationError` naming the
fix.
"""

from __future__ import annotations

import dataclasses
import os
import pickle

from sqs_rpc._errors import ConfigurationError
from sqs_rpc._options import seconds, whole

from .worker_process import PollerFactory

__all__ = [
    "DEFAULT_GRACEFUL_TIMEOUT",
    "DEFAULT_LIVENESS_TIMEOUT",
    "DEFAULT_MAX_RESTARTS",
    "DEFAULT_RESTART_WINDOW",
    "DEFAULT_STATS_INTERVAL",
    "LIVENESS_INTERVALS",
    "PoolSettings",
]

DEFAULT_GRACEFUL_TIMEOUT = 45.0  # the poller's default shutdown_timeout (30 s) + margin
DEFAULT_MAX_RESTARTS = 5
DEFAULT_RESTART_WINDOW = 60.0
DEFAULT_STATS_INTERVAL = 1.0
# A serving child that sent no stats for this long (and never less than 3 stats intervals) is
# taken for hung and killed. The reports come from the child's main thread, which runs no
# handler: a long handler does not delay them; a frozen process, or a wedged interpreter, does.
DEFAULT_LIVENESS_TIMEOUT = 10.0
LIVENESS_INTERVALS = 3


@dataclasses.dataclass(frozen=True)
class PoolSettings:
    """A :class:`~sqs_rpc.PollerPool`'s options, validated by :meth:`create`."""

    factory: PollerFactory | str
    processes: int
    graceful_timeout: float
    max_restarts: int
    restart_window: float
    stats_interval: float
    liveness_timeout: float | None  # None: never kill a silent child

    @classmethod
    def create(
        cls,
        factory: object,
        *,
        processes: int,
        graceful_timeout: float,
        max_restarts: int,
        restart_window: float,
        stats_interval: float,
        liveness_timeout: float | None,
    ) -> PoolSettings:
        """Validate the options; :class:`~sqs_rpc.ConfigurationError` names a bad one."""
        checked_factory = _check_factory(factory)
        cores = os.cpu_count() or 1
        checked_processes = whole(
            processes,
            "processes",
            low=1,
            high=1024,
            rule=f"a whole number from 1 to 1024: one per core for CPU-bound handlers ({cores} "
            "here), 1 to run a single poller",
        )
        checked_graceful_timeout = seconds(
            graceful_timeout, "graceful_timeout", low=0, high=86400, rule="seconds from 0 to 86400"
        )
        checked_max_restarts = whole(
            max_restarts, "max_restarts", low=0, high=10**6, rule="a whole number >= 0"
        )
        checked_restart_window = seconds(
            restart_window, "restart_window", low=1, high=86400, rule="seconds from 1 to 86400"
        )
        checked_stats_interval = seconds(
            stats_interval, "stats_interval", low=0.01, high=3600, rule="seconds from 0.01 to 3600"
        )
        checked_liveness_timeout: float | None = None
        if liveness_timeout is not None:
            checked_liveness_timeout = max(
                seconds(
                    liveness_timeout,
                    "liveness_timeout",
                    low=1,
                    high=86400,
                    rule="seconds from 1 to 86400, or None to never kill a silent child",
                ),
                LIVENESS_INTERVALS * checked_stats_interval,
            )
        return cls(
            factory=checked_factory,
            processes=checked_processes,
            graceful_timeout=checked_graceful_timeout,
            max_restarts=checked_max_restarts,
            restart_window=checked_restart_window,
            stats_interval=checked_stats_interval,
            liveness_timeout=checked_liveness_timeout,
        )


def _check_factory(factory: object) -> PollerFactory | str:
    """``factory`` if a child can get it: picklable, or a ``"module:function"`` string."""
    if isinstance(factory, str):
        module, _, attribute = factory.partition(":")
        if not module or not attribute:
            raise ConfigurationError(
                f"factory {factory!r} must be 'module:function', for example "
                "'myapp.server:make_poller'"
            )
        return factory
    if not callable(factory):
        raise ConfigurationError(
            f"factory {factory!r} is not callable; pass a function that returns a MessagePoller"
        )
    try:
        pickle.dumps(factory)
    except Exception as exc:
        raise ConfigurationError(
            f"factory {factory!r} cannot be pickled ({exc}); children are spawned, so pass a "
            "module-level function or class (or a functools.partial of one), or "
            "'module:function'"
        ) from None
    return factory
