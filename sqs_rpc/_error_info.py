"""ErrorInfo: the error document an error reply carries as its body.

An error reply's body is a compact JSON object: the error's ``type`` and ``message``, and
optionally a stable ``code`` and ``details``. ``docs/protocol.md`` describes it. A server
builds one from a handler's exception; a caller reads one back into a
:class:`~sqs_rpc.RemoteError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._codecs import escape_for_sqs, sqs_text_problem
from ._errors import DecodeError

__all__ = ["ErrorInfo"]


@dataclass(frozen=True)
class ErrorInfo:
    """The structured error document carried in an error reply's body."""

    type: str
    message: str
    details: Mapping[str, Any] | None = None
    code: str | None = None  # a stable, machine-readable name (ServiceError.code)

    def to_body(self) -> str:
        """The compact JSON document, always text SQS accepts.

        An exception's message may hold what a sender sent (a lone surrogate too): an error
        reply must still go out, so such characters are escaped, never refused.
        """
        doc: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            doc["code"] = self.code
        if self.details is not None:
            doc["details"] = dict(self.details)
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=repr)
        return escape_for_sqs(text)

    @classmethod
    def from_body(cls, body: str) -> ErrorInfo:
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise DecodeError(f"error reply body is not JSON: {exc}") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
            raise DecodeError("error reply body is not an error document with a 'type'")
        details = doc.get("details")
        code = doc.get("code")
        return cls(
            type=_printable(doc["type"]),
            message=_printable(str(doc.get("message", ""))),
            details=details if isinstance(details, dict) else None,
            code=code if isinstance(code, str) else None,
        )


def _printable(text: str) -> str:
    """``text`` with any lone surrogate written out as its escape: a replier writes any JSON,
    and a caller must be able to log the message of its RemoteError."""
    if sqs_text_problem(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
