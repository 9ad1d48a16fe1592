"""Local government codes (全国地方公共団体コード, JIS X 0402 with its check digit).

A code is six digits: two for the prefecture, three for the municipality, and a check digit.
The check digit: multiply the first five digits by 6, 5, 4, 3, 2, add them up, take the
remainder by 11, subtract it from 11, and keep the last digit (011002 Sapporo: 0·6 + 1·5 + 1·4
+ 0·3 + 0·2 = 9; 11 − 9 = 2).
"""

from __future__ import annotations

import unicodedata

from mykey.errors import MyKeyError, invalid

WEIGHTS = (6, 5, 4, 3, 2)


def check_digit(first_five: str) -> int:
    """The JIS X 0402 check digit of a five-digit code."""
    if len(first_five) != 5 or not first_five.isascii() or not first_five.isdigit():
        raise ValueError("a check digit is computed over exactly five ASCII digits")
    total = sum(int(d) * w for d, w in zip(first_five, WEIGHTS, strict=True))
    return (11 - total % 11) % 10


def bad_code(code: object, why: str, why_ja: str) -> MyKeyError:
    return invalid(
        "invalid_municipality_code",
        f"{code!r} is not a local government code: {why}",
        f"{code!r} は地方公共団体コードではありません: {why_ja}",
        code=str(code)[:20],
    )


def parse_code(value: object) -> str:
    """A valid six-digit code (full-width digits accepted) or `invalid_municipality_code`."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:06d}"  # spreadsheets drop the leading zero of 011002
    if not isinstance(value, str):
        raise bad_code(value, "it must be six digits.", "6 桁の数字で指定してください。")
    code = unicodedata.normalize("NFKC", value).strip()
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        raise bad_code(value, "it must be six digits.", "6 桁の数字で指定してください。")
    prefecture = int(code[:2])
    if not 1 <= prefecture <= 47:
        raise bad_code(
            value,
            "the first two digits must be a prefecture from 01 to 47.",
            "先頭 2 桁は 01〜47 の都道府県コードです。",
        )
    expected = check_digit(code[:5])
    if int(code[5]) != expected:
        raise bad_code(
            value,
            f"the check digit should be {expected}.",
            f"検査数字（6 桁目）は {expected} のはずです。",
        )
    return code


def prefecture_code(code: str) -> str:
    """The prefecture's own six-digit code (13 → 130001)."""
    head = code[:2] + "000"
    return head + str(check_digit(head))
