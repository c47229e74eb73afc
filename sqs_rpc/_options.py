"""Every option's validator, and the small frozen values that group options.

A bad option fails at construction with a :class:`~sqs_rpc.ConfigurationError` that names the
option and the fix. Defaults are named constants here, so each has one home.

- :class:`ResponderOptions`: what a :class:`~sqs_rpc.MessagePoller` and a
  :class:`~sqs_rpc.aws_lambda.LambdaResponder` share (codec, reply policy, reply cache or
  idempotency store, reply size, S3 offload, clock skew tolerance).
- :class:`Visibility`: how a server keeps a running request hidden.
- :class:`PollerSettings`: a :class:`~sqs_rpc.MessagePoller`'s own (concurrency, long poll,
  shutdown, visibility, sweeping).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._attributes import MAX_MESSAGE_BYTES, MIN_MESSAGE_BYTES
from ._codecs import Codec, JsonCodec
from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._offload import S3Offload
    from ._server.idempotency import IdempotencyStore
    from ._server.reply_policy import ReplyToAllowed

__all__ = [
    "DEFAULT_CLOCK_SKEW_TOLERANCE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_REPLY_CACHE_BYTES",
    "DEFAULT_REPLY_CACHE_TTL",
    "DEFAULT_REPLY_QUEUE_PREFIX",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_WAIT_TIME_SECONDS",
    "MAX_VISIBILITY_SECONDS",
    "PollerSettings",
    "ResponderOptions",
    "Visibility",
    "check_codec",
    "check_handler",
    "check_idempotency_store",
    "check_idle_retention",
    "check_max_message_bytes",
    "check_queue_url",
    "check_reply_wait",
    "check_sweep_interval",
    "seconds",
    "whole",
]

DEFAULT_REPLY_QUEUE_PREFIX = "sqs-rpc-reply-"
DEFAULT_REPLY_CACHE_TTL = 300.0
DEFAULT_REPLY_CACHE_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_VISIBILITY_EXTENSION = 3600.0
MIN_SWEEP_INTERVAL = 1.0
# NTP keeps clocks within milliseconds; seconds of slack cost little (a request whose caller
# gave up just now runs for nothing) and spare calls from a clock that drifted.
DEFAULT_CLOCK_SKEW_TOLERANCE = 5.0
MAX_CLOCK_SKEW_TOLERANCE = 3600.0
MAX_VISIBILITY_SECONDS = 43200  # SQS hides a message at most 12 hours after its receive
DEFAULT_CONCURRENCY = 10  # one full receive (SQS returns at most 10 messages) at once
DEFAULT_WAIT_TIME_SECONDS = 20
DEFAULT_SHUTDOWN_TIMEOUT = 30.0


def seconds(value: object, name: str, *, low: float, high: float, rule: str) -> float:
    """A finite number of seconds in ``[low, high]``; ``rule`` says so in the error."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ConfigurationError(f"{name}={value!r} must be {rule}")
    return float(value)


def whole(value: object, name: str, *, low: int, high: int, rule: str) -> int:
    """An int (not a bool) in ``[low, high]``; ``rule`` says so in the error."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{name}={value!r} must be {rule}")
    return value


def check_queue_url(value: object, name: str = "queue_url") -> str:
    """An http(s) queue URL."""
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigurationError(f"{name} {value!r} is not a queue URL")
    return value


def check_codec(value: object) -> Codec:
    """A :class:`~sqs_rpc.Codec`, or JSON for None."""
    if value is None:
        return JsonCodec()
    if not isinstance(value, Codec):
        raise ConfigurationError(
            f"codec {value!r} lacks content_type/encode/decode; see sqs_rpc.Codec"
        )
    return value


def check_handler(value: object) -> None:
    """Something with a ``handle()`` method."""
    if not callable(getattr(value, "handle", None)):
        raise ConfigurationError(
            f"handler {value!r} has no handle() method; subclass sqs_rpc.MessageHandler"
        )


def check_idempotency_store(value: object) -> IdempotencyStore | None:
    """None (each server's own memory), or something with ``begin``/``complete``/``release``."""
    if value is None:
        return None
    missing = [
        name
        for name in ("begin", "complete", "release")
        if not callable(getattr(value, name, None))
    ]
    if missing:
        raise ConfigurationError(
            f"idempotency_store {value!r} lacks {', '.join(missing)}(); pass a "
            "sqs_rpc.DynamoDBIdempotencyStore, or implement sqs_rpc.IdempotencyStore"
        )
    return value  # type: ignore[return-value]


def check_max_message_bytes(value: object) -> int:
    """Validate a ``max_message_bytes`` option."""
    return whole(
        value,
        "max_message_bytes",
        low=MIN_MESSAGE_BYTES,
        high=MAX_MESSAGE_BYTES,
        rule=f"whole bytes from {MIN_MESSAGE_BYTES:,} to {MAX_MESSAGE_BYTES:,} (SQS's range);"
        " set it to the queue's MaximumMessageSize",
    )


def check_idle_retention(idle_retention: object, heartbeat_interval: float) -> int:
    """Validate an ``idle_retention`` option: whole seconds, at least 3 heartbeat intervals."""
    if not isinstance(idle_retention, int) or idle_retention < 3 * heartbeat_interval:
        raise ConfigurationError(
            f"idle_retention={idle_retention!r} must be whole seconds, at least three "
            f"heartbeat intervals ({3 * heartbeat_interval:g}s), so that a sweeper never "
            "deletes the queue of a live client whose heartbeat is a little late"
        )
    return idle_retention


def check_reply_wait(value: object) -> int:
    """Validate a ``reply_wait_time_seconds`` option: SQS's long-poll range."""
    rule = "whole seconds from 1 to 20 (SQS's long-poll range)"
    return whole(value, "reply_wait_time_seconds", low=1, high=20, rule=rule)


def check_sweep_interval(interval: float | None) -> float | None:
    """Validate a ``sweep_interval`` option: None (off) or seconds >= 1."""
    if interval is None:
        return None
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not math.isfinite(interval)
        or interval < MIN_SWEEP_INTERVAL
    ):
        raise ConfigurationError(
            f"sweep_interval={interval!r} must be None (no sweeping) or a finite number of "
            f"seconds >= {MIN_SWEEP_INTERVAL:g} (an hour, 3600, is a good start)"
        )
    return float(interval)


@dataclass(frozen=True)
class ResponderOptions:
    """What every server shares: how requests are decoded and how replies go back.

    Built by :meth:`create`, which validates each option; the fields are then final.
    """

    codec: Codec
    include_traceback: bool
    reply_queue_prefix: str | tuple[str, ...]
    reply_to_allowed: ReplyToAllowed | None
    reply_cache_ttl: float
    reply_cache_bytes: int
    max_message_bytes: int
    offload: S3Offload | None
    clock_skew_tolerance: float
    idempotency_store: IdempotencyStore | None = None

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> ResponderOptions:
        """:meth:`create` from a server's keyword arguments, each taken by its field's name.

        Every server names these options alike, so a server passes ``locals()`` of its
        ``__init__`` and the list of them is written once, here. Example::

            self._options = ResponderOptions.from_arguments(locals())
        """
        # LambdaResponder does; MessagePoller (poller.py) still spells the list out.
        return cls.create(
            **{field.name: arguments[field.name] for field in dataclasses.fields(cls)}
        )

    @classmethod
    def create(
        cls,
        *,
        codec: Codec | None,
        include_traceback: bool,
        reply_queue_prefix: str | Sequence[str],
        reply_to_allowed: ReplyToAllowed | None,
        reply_cache_ttl: float,
        reply_cache_bytes: int,
        max_message_bytes: int,
        offload: S3Offload | None,
        clock_skew_tolerance: float,
        idempotency_store: IdempotencyStore | None = None,
    ) -> ResponderOptions:
        """Validate the options; :class:`~sqs_rpc.ConfigurationError` names a bad one.

        A server passes its own arguments through :meth:`from_arguments` instead.
        """
        prefix = reply_queue_prefix
        return cls(
            codec=check_codec(codec),
            include_traceback=bool(include_traceback),
            reply_queue_prefix=prefix if isinstance(prefix, str) else tuple(prefix),
            reply_to_allowed=reply_to_allowed,
            reply_cache_ttl=seconds(
                reply_cache_ttl,
                "reply_cache_ttl",
                low=0,
                high=86400,
                rule="seconds from 0 (no cache) to 86400",
            ),
            reply_cache_bytes=whole(
                reply_cache_bytes, "reply_cache_bytes", low=1, high=2**40, rule="bytes >= 1"
            ),
            max_message_bytes=check_max_message_bytes(max_message_bytes),
            offload=offload,
            clock_skew_tolerance=seconds(
                clock_skew_tolerance,
                "clock_skew_tolerance",
                low=0,
                high=MAX_CLOCK_SKEW_TOLERANCE,
                rule=f"seconds from 0 to {MAX_CLOCK_SKEW_TOLERANCE:g} by which a request may be "
                "past its caller's deadline and still run; keep clocks in sync (NTP) rather "
                "than raise it",
            ),
            idempotency_store=check_idempotency_store(idempotency_store),
        )


@dataclass(frozen=True)
class Visibility:
    """How a server keeps a running request hidden from other receivers.

    ``timeout``: seconds each extension hides the message for (None: the queue's own
    visibility timeout). ``extension_interval``: seconds between extensions (None: a third of
    the timeout); shorter than the timeout. ``max_extension``: seconds after its receive past
    which a message is no longer extended; 0 turns extension off.
    """

    timeout: int | None = None
    extension_interval: float | None = None
    max_extension: float = DEFAULT_MAX_VISIBILITY_EXTENSION

    def __post_init__(self) -> None:
        if self.timeout is not None:
            whole(
                self.timeout,
                "visibility_timeout",
                low=1,
                high=MAX_VISIBILITY_SECONDS,
                rule=f"whole seconds from 1 to {MAX_VISIBILITY_SECONDS}, or None",
            )
        if self.extension_interval is not None:
            seconds(
                self.extension_interval,
                "visibility_extension_interval",
                low=0.001,
                high=MAX_VISIBILITY_SECONDS,
                rule="seconds > 0, or None for a third of the visibility timeout",
            )
        seconds(
            self.max_extension,
            "max_visibility_extension",
            low=0,
            high=MAX_VISIBILITY_SECONDS,
            rule=f"seconds from 0 (no extension) to {MAX_VISIBILITY_SECONDS} (SQS's limit)",
        )
        if self.timeout is not None and self.extension_interval is not None:
            self._check(self.extension_interval, self.timeout)

    def resolve(self, queue_timeout: int) -> tuple[float, int] | None:
        """``(interval, timeout)`` for a queue whose visibility timeout is ``queue_timeout``.

        None when extension is off (``max_extension`` 0, or a queue timeout of 0).
        """
        timeout = self.timeout or queue_timeout
        if self.max_extension <= 0 or timeout <= 0:
            return None
        interval = self.extension_interval
        if interval is None:
            interval = timeout / 3
        self._check(interval, timeout)
        return interval, timeout

    @staticmethod
    def _check(interval: float, timeout: int) -> None:
        if interval >= timeout:
            raise ConfigurationError(
                f"visibility_extension_interval={interval:g} must be shorter than the "
                f"visibility timeout ({timeout}s), or the message reappears between two "
                "extensions; lower visibility_extension_interval or raise visibility_timeout"
            )


@dataclass(frozen=True)
class PollerSettings:
    """A :class:`~sqs_rpc.MessagePoller`'s own options, validated by :meth:`create`."""

    concurrency: int
    wait_time: int
    shutdown_timeout: float
    visibility: Visibility
    sweep_interval: float | None

    @classmethod
    def create(
        cls,
        *,
        concurrency: int,
        wait_time_seconds: int,
        shutdown_timeout: float,
        visibility: Visibility,
        sweep_interval: float | None,
    ) -> PollerSettings:
        """Validate the options; :class:`~sqs_rpc.ConfigurationError` names a bad one."""
        return cls(
            concurrency=whole(concurrency, "concurrency", low=1, high=10**6, rule="an int >= 1"),
            wait_time=whole(
                wait_time_seconds,
                "wait_time_seconds",
                low=1,
                high=20,
                rule="whole seconds from 1 to 20 (SQS's long-poll range; 0 would busy-poll)",
            ),
            shutdown_timeout=seconds(
                shutdown_timeout,
                "shutdown_timeout",
                low=0,
                high=86400,
                rule="seconds from 0 to 86400",
            ),
            visibility=visibility,
            sweep_interval=check_sweep_interval(sweep_interval),
        )
