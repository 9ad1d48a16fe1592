"""The numbers a request body may carry: JSON integers only, in a range, with one error code
per kind of quantity.

Every integer field of every request schema in `mykey.web.api` uses a type from here (a test,
tests/api/test_numbers.py, walks every route's request models and fails on a plain `int`).
A boolean, a string, a fraction (`10.0` too) or a number out of range is refused with 422 and
the kind's code (`invalid_points`, `invalid_amount` for yen, `invalid_count`,
`invalid_units`, …) naming the field in `errors[].location`, exactly as the domain refuses
the same number (`mykey.errors.Quantity`).

    class PaymentIn(BaseModel):
        points: Points
        valid_days: Annotated[int, Whole(DAYS, 1, 366)] = 30

A number of a kind in a query string (`?points=500`) is `InQuery(KIND, low, high)`: ASCII
digits only (not `5.0`, `1e3` or `true`), with the same code. Cursors and positions (`before`,
`offset`, a log index) are bounded by `Query(ge=…, le=MAX_ID)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import GroupedMetadata, Interval
from pydantic import Strict, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError

from mykey.errors import (
    COUNT,
    DAYS,
    DEPOSIT_TYPE,
    MAX_POINTS,
    MONTHS,
    PERMILLE,
    POINTS,
    UNITS,
    YEN,
    Quantity,
)

MAX_YEN = 9_999_999_999  # what a Zengin transfer can carry (N(10))
MAX_COUNT = 1_000_000
MAX_ID = 2**63 - 1  # a sequence number, cursor or log index: what a BIGINT (and SQLite) holds


def _refusal(kind: Quantity, low: int, high: int) -> PydanticCustomError:
    en, ja = kind.messages(low, high)
    # The message is a template for pydantic: no braces in it, so nothing is filled in.
    return PydanticCustomError(
        kind.code,
        en.replace("{", "(").replace("}", ")"),
        {"message_ja": ja, "minimum": low, "maximum": high},
    )


@dataclass(frozen=True)
class Whole(GroupedMetadata):
    """`Annotated[int, Whole(POINTS, 1, 1000)]`: a JSON integer from low to high, or 422 with
    the kind's code. Strict (no bool, str or float is converted); the schema says `integer`
    with `minimum` and `maximum`."""

    kind: Quantity
    low: int
    high: int

    def __iter__(self) -> Iterator[object]:  # pydantic unpacks grouped metadata
        yield Strict()
        yield Interval(ge=self.low, le=self.high)
        yield WrapValidator(self._check)

    def _check(self, value: Any, handler: ValidatorFunctionWrapHandler) -> int:
        if type(value) is not int or not self.low <= value <= self.high:
            raise _refusal(self.kind, self.low, self.high)
        checked: int = handler(value)
        return checked


@dataclass(frozen=True)
class InQuery(GroupedMetadata):
    """`Annotated[int, Query(), InQuery(POINTS, 1, MAX_POINTS)]`: a query parameter of a kind,
    written in ASCII digits, from low to high, or 422 with the kind's code (as `Whole`)."""

    kind: Quantity
    low: int
    high: int

    def __iter__(self) -> Iterator[object]:
        yield Interval(ge=self.low, le=self.high)
        yield WrapValidator(self._check)

    def _check(self, value: Any, handler: ValidatorFunctionWrapHandler) -> int:
        number = value
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
            number = int(value)
        if type(number) is not int or not self.low <= number <= self.high:
            raise _refusal(self.kind, self.low, self.high)
        checked: int = handler(number)
        return checked


Points = Annotated[int, Whole(POINTS, 1, MAX_POINTS)]
"""Points moved, granted or asked for: 1 to 10^12."""
PointsOrZero = Annotated[int, Whole(POINTS, 0, MAX_POINTS)]
Yen = Annotated[int, Whole(YEN, 1, MAX_YEN)]
YenOrZero = Annotated[int, Whole(YEN, 0, MAX_YEN)]
Count = Annotated[int, Whole(COUNT, 1, MAX_COUNT)]
Units = Annotated[int, Whole(UNITS, 1, MAX_POINTS)]
"""A partner's own points or miles: 1 to 10^12."""
Permille = Annotated[int, Whole(PERMILLE, 0, 1000)]
Days = Annotated[int, Whole(DAYS, 1, 3660)]
Months = Annotated[int, Whole(MONTHS, 1, 120)]
DepositType = Annotated[int, Whole(DEPOSIT_TYPE, 1, 9)]
