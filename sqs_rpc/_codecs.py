"""Codecs turn payloads into SQS message bodies (text) and back.

A codec is any object with a ``content_type`` and ``encode``/``decode`` methods (the
:class:`Codec` protocol). The content type travels in the ``ContentType`` attribute, so a
receiver knows how a body was written. JSON is the default.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Protocol, runtime_checkable

from ._errors import DecodeError, EncodeError

__all__ = [
    "BYTES_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "TEXT_CONTENT_TYPE",
    "BytesCodec",
    "Codec",
    "JsonCodec",
    "TextCodec",
]

JSON_CONTENT_TYPE = "application/json"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
# SQS bodies are text (and only some Unicode is allowed), so bytes travel as base64; the
# content type says so, and a receiver with another codec sees the mismatch at once.
BYTES_CONTENT_TYPE = "application/octet-stream; encoding=base64"


@runtime_checkable
class Codec(Protocol):
    """How payloads become message bodies. SQS bodies are text, so ``encode`` returns ``str``.

    Example::

        class UpperCodec:
            content_type = "text/x-upper"
            def encode(self, value: Any) -> str: return str(value).upper()
            def decode(self, data: str) -> Any: return data
    """

    @property
    def content_type(self) -> str:
        """The MIME type written to the ``ContentType`` attribute."""
        ...

    def encode(self, value: Any) -> str:
        """Encode a payload; raise :class:`~sqs_rpc.EncodeError` when it cannot."""
        ...

    def decode(self, data: str) -> Any:
        """Decode a body; raise :class:`~sqs_rpc.DecodeError` when it cannot."""
        ...


class JsonCodec:
    """JSON bodies (``application/json``): dicts, lists, str, int, float, bool and None."""

    content_type = JSON_CONTENT_TYPE

    def encode(self, value: Any) -> str:
        try:
            # allow_nan=False: NaN and Infinity are not JSON, and other parsers reject them.
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise EncodeError(
                f"cannot encode value as JSON: {exc}; pass JSON-compatible values "
                "(dict, list, str, int, float, bool, None) or give the client a codec= "
                "that handles this type"
            ) from exc

    def decode(self, data: str) -> Any:
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            # A body nested deeper than the parser's recursion limit is bad input too: it
            # must reach the caller as DecodeError, not escape a poller's step.
            raise DecodeError(f"body is not valid JSON: {exc}") from exc

    def __repr__(self) -> str:
        return "JsonCodec()"


class TextCodec:
    """Raw text bodies (``text/plain; charset=utf-8``): ``str`` in, the same ``str`` out.

    Example::

        RpcClient(codec=TextCodec())   # and MessagePoller(..., codec=TextCodec())
    """

    content_type = TEXT_CONTENT_TYPE

    def encode(self, value: Any) -> str:
        if not isinstance(value, str):
            raise EncodeError(
                f"TextCodec encodes str only, not {type(value).__name__}; convert the value "
                "with str() first, or use JsonCodec"
            )
        return value

    def decode(self, data: str) -> Any:
        return data

    def __repr__(self) -> str:
        return "TextCodec()"


class BytesCodec:
    """Raw binary bodies, base64 on the wire (``application/octet-stream; encoding=base64``).

    ``encode`` takes ``bytes``, ``bytearray`` or ``memoryview``; ``decode`` returns ``bytes``.
    Base64 makes a body a third larger: mind the message size limit.

    Example::

        RpcClient(codec=BytesCodec())   # and MessagePoller(..., codec=BytesCodec())
    """

    content_type = BYTES_CONTENT_TYPE

    def encode(self, value: Any) -> str:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise EncodeError(
                f"BytesCodec encodes bytes only, not {type(value).__name__}; pass bytes (for "
                "text: value.encode()), or use TextCodec or JsonCodec"
            )
        return base64.b64encode(value).decode("ascii")

    def decode(self, data: str) -> Any:
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecodeError(f"body is not valid base64: {exc}") from exc

    def __repr__(self) -> str:
        return "BytesCodec()"
