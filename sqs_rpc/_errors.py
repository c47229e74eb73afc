"""The sqs-rpc exception tree, and the one place where AWS errors are translated.

::

    SqsRpcError
    ├── ConfigurationError      (also ValueError) a bad option or argument; names the fix
    ├── ClientClosedError       the client or poller is closed, or was inherited across fork()
    ├── PayloadTooLarge         (also ValueError) a message is over the SQS size limit
    ├── RpcTimeout              (also TimeoutError) no reply arrived before the call's deadline
    ├── ReplyQueueLost          the client's reply queue was deleted while calls waited
    ├── PoolFailed              a PollerPool gave up: a child failed to start or kept exiting
    ├── RemoteError             the handler raised; carries the remote type, code and details
    ├── ServiceError            raised by a handler: an error with a code and JSON details
    │   └── ValidationError     arguments (at a server) or a result (at a caller) do not fit
    │                           the operation's type hints; carries the field errors
    ├── Retry                   raised by a handler: leave the request for redelivery (_handler.py)
    ├── ProtocolError           a message does not follow the wire protocol
    │   ├── EncodeError         (also TypeError) a payload or return value cannot be encoded
    │   └── DecodeError         a body or attribute cannot be decoded
    │       └── S3PayloadError  a body offloaded to S3 cannot be read (pointer, allowlist, gone)
    └── SqsError                an SQS request failed; carries the AWS error code and operation
        ├── QueueDoesNotExist   the queue is not there (wrong URL, or deleted)
        └── CredentialsError    no AWS credentials were found

botocore's exceptions never reach users raw: :func:`translate_aws_error` turns them into
:class:`SqsError` subclasses, with the original chained as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

__all__ = [
    "ClientClosedError",
    "ConfigurationError",
    "CredentialsError",
    "DecodeError",
    "EncodeError",
    "PayloadTooLarge",
    "PoolFailed",
    "ProtocolError",
    "QueueDoesNotExist",
    "RemoteError",
    "ReplyQueueLost",
    "RpcTimeout",
    "S3PayloadError",
    "ServiceError",
    "SqsError",
    "SqsRpcError",
    "ValidationError",
    "aws_errors",
    "is_message_too_long",
    "is_throttling",
    "translate_aws_error",
]


class SqsRpcError(Exception):
    """Root of every exception sqs-rpc raises."""


class ConfigurationError(SqsRpcError, ValueError):
    """An option or argument is invalid; the message says what to pass instead."""


class ClientClosedError(SqsRpcError):
    """The client or poller was closed (or inherited across ``fork()``) and cannot be used."""


class PayloadTooLarge(SqsRpcError, ValueError):
    """A message (body plus attributes) is larger than the size limit; nothing was sent.

    Attributes:
        size: the message's size in bytes, as SQS counts it.
        limit: the limit in bytes (``max_message_bytes``; SQS's own is 1 MiB).
    """

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class RpcTimeout(SqsRpcError, TimeoutError):
    """No reply arrived before the call's deadline.

    The request may still be executed by a server: SQS cannot take a message back.
    """

    def __init__(self, message: str, *, correlation_id: str | None = None) -> None:
        super().__init__(message)
        self.correlation_id = correlation_id


class ReplyQueueLost(SqsRpcError):
    """The client's reply queue was deleted underneath it (by an operator or a sweeper).

    The calls that were waiting fail with this at once; their replies cannot arrive. The
    client makes a new reply queue on the next call, so retrying is safe.
    """


class PoolFailed(SqsRpcError):
    """A :class:`PollerPool` gave up: a child failed to start, or restarted too often.

    Attributes:
        worker: the index of the child that made the pool give up (-1: the supervisor
            thread itself failed, for example it could not start a process).
        exit_code: its exit code (negative: the signal that killed it), if it exited.
        error_types: when its factory or ``start()`` raised: the exception's class names,
            most derived first (``("QueueDoesNotExist", "SqsError", ...)``); else empty.
    """

    def __init__(
        self, message: str, *, worker: int, exit_code: int | None, error_types: tuple[str, ...]
    ) -> None:
        super().__init__(message)
        self.worker = worker
        self.exit_code = exit_code
        self.error_types = error_types


class RemoteError(SqsRpcError):
    """The server's handler failed; raised at the caller with the remote error's data.

    Attributes:
        error_type: the remote exception's type name, for example ``"ValueError"``.
        remote_message: the remote exception's message.
        details: optional structured details sent by the server (JSON-compatible).
        correlation_id: the call's correlation id.
        code: the :class:`ServiceError` code the handler raised (``"out_of_stock"``), or None.

    Example::

        try:
            pricing.quote("A-1")
        except RemoteError as exc:
            if exc.code == "out_of_stock":
                print("no stock of", exc.details["sku"])
    """

    def __init__(
        self,
        error_type: str,
        remote_message: str,
        details: Mapping[str, Any] | None = None,
        *,
        correlation_id: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(f"{error_type}: {remote_message}")
        self.error_type = error_type
        self.remote_message = remote_message
        self.details = dict(details) if details is not None else None
        self.correlation_id = correlation_id
        self.code = code


class ServiceError(SqsRpcError):
    """An error a handler raises on purpose: a stable code, a message and JSON details.

    The caller gets them as :class:`RemoteError` (``.code``, ``.remote_message``,
    ``.details``), or as your own subclass if it registered it (``proxy(..., errors=[...])``).

    Example::

        raise ServiceError("out_of_stock", f"no stock of {sku}", details={"sku": sku})

        class OutOfStock(ServiceError):
            code = "out_of_stock"      # the name a caller registers it under

            def __init__(self, sku: str) -> None:
                super().__init__(self.code, f"no stock of {sku}", details={"sku": sku})

    Attributes:
        code: a short, stable, machine-readable name, such as ``"out_of_stock"``.
        message: a human-readable message.
        details: JSON-compatible details, or None.
    """

    code: str = "service_error"

    def __init__(
        self, code: str, message: str = "", *, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = dict(details) if details is not None else None


class ValidationError(ServiceError):
    """Values do not fit an operation's type hints.

    At a server, a request's arguments: the caller gets a :class:`RemoteError` with code
    ``"invalid_arguments"`` and the field errors in ``details["errors"]``. At a caller, a
    reply that does not fit the return type raises this, with code ``"invalid_reply"``.

    Example::

        try:
            pricing.quote("A-1")
        except ValidationError as exc:
            for error in exc.errors:
                print(error["loc"], error["msg"])

    Attributes:
        errors: one dict per problem: ``loc`` (a list of field names and indexes),
            ``msg`` and ``type``, as pydantic writes them.
    """

    code = "invalid"

    def __init__(self, code: str, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(code, message, details={"errors": errors})
        self.errors = errors


class ProtocolError(SqsRpcError):
    """A message does not follow the sqs-rpc wire protocol."""


class EncodeError(ProtocolError, TypeError):
    """A payload or a handler's return value cannot be encoded by the codec."""


class DecodeError(ProtocolError):
    """A message body or attribute cannot be decoded."""


class S3PayloadError(DecodeError):
    """A message's body is in S3 and cannot be read from there.

    The pointer is malformed, names a bucket that is not on the allowlist, names an object that
    is gone, or this side has no ``offload=`` configured. On a server the message is left for
    redrive (the caller gets an error reply on the first delivery); on a client the call fails
    with this error.

    Attributes:
        bucket: the bucket the pointer names, when it could be read.
        key: the object key the pointer names, when it could be read.
    """

    def __init__(self, message: str, *, bucket: str | None = None, key: str | None = None):
        super().__init__(message)
        self.bucket = bucket
        self.key = key


class SqsError(SqsRpcError):
    """An SQS request (or, with S3 offload, an S3 request) failed.

    Attributes:
        code: the AWS error code (``"AWS.SimpleQueueService.NonExistentQueue"``, ...), or the
            botocore exception's class name for failures that never reached SQS.
        operation: the SQS operation, for example ``"SendMessage"``.
    """

    def __init__(self, message: str, *, code: str, operation: str) -> None:
        super().__init__(message)
        self.code = code
        self.operation = operation


class QueueDoesNotExist(SqsError):
    """The queue does not exist: check the URL, the region, or whether it was deleted."""


class CredentialsError(SqsError):
    """No AWS credentials were found."""


_MISSING_QUEUE_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)


_THROTTLING_CODES = frozenset(
    {
        "AWS.SimpleQueueService.RequestThrottled",
        "RequestThrottled",
        "RequestLimitExceeded",
        "ThrottledException",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
    }
)


def is_throttling(exc: SqsError) -> bool:
    """True when SQS refused a request for its rate (retry later, with backoff)."""
    return exc.code in _THROTTLING_CODES


# What SQS and its emulators answer when a message (or a batch entry, or a whole batch) is
# larger than the queue accepts. An oversized message is an invalid parameter value: the query
# protocol names it InvalidParameterValue, the JSON protocol (and some emulators)
# InvalidParameterValueException; only its text says that the size is the problem.
_TOO_LONG_CODES = frozenset(
    {"BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong", "MessageTooLong"}
)
_INVALID_VALUE_CODES = frozenset(
    {
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "AWS.SimpleQueueService.InvalidParameterValue",
    }
)


def is_message_too_long(exc: SqsError) -> bool:
    """True when SQS refused a message (or batch entry) for its size: resending cannot help."""
    if exc.code in _TOO_LONG_CODES:
        return True
    # "Message must be shorter than 1048576 bytes." (AWS, LocalStack, ElasticMQ, moto)
    return exc.code in _INVALID_VALUE_CODES and "shorter than" in str(exc)


def translate_aws_error(
    exc: BaseException, operation: str, queue_url: str | None = None
) -> SqsRpcError:
    """Return the sqs-rpc exception for a botocore exception raised by ``operation``."""
    where = f" on {queue_url}" if queue_url else ""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        text = str(error.get("Message", "")) or str(exc)
        if code in _MISSING_QUEUE_CODES:
            return QueueDoesNotExist(
                f"{operation}{where}: the queue does not exist; check the queue URL and region, "
                "or whether it was deleted",
                code=code,
                operation=operation,
            )
        return SqsError(
            f"{operation}{where} failed: {code}: {text}", code=code, operation=operation
        )
    if isinstance(exc, NoCredentialsError):
        return CredentialsError(
            f"{operation}: no AWS credentials found; configure the standard chain "
            "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or an instance role), "
            "or pass sqs_client= or session=",
            code="NoCredentialsError",
            operation=operation,
        )
    if isinstance(exc, EndpointConnectionError):
        return SqsError(
            f"{operation}{where}: cannot reach the SQS endpoint ({exc}); check endpoint_url "
            "and that the server is running",
            code="EndpointConnectionError",
            operation=operation,
        )
    return SqsError(
        f"{operation}{where} failed: {exc}", code=type(exc).__name__, operation=operation
    )


@contextmanager
def aws_errors(operation: str, queue_url: str | None = None) -> Iterator[None]:
    """Translate botocore exceptions raised inside the block; the original is ``__cause__``."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        if isinstance(exc, NoRegionError):
            raise ConfigurationError(
                "no AWS region configured; pass region_name= or set AWS_DEFAULT_REGION"
            ) from exc
        if isinstance(exc, ProfileNotFound):
            raise ConfigurationError(
                f"{exc}; check the profile name (AWS_PROFILE, --profile) against "
                "~/.aws/config and ~/.aws/credentials"
            ) from exc
        raise translate_aws_error(exc, operation, queue_url) from exc
