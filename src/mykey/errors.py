"""The one error type of the domain: a stable code, a kind, and a message in both languages.

Every expected refusal is a `MyKeyError`; the web layer renders it as RFC 9457 problem+json
(or a page banner) and the CLI as a message with a non-zero exit. Nothing expected is a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    """What sort of refusal this is; decides the HTTP status."""

    INVALID = "invalid"  # the request itself is malformed: 422
    NOT_FOUND = "not_found"  # it names something that does not exist: 404
    REFUSED = "refused"  # well-formed, but the rules say no (e.g. not enough points): 409
    CONFLICT = "conflict"  # it clashes with an earlier request (e.g. key reused): 409
    FORBIDDEN = "forbidden"  # this key or role may not do that (or not for that party): 403
    UNAUTHENTICATED = "unauthenticated"  # no valid session or credentials: 401
    THROTTLED = "throttled"  # too many failures; try again later: 429


class MyKeyError(Exception):
    """A domain error with a stable machine code and a bilingual human message."""

    def __init__(
        self,
        code: str,
        kind: ErrorKind,
        message: str,
        message_ja: str,
        *,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.kind = kind
        self.message = message
        self.message_ja = message_ja
        self.details: dict[str, Any] = dict(details or {})

    def __repr__(self) -> str:
        return f"MyKeyError({self.code!r}, {self.kind.value!r}, {self.message!r})"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form, used to store a refusal so that a retry replays it exactly."""
        return {
            "code": self.code,
            "kind": self.kind.value,
            "message": self.message,
            "message_ja": self.message_ja,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MyKeyError:
        return cls(
            str(data["code"]),
            ErrorKind(data["kind"]),
            str(data["message"]),
            str(data["message_ja"]),
            details=data.get("details") or {},
        )


def invalid(code: str, message: str, message_ja: str, /, **details: Any) -> MyKeyError:
    return MyKeyError(code, ErrorKind.INVALID, message, message_ja, details=details)


def not_found(code: str, message: str, message_ja: str, /, **details: Any) -> MyKeyError:
    return MyKeyError(code, ErrorKind.NOT_FOUND, message, message_ja, details=details)


def refused(code: str, message: str, message_ja: str, /, **details: Any) -> MyKeyError:
    return MyKeyError(code, ErrorKind.REFUSED, message, message_ja, details=details)


def forbidden(message: str, message_ja: str, /, **details: Any) -> MyKeyError:
    """The caller is known but may not do this (wrong role, another party's data): 403."""
    return MyKeyError("forbidden", ErrorKind.FORBIDDEN, message, message_ja, details=details)


def conflict(code: str, message: str, message_ja: str, /, **details: Any) -> MyKeyError:
    return MyKeyError(code, ErrorKind.CONFLICT, message, message_ja, details=details)
