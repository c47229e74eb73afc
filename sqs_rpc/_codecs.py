"""Codecs turn payloads into SQS message bodies (text) and back.

A codec is any object with a ``content_type`` and ``encode``/``decode`` methods (the
:class:`Codec` protocol). The content type travels in the ``ContentType`` attribute, so a
receiver knows how a body was written. JSON is the default.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
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
    "encode_body",
    "escape_for_sqs",
    "sqs_text_problem",
]

JSON_CONTENT_TYPE = "application/json"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
# SQS bodies are text (and only some Unicode is allowed), so bytes travel as base64; the
# content type says so, and a receiver with another codec sees the mismatch at once.
BYTES_CONTENT_TYPE = "application/octet-stream; encoding=base64"

# The characters SQS accepts in a body or an attribute value (SendMessage's API reference):
# #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF. Anything else is refused by SQS, and
# a lone surrogate cannot even be encoded as UTF-8: a reply holding one is never sent, and the
# request it answers comes back and runs again. So every body is checked before it is sent.
_NOT_SQS_TEXT = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# What JSON text may still hold that SQS refuses: json.dumps escapes C0 controls itself.
_UNSENDABLE_JSON = re.compile(r"[\ud800-\udfff\ufffe\uffff]")
# A surrogate in a JSON body, raw or as an escape (\uD800-\uDFFF): a cheap test before the
# decoded value is searched for a lone one (json.loads pairs the valid ones).
_SURROGATE_IN_JSON = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def sqs_text_problem(text: str) -> str | None:
    """Why SQS would refuse ``text`` as a body or attribute value; None when it would not."""
    match = _NOT_SQS_TEXT.search(text)
    if match is None:
        return None
    char = match.group()
    kind = "a lone surrogate" if _SURROGATE.fullmatch(char) else "a character SQS refuses"
    return f"{kind} ({char!a}) at index {match.start()}"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    # A surrogate becomes the six characters of its escape, as text (what
    # errors="backslashreplace" writes); a noncharacter becomes a JSON escape of itself.
    return f"\\\\u{code:04x}" if 0xD800 <= code <= 0xDFFF else f"\\u{code:04x}"


def escape_for_sqs(json_text: str) -> str:
    """JSON text SQS accepts: U+FFFE/U+FFFF escaped, a lone surrogate written out as text.

    For documents that must always go out (error replies): nothing is refused, nothing lost
    but the surrogates, which no peer could have decoded as text anyway.
    """
    return _UNSENDABLE_JSON.sub(_escape, json_text)


def encode_body(codec: Codec, value: Any) -> str:
    """``codec.encode(value)``, checked to be a body SQS accepts; else :class:`EncodeError`.

    A codec of the user's own may return anything: a body SQS would refuse fails here, on the
    side that made it, not as an SQS error (or a reply that never arrives) later.
    """
    body = codec.encode(value)
    if not isinstance(body, str):
        raise EncodeError(
            f"codec {codec!r} returned {type(body).__name__}, not str: SQS bodies are text "
            "(BytesCodec sends bytes as base64)"
        )
    problem = sqs_text_problem(body)
    if problem is not None:
        raise EncodeError(
            f"codec {codec!r} returned a body SQS refuses: it holds {problem}; SQS bodies are "
            "Unicode text without most control characters: escape them in the codec, or send "
            "bytes with BytesCodec"
        )
    return body


def _lone_surrogate(value: Any) -> str | None:
    """The first lone surrogate in a decoded JSON value, or None (an explicit stack: the
    value may nest as deep as the parser allowed)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            match = _SURROGATE.search(item)
            if match is not None:
                return match.group()
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


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
    """JSON bodies (``application/json``): dicts, lists, str, int, float, bool and None.

    Strings must be Unicode text: a lone surrogate (``"\\ud800"``, which no UTF-8 encoder
    takes) is refused both ways, :class:`~sqs_rpc.EncodeError` and
    :class:`~sqs_rpc.DecodeError` (RFC 7493, I-JSON). U+FFFE and U+FFFF, which SQS refuses
    raw, travel as JSON escapes.
    """

    content_type = JSON_CONTENT_TYPE

    def encode(self, value: Any) -> str:
        try:
            # allow_nan=False: NaN and Infinity are not JSON, and other parsers reject them.
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise EncodeError(
                f"cannot encode value as JSON: {exc}; pass JSON-compatible values "
                "(dict, list, str, int, float, bool, None) or give the client a codec= "
                "that handles this type"
            ) from exc
        if _UNSENDABLE_JSON.search(text) is None:
            return text
        surrogate = _SURROGATE.search(text)
        if surrogate is not None:
            raise EncodeError(
                f"cannot encode value as JSON: a string holds a lone surrogate "
                f"({surrogate.group()!a}), which is not Unicode text (UTF-8 and SQS "
                "refuse it); decode bytes with errors='replace' (or 'backslashreplace') "
                "before passing them as str, or send bytes with BytesCodec"
            )
        return escape_for_sqs(text)

    def decode(self, data: str) -> Any:
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            # A body nested deeper than the parser's recursion limit is bad input too: it
            # must reach the caller as DecodeError, not escape a poller's step.
            raise DecodeError(f"body is not valid JSON: {exc}") from exc
        if _SURROGATE_IN_JSON.search(data) is not None:
            surrogate = _lone_surrogate(value)
            if surrogate is not None:
                # A handler given it could not return it, nor a caller print it: refused
                # here, once, instead of failing a reply (and running again) later.
                raise DecodeError(
                    f"body holds a lone surrogate ({surrogate!a}), which is not Unicode "
                    "text; send text as valid Unicode, or bytes with BytesCodec"
                )
        return value

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
        problem = sqs_text_problem(value)
        if problem is not None:
            raise EncodeError(
                f"TextCodec cannot send this text: it holds {problem}, and SQS bodies are "
                "Unicode text without most control characters; use JsonCodec (which escapes "
                "them) or BytesCodec"
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
