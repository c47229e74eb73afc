from __future__ import annotations

import base64
import math

import pytest

from sqs_rpc import BytesCodec, Codec, DecodeError, EncodeError, JsonCodec, TextCodec


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


@pytest.mark.parametrize("codec", [JsonCodec(), TextCodec(), BytesCodec()])
def test_every_codec_satisfies_the_protocol(codec: Codec) -> None:
    assert isinstance(codec, Codec)


def test_text_codec_passes_str_through() -> None:
    codec = TextCodec()
    assert codec.content_type == "text/plain; charset=utf-8"
    assert codec.encode("héllo {not json") == "héllo {not json"
    assert codec.decode("héllo") == "héllo"


def test_text_codec_names_the_wrong_type() -> None:
    with pytest.raises(EncodeError, match="not int"):
        TextCodec().encode(3)


def test_bytes_codec_is_base64_and_marked_so() -> None:
    codec = BytesCodec()
    assert codec.content_type == "application/octet-stream; encoding=base64"
    data = bytes(range(256))
    body = codec.encode(data)
    assert body == base64.b64encode(data).decode()
    assert codec.decode(body) == data
    assert codec.decode(codec.encode(bytearray(b"ab"))) == b"ab"
    assert codec.decode(codec.encode(memoryview(b"cd"))) == b"cd"


def test_bytes_codec_errors() -> None:
    with pytest.raises(EncodeError, match="not str"):
        BytesCodec().encode("text")
    with pytest.raises(DecodeError, match="base64"):
        BytesCodec().decode("not base64!")
