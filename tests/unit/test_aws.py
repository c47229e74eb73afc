"""Building boto3 clients: each gets a session of its own, and all share the parsed models."""

from __future__ import annotations

import boto3
import pytest

from sqs_rpc import ConfigurationError
from sqs_rpc._aws import build_client, make_sqs_client


def _model(client: object) -> object:
    return client.meta.service_model._service_description  # type: ignore[attr-defined]


def test_clients_built_without_a_session_share_botocore_s_parsed_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A model parsed once per process, not once per client (about 160 ms of CPU each).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    where = {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"}
    first = make_sqs_client(sqs_client=None, session=None, **where)
    second = make_sqs_client(sqs_client=None, session=None, **where)
    assert _model(first) is _model(second)
    # Each still resolves its own credentials, as a new boto3 session would.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "rotated")
    third = build_client("sqs", None, **where)
    assert third._request_signer._credentials.access_key == "rotated"
    assert first._request_signer._credentials.access_key == "testing"


def test_given_credentials_replace_the_chain() -> None:
    client = build_client("sqs", None, credentials=("AKID", "SECRET"), region_name="eu-west-1")
    credentials = client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == ("AKID", "SECRET")
    assert client.meta.region_name == "eu-west-1"


def test_a_client_says_boto3_in_its_user_agent_as_a_boto3_session_s_would() -> None:
    client = build_client("sqs", None, credentials=("AKID", "SECRET"), region_name="eu-west-1")
    assert client._user_agent_creator.to_string().startswith("Boto3/")


def test_a_session_and_credentials_together_are_refused() -> None:
    session = boto3.session.Session(region_name="eu-west-1")
    with pytest.raises(ConfigurationError, match="either a session or credentials"):
        build_client("sqs", session, credentials=("AKID", "SECRET"))
