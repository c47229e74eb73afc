"""botocore_config=: a user's botocore Config reaches the boto3 clients sqs-rpc builds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ParamValidationError

from sqs_rpc import ConfigurationError, MessagePoller, RpcClient, Sweeper
from sqs_rpc.aws_lambda import LambdaResponder
from tests.support.handlers import Echo
from tests.support.helpers import Endpoint

Serve = Callable[..., MessagePoller]

USER_CONFIG = Config(retries={"max_attempts": 1}, read_timeout=7, user_agent_extra="x")


class RecordingSession(boto3.session.Session):
    """A real boto3 session that remembers the clients built from it (injected, not patched)."""

    def __init__(self, endpoint: Endpoint) -> None:
        source = endpoint.session()
        credentials = source.get_credentials()
        assert credentials is not None
        super().__init__(
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            region_name=endpoint.region_name,
        )
        self.built: list[Any] = []

    def client(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        built = super().client(*args, **kwargs)
        self.built.append(built)
        return built


def _validates(sqs: Any) -> bool:
    """Whether botocore checks this client's parameters before sending (a bad type here)."""
    try:
        sqs.list_queues(MaxResults="ten")
    except ParamValidationError:
        return True
    except Exception:  # sent: SQS (or the server) answered for itself
        return False
    return False


def _check(config: Any, *, pool: int) -> None:
    assert config.read_timeout == 7  # the user's
    # The user's retries, whole: 1 retry (botocore counts the first attempt in its total).
    assert config.retries["total_max_attempts"] == 2
    assert config.user_agent_extra == "x"
    assert config.connect_timeout == 10.0  # sqs-rpc's, not set by the user
    assert config.max_pool_connections == pool


def test_client_and_poller_use_the_users_config_and_calls_work(
    endpoint: Endpoint, queue_url: str, serve: Serve
) -> None:
    server_session = RecordingSession(endpoint)
    serve(
        queue_url,
        Echo(),
        sqs_client=None,
        session=server_session,
        endpoint_url=endpoint.endpoint_url,
        concurrency=2,
        botocore_config=USER_CONFIG,
    )
    (server_sqs,) = server_session.built
    _check(server_sqs.meta.config, pool=10)

    client_session = RecordingSession(endpoint)
    with RpcClient(
        session=client_session,
        endpoint_url=endpoint.endpoint_url,
        reply_wait_time_seconds=5,  # shorter than the user's read timeout of 7 s
        botocore_config=USER_CONFIG,
    ) as client:
        (client_sqs,) = client_session.built
        _check(client_sqs.meta.config, pool=50)
        assert not _validates(client_sqs)  # sqs-rpc's default: it checks its own inputs
        assert client.call(queue_url, "hello", timeout=10) == {"echo": "hello"}


def test_a_user_may_turn_botocore_parameter_validation_back_on(
    endpoint: Endpoint, queue_url: str, serve: Serve
) -> None:
    serve(queue_url, Echo())
    session = RecordingSession(endpoint)
    with RpcClient(
        session=session,
        endpoint_url=endpoint.endpoint_url,
        botocore_config=Config(parameter_validation=True),
    ) as client:
        (sqs,) = session.built
        assert _validates(sqs)
        assert client.call(queue_url, "checked", timeout=10) == {"echo": "checked"}


def test_sweeper_and_lambda_responder_take_a_config(endpoint: Endpoint) -> None:
    session = RecordingSession(endpoint)
    Sweeper(session=session, endpoint_url=endpoint.endpoint_url, botocore_config=USER_CONFIG)
    LambdaResponder(
        Echo(), session=session, endpoint_url=endpoint.endpoint_url, botocore_config=USER_CONFIG
    )
    assert [c.meta.config.user_agent_extra for c in session.built] == ["x", "x"]


def test_a_read_timeout_shorter_than_the_long_poll_is_refused(endpoint: Endpoint) -> None:
    with pytest.raises(ConfigurationError, match="longer than the 20 s long polls"):
        RpcClient(
            session=endpoint.session(),
            endpoint_url=endpoint.endpoint_url,
            botocore_config=Config(read_timeout=7),
        )


def test_a_config_with_an_injected_client_is_refused(sqs: Any) -> None:
    with pytest.raises(ConfigurationError, match="botocore_config"):
        RpcClient(sqs_client=sqs, botocore_config=Config(read_timeout=30))


def test_a_config_that_is_not_a_botocore_config_is_refused(endpoint: Endpoint) -> None:
    with pytest.raises(ConfigurationError, match=r"botocore\.config\.Config"):
        RpcClient(
            session=endpoint.session(),
            endpoint_url=endpoint.endpoint_url,
            botocore_config={"read_timeout": 30},  # type: ignore[arg-type]
        )
