from __future__ import annotations

import dataclasses

import pytest

from sqs_rpc._attributes import string_value
from sqs_rpc._outgoing import OutgoingMessage


def test_send_kwargs_leave_out_what_is_not_set() -> None:
    assert OutgoingMessage("hi").to_send_kwargs() == {"MessageBody": "hi"}


def test_send_kwargs_carry_every_field() -> None:
    message = OutgoingMessage(
        "hi",
        {"ContentType": string_value("text/plain")},
        group_id="g",
        deduplication_id="d",
        delay_seconds=5,
    )
    assert message.to_send_kwargs() == {
        "MessageBody": "hi",
        "MessageAttributes": {"ContentType": {"DataType": "String", "StringValue": "text/plain"}},
        "MessageGroupId": "g",
        "MessageDeduplicationId": "d",
        "DelaySeconds": 5,
    }
    assert OutgoingMessage.from_send_kwargs(message.to_send_kwargs()) == message


def test_a_message_is_frozen_and_has_no_room_for_a_misspelt_field() -> None:
    message = OutgoingMessage("hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.body = "other"  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):
        message.grup_id = "g"  # type: ignore[attr-defined]
    assert not hasattr(message, "__dict__")


def test_with_attributes_adds_and_replaces_without_changing_the_original() -> None:
    message = OutgoingMessage("hi", {"A": string_value("1")})
    changed = message.with_attributes({"A": string_value("2"), "B": string_value("3")})
    assert (changed.attribute("A"), changed.attribute("B")) == ("2", "3")
    assert message.attribute("A") == "1"
    assert message.attribute("B") is None
