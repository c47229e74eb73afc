"""Building the boto3 SQS client, in one place for the client, the server and the sweeper.

A caller may inject a ready SQS client, a boto3 session, or an endpoint URL and region;
otherwise boto3's standard credential and region chain applies.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from botocore.loaders import Loader

from ._billing import billed_requests, received_payload, sent_payload
from ._errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["RequestCounter", "build_client", "make_sqs_client", "merge_config"]

# Long polls hold a connection for up to 20 s: the read timeout must be longer than that.
READ_TIMEOUT = 40.0
CONNECT_TIMEOUT = 10.0
# botocore checks every request's parameters against the API model before sending it: about
# 7 % of the CPU a request costs (measured on fauxqs, paired runs). sqs-rpc builds every
# request itself from inputs it has already checked (queue URLs, bodies from its codecs,
# attributes within SQS's budget, batch entries), so the check finds nothing; a bad value
# the user slips through still reaches SQS, which rejects it as an SqsError. A user's
# botocore_config=Config(parameter_validation=True) turns it back on.
PARAMETER_VALIDATION = False


# Parsed service models (endpoints, partitions, SQS, S3, DynamoDB), one loader per data path
# (AWS_DATA_PATH): see build_client.
_loaders: dict[str | None, Loader] = {}
_loaders_lock = threading.Lock()


def build_client(
    service: str,
    session: boto3.session.Session | None,
    *,
    credentials: tuple[str, str] | None = None,
    **options: Any,
) -> Any:
    """``session.client(service, **options)``; without a session, a client of a new one.

    A botocore session parses its JSON service models the first time a client needs them:
    about 160 ms of CPU, paid again by every new session. Sessions are not thread-safe, so
    each client built here still gets its own (credentials and region resolve as for a new
    ``boto3.session.Session()``), but all of them share one loader, the cache of parsed
    models: a client then costs about 25 ms. ``credentials`` (key id, secret) replace the
    credential chain. botocore amends some cached models as it builds a client (endpoint
    data, S3's paths), the same way for every client: as for all clients of one session.
    """
    if session is not None:
        if credentials is not None:
            raise ConfigurationError("pass either a session or credentials, not both")
        return session.client(service, **options)  # type: ignore[call-overload]
    core = botocore.session.get_session()
    # The User-Agent a boto3 session sends (CloudTrail's userAgent, aws:UserAgent conditions).
    core.user_agent_extra = f"Botocore/{core.user_agent_version}"
    core.user_agent_name = "Boto3"
    core.user_agent_version = boto3.__version__
    data_path = core.get_config_variable("data_path")
    with _loaders_lock:
        loader = _loaders.get(data_path)
        if loader is None:
            _loaders[data_path] = core.get_component("data_loader")
        else:
            core.register_component("data_loader", loader)
    if credentials is not None:
        options["aws_access_key_id"], options["aws_secret_access_key"] = credentials
    return core.create_client(service, **options)


def make_sqs_client(
    *,
    sqs_client: SQSClient | None,
    session: boto3.session.Session | None,
    endpoint_url: str | None,
    region_name: str | None,
    max_pool_connections: int = 10,
    botocore_config: Config | None = None,
    long_poll_seconds: int = 20,
    credentials: tuple[str, str] | None = None,
) -> SQSClient:
    """Return the injected client, or build one with sized pool, timeouts and standard retries.

    Connections are kept alive and reused (urllib3's pool, one per thread that sends at
    once); the pool holds ``max_pool_connections``, at least 10, more than the threads of one
    client or server send at once, so none is opened and closed per request.

    ``botocore_config`` is merged over sqs-rpc's defaults: every option the user's config sets
    wins (``Config.merge``). One is checked: ``read_timeout`` must outlast the long polls of
    ``long_poll_seconds``, or every idle receive would fail with a read timeout.
    """
    if sqs_client is not None:
        if (
            session is not None
            or endpoint_url is not None
            or region_name is not None
            or botocore_config is not None
        ):
            raise ConfigurationError(
                "pass either sqs_client= or session=/endpoint_url=/region_name=/"
                "botocore_config=, not both: an injected client already has its endpoint, "
                "region and configuration"
            )
        return sqs_client
    if endpoint_url is not None and not endpoint_url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"endpoint_url {endpoint_url!r} must start with http:// or https://"
        )
    config = Config(
        max_pool_connections=max(10, max_pool_connections),
        read_timeout=READ_TIMEOUT,
        connect_timeout=CONNECT_TIMEOUT,
        retries={"mode": "standard", "max_attempts": 5},
        parameter_validation=PARAMETER_VALIDATION,
    )
    config = merge_config(config, botocore_config, long_poll_seconds)
    try:
        client: SQSClient = build_client(
            "sqs",
            session,
            credentials=credentials,
            endpoint_url=endpoint_url,
            region_name=region_name,
            config=config,
        )
    except BotoCoreError as exc:
        raise ConfigurationError(
            f"cannot build an SQS client ({exc}); pass region_name= (or set "
            "AWS_DEFAULT_REGION), or pass a ready sqs_client="
        ) from exc
    return client


def merge_config(defaults: Config, user: Config | None, long_poll_seconds: int) -> Config:
    """sqs-rpc's ``defaults`` with every option ``user`` sets overriding them.

    Raises :class:`ConfigurationError` for a ``read_timeout`` not longer than the long polls.
    """
    if user is None:
        return defaults
    if not isinstance(user, Config):
        raise ConfigurationError(
            f"botocore_config={user!r} must be a botocore.config.Config, such as "
            "Config(retries={'max_attempts': 3})"
        )
    merged = defaults.merge(user)
    read_timeout = getattr(merged, "read_timeout", None)  # set on every Config at runtime
    if read_timeout is not None and read_timeout <= long_poll_seconds:
        raise ConfigurationError(
            f"botocore_config read_timeout={read_timeout!r} must be longer than the "
            f"{long_poll_seconds} s long polls this client makes: raise it, or shorten the "
            "wait (wait_time_seconds= on a poller, reply_wait_time_seconds= on a client)"
        )
    return merged


_PAYLOAD = "sqs_rpc_payload_bytes"  # a key of botocore's per-call context


class RequestCounter:
    """Counts the API requests a boto3 client makes, by operation (retries excluded).

    For SQS it also counts the requests AWS *bills*: one per started 64 KiB of each action's
    payload (``_billing.py``), so a 100 KiB ``SendMessage`` is 1 request and 2 billed ones.

    Example::

        counter = RequestCounter.attach(sqs)
        ...
        counter.snapshot()         # {"SendMessage": 3, "ReceiveMessage": 2}
        counter.billed_snapshot()  # {"SendMessage": 4, "ReceiveMessage": 2}
        counter.detach()           # stop counting; the counts stay
    """

    def __init__(self, service: str = "sqs") -> None:
        self._service = service
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._billed: Counter[str] = Counter()
        self._watched: list[Any] = []

    @classmethod
    def attach(cls, sqs_client: SQSClient) -> RequestCounter:
        """A new counter, counting the requests of ``sqs_client`` from now on."""
        counter = cls()
        counter.watch(sqs_client)
        return counter

    def _handlers(self) -> list[tuple[str, Any]]:
        handlers: list[tuple[str, Any]] = [(f"before-call.{self._service}", self._on_call)]
        if self._service == "sqs":
            handlers.append(("before-parameter-build.sqs", self._on_params))
            handlers.append(("after-call.sqs.ReceiveMessage", self._on_received))
        return handlers

    def watch(self, sqs_client: Any) -> None:
        """Count ``sqs_client``'s requests too (added to the same counts)."""
        with self._lock:
            if any(watched is sqs_client for watched in self._watched):
                return
            self._watched.append(sqs_client)
        for event, handler in self._handlers():
            sqs_client.meta.events.register(event, handler)

    def detach(self) -> None:
        """Stop counting (the counts stay). Idempotent.

        A counter holds a handler on each boto3 client it watches: detach it when done, or
        a long-lived client shared by many short-lived counters runs all their handlers.
        """
        with self._lock:
            watched, self._watched = self._watched, []
        for sqs_client in watched:
            for event, handler in self._handlers():
                sqs_client.meta.events.unregister(event, handler)

    @staticmethod
    def _on_params(params: Any, model: Any, context: Any = None, **_: Any) -> None:
        # before-call sees only the serialised request: the payload size is taken here, from
        # the API parameters, into the call's context (the same value whoever computes it).
        if isinstance(context, dict) and isinstance(params, dict):
            context[_PAYLOAD] = sent_payload(str(model.name), params)

    def _on_call(self, model: Any, context: Any = None, **_: Any) -> None:
        name = str(model.name)
        payload = context.get(_PAYLOAD, 0) if isinstance(context, dict) else 0
        billed = billed_requests(payload)
        with self._lock:
            self._counts[name] += 1
            self._billed[name] += billed

    def _on_received(self, parsed: Any = None, **_: Any) -> None:
        if not isinstance(parsed, dict) or "Error" in parsed:
            return
        extra = billed_requests(received_payload(parsed)) - 1  # the 1 counted in _on_call
        if extra:
            with self._lock:
                self._billed["ReceiveMessage"] += extra

    def snapshot(self) -> dict[str, int]:
        """API requests by operation."""
        with self._lock:
            return dict(self._counts)

    def billed_snapshot(self) -> dict[str, int]:
        """Billed requests by operation: one per started 64 KiB of each request's payload."""
        with self._lock:
            return dict(self._billed)

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())
