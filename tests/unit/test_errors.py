from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from sqs_rpc import (
    ConfigurationError,
    CredentialsError,
    QueueDoesNotExist,
    RemoteError,
    RpcTimeout,
    SqsError,
)
from sqs_rpc._errors import aws_errors, translate_aws_error


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "msg"}}, "SendMessage")


@pytest.mark.parametrize("code", ["AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"])
def test_missing_queue_codes_become_queue_does_not_exist(code: str) -> None:
    error = translate_aws_error(_client_error(code), "SendMessage", "http://q")
    assert isinstance(error, QueueDoesNotExist)
    assert error.code == code
    assert "http://q" in str(error)


def test_other_client_errors_keep_code_and_operation() -> None:
    error = translate_aws_error(_client_error("ThrottlingException"), "TagQueue")
    assert type(error) is SqsError
    assert (error.code, error.operation) == ("ThrottlingException", "TagQueue")


def test_missing_credentials_name_the_fix() -> None:
    error = translate_aws_error(NoCredentialsError(), "SendMessage")
    assert isinstance(error, CredentialsError)
    assert "AWS_ACCESS_KEY_ID" in str(error)


def test_unreachable_endpoint_names_the_fix() -> None:
    error = translate_aws_error(
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "ReceiveMessage"
    )
    assert "endpoint_url" in str(error)


def test_aws_errors_chains_the_original() -> None:
    original = _client_error("InvalidParameterValue")
    with pytest.raises(SqsError) as info, aws_errors("SendMessage"):
        raise original
    assert info.value.__cause__ is original


def test_exception_types_interoperate_with_builtins() -> None:
    assert issubclass(RpcTimeout, TimeoutError)
    assert issubclass(ConfigurationError, ValueError)
    error = RemoteError("KeyError", "'x'", {"k": 1}, correlation_id="c")
    assert str(error) == "KeyError: 'x'"
    assert error.details == {"k": 1}
