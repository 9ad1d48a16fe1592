"""Local government codes and their JIS X 0402 check digit (pure)."""

from __future__ import annotations

import pytest

from mykey.errors import MyKeyError
from mykey.municipalities.codes import check_digit, parse_code, prefecture_code


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("011002", "札幌市"),
        ("131164", "豊島区"),
        ("292044", "天理市"),
        ("242012", "津市"),
        ("434248", "小国町"),
        ("442097", "豊後高田市"),
        ("452025", "都城市"),
        ("402028", "大牟田市"),
        ("130001", "東京都"),
    ],
)
def test_real_codes_pass(code: str, name: str) -> None:
    assert parse_code(code) == code, name


def test_the_check_digit_is_eleven_minus_the_weighted_sum_mod_eleven_last_digit() -> None:
    assert check_digit("01100") == 2  # 0·6+1·5+1·4+0·3+0·2 = 9 → 11-9 = 2
    assert check_digit("13116") == 4
    assert check_digit("00000") == 1  # remainder 0 → 11 → last digit 1
    assert prefecture_code("131164") == "130001"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("131165", "check digit should be 4"),
        ("13116", "six digits"),
        ("1311644", "six digits"),
        ("13116a", "six digits"),
        ("", "six digits"),
        ("481009", "prefecture"),
        ("001007", "prefecture"),
        (None, "six digits"),
    ],
)
def test_bad_codes_are_refused_with_a_clear_message(value: object, fragment: str) -> None:
    with pytest.raises(MyKeyError) as caught:
        parse_code(value)
    assert caught.value.code == "invalid_municipality_code"
    assert fragment in caught.value.message
    assert "地方公共団体コード" in caught.value.message_ja


def test_full_width_digits_and_dropped_zeros_are_understood() -> None:
    assert parse_code("１３１１６４") == "131164"
    assert parse_code(11002) == "011002"
