from __future__ import annotations

import math

import pytest

from sqs_rpc import Codec, DecodeError, EncodeError, JsonCodec


def test_json_round_trip() -> None:
    codec = JsonCodec()
    value = {"a": [1, 2.5, None, True], "ü": "ß"}
    assert codec.decode(codec.encode(value)) == value


def test_json_codec_satisfies_the_protocol() -> None:
    assert isinstance(JsonCodec(), Codec)


def test_unencodable_value_names_the_type() -> None:
    with pytest.raises(EncodeError, match="set") as info:
        JsonCodec().encode({"s": {1, 2}})
    assert isinstance(info.value, TypeError)  # also a TypeError, as users may expect


def test_nan_is_rejected() -> None:
    with pytest.raises(EncodeError, match="JSON"):
        JsonCodec().encode(math.nan)


def test_invalid_json_raises_decode_error() -> None:
    with pytest.raises(DecodeError, match="not valid JSON"):
        JsonCodec().decode("{nope")
