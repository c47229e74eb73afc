"""sqs-rpc: request-response RPC over Amazon SQS.

Call a service behind an SQS queue and get its answer back, with a timeout::

    from sqs_rpc import RpcClient

    with RpcClient() as client:
        reply = client.call(queue_url, {"x": 1}, timeout=10)

Typed services subclass :class:`Service`, mark operations with :func:`rpc`, and are called
through ``client.proxy(Service, queue_url)``. Underneath, a :class:`MessagePoller` runs any
:class:`MessageHandler`.
Everything importable from ``sqs_rpc`` is public; modules starting with ``_`` are not.
"""

from __future__ import annotations

from ._attributes import MAX_MESSAGE_BYTES
from ._aws import RequestCounter
from ._cli.errors import ExitCode
from ._client.async_client import AsyncRpcClient
from ._client.client import RequestMessage, RpcClient
from ._client.proxy import future
from ._client.request import MAX_TIMEOUT
from ._codecs import BytesCodec, Codec, JsonCodec, TextCodec
from ._deadline_context import remaining_time
from ._embedded import EmbeddedSqs
from ._errors import (
    ClientClosedError,
    ConfigurationError,
    CredentialsError,
    DecodeError,
    EncodeError,
    PayloadTooLarge,
    PoolFailed,
    ProtocolError,
    QueueDoesNotExist,
    RemoteError,
    ReplyQueueLost,
    RpcTimeout,
    S3PayloadError,
    ServiceError,
    SqsError,
    SqsRpcError,
    ValidationError,
)
from ._hooks import CallFinished, CallOutcome, CallStarted, Hooks, MessageHandled, MessageOutcome
from ._offload import DEFAULT_MAX_PAYLOAD_BYTES, S3Offload
from ._operations import rpc
from ._server.dynamodb_store import DynamoDBIdempotencyStore
from ._server.idempotency import IdempotencyState, IdempotencyStore, InMemoryIdempotencyStore
from ._server.poller import IncomingMessage, MessageHandler, MessagePoller, Retry
from ._server.service import Service
from ._server.supervisor import PollerPool
from ._stats import ClientStats, Latency, PollerHealth, PollerStats
from ._sweeper import SweepDecision, Sweeper, SweepReport
from ._trace import TraceContext, current_trace_context, trace_context
from ._wire import MAX_CORRELATION_ID_LENGTH, PROTOCOL_VERSION

__version__ = "0.1.0"

__all__ = [
    "AsyncRpcClient",
    "BytesCodec",
    "CallFinished",
    "CallOutcome",
    "CallStarted",
    "ClientClosedError",
    "ClientStats",
    "Codec",
    "ConfigurationError",
    "CredentialsError",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DecodeError",
    "DynamoDBIdempotencyStore",
    "EmbeddedSqs",
    "EncodeError",
    "ExitCode",
    "Hooks",
    "IdempotencyState",
    "IdempotencyStore",
    "InMemoryIdempotencyStore",
    "IncomingMessage",
    "JsonCodec",
    "Latency",
    "MAX_CORRELATION_ID_LENGTH",
    "MAX_MESSAGE_BYTES",
    "MAX_TIMEOUT",
    "MessageHandled",
    "MessageHandler",
    "MessageOutcome",
    "MessagePoller",
    "PROTOCOL_VERSION",
    "PayloadTooLarge",
    "PollerHealth",
    "PollerPool",
    "PollerStats",
    "PoolFailed",
    "ProtocolError",
    "QueueDoesNotExist",
    "RemoteError",
    "ReplyQueueLost",
    "RequestCounter",
    "RequestMessage",
    "Retry",
    "RpcClient",
    "RpcTimeout",
    "S3Offload",
    "S3PayloadError",
    "Service",
    "ServiceError",
    "SqsError",
    "SqsRpcError",
    "SweepDecision",
    "SweepReport",
    "Sweeper",
    "TextCodec",
    "TraceContext",
    "ValidationError",
    "__version__",
    "current_trace_context",
    "future",
    "remaining_time",
    "rpc",
    "trace_context",
]
