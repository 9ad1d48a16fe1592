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


class Quantity:
    """A kind of number a request carries, with the one error code of a bad one.

    Whatever is wrong with such a number (not an integer, a boolean, a string, a fraction, too
    small or too large) the refusal has the kind's code, and its message names the range. The
    HTTP layer (`mykey.web.api.numbers`) and the domain's own checks use the same kinds, so a
    bad amount gets the same code from both (docs/errors.md)."""

    def __init__(self, code: str, en: str, ja: str) -> None:
        self.code, self.en, self.ja = code, en, ja

    def messages(self, low: int, high: int, field: str | None = None) -> tuple[str, str]:
        """The English and Japanese messages for a bad value of this range."""
        where_en = f"{field}: " if field else ""
        where_ja = f"{field}: " if field else ""
        return (
            f"{where_en}{self.en} must be a whole number from {low:,} to {high:,}.",
            f"{where_ja}{self.ja}は {low:,}〜{high:,} の整数で指定してください。",
        )

    def error(self, value: object, low: int, high: int, field: str | None = None) -> MyKeyError:
        en, ja = self.messages(low, high, field)
        details: dict[str, Any] = {"minimum": low, "maximum": high, "value": repr(value)[:40]}
        if field:
            details["field"] = field
        return MyKeyError(self.code, ErrorKind.INVALID, en, ja, details=details)

    def check(self, value: object, low: int, high: int, field: str | None = None) -> int:
        """`value` if it is an int (not a bool) from `low` to `high`; else this kind's error."""
        if type(value) is not int or not low <= value <= high:
            raise self.error(value, low, high, field)
        return value


# The kinds of number, each with its one code (docs/errors.md lists them).
POINTS = Quantity("invalid_points", "Points", "ポイント数")
YEN = Quantity("invalid_amount", "An amount of yen", "金額（円）")
COUNT = Quantity("invalid_count", "A count", "件数・枚数")
UNITS = Quantity("invalid_units", "Partner units", "提携先ポイントの数")
PERMILLE = Quantity("invalid_permille", "A share in permille", "パーミル（‰）")
DAYS = Quantity("invalid_days", "A number of days", "日数")
MONTHS = Quantity("invalid_validity", "A validity in months", "有効期間（月数）")
SECONDS = Quantity("invalid_expiry", "A hold's lifetime in seconds", "保留期間（秒）")
DEPOSIT_TYPE = Quantity("invalid_deposit_type", "A deposit type (1, 2, 4 or 9)", "預金種目")
MAX_POINTS = 10**12  # the most points one transfer, grant, budget or balance can hold
