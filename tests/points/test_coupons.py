"""Coupon codes: the check character, single use under races, the guessing throttle."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

from mykey import ledger
from mykey.errors import MyKeyError
from mykey.points.coupons import ALPHABET, is_valid, new_code, order_batch, redeem
from mykey.points.partners import set_partner
from tests.conftest import Database
from tests.points.test_conversions import OGUNI, TENRI, resident, setting

SECRET = "test secret key"


def test_every_single_substitution_and_adjacent_transposition_is_caught() -> None:
    for _ in range(200):
        code = new_code()
        assert is_valid(code)
        for i in range(len(code)):
            for c in ALPHABET:
                if c != code[i]:
                    assert not is_valid(code[:i] + c + code[i + 1 :])
            if i + 1 < len(code) and code[i] != code[i + 1]:
                assert not is_valid(code[:i] + code[i + 1] + code[i] + code[i + 2 :])


def _batch(database: Database, count: int) -> list[str]:
    uow = setting(database)
    set_partner(uow, partner="jal", name="JAL", methods=["coupon_paper"])
    ordered = order_batch(
        uow,
        partner="jal",
        count=count,
        units=1000,
        delivery="paper",
        expires_on=date(2026, 12, 31),
        actor="partner:jal",
        key="batch-1",
        secret_key=SECRET,
    )
    return [c.code for c in ordered.coupons]


def test_two_residents_redeeming_one_coupon_at_once_one_wins(database: Database) -> None:
    (code,) = _batch(database, 1)
    uow = database.uow()
    people = [resident(uow, "MY000031"), resident(uow, "MY000032")]
    start = threading.Barrier(2)

    def attempt(n: int) -> str:
        mine = database.uow()
        start.wait()
        try:
            redeem(
                mine,
                code=code,
                mykey_id=people[n],
                municipality=(OGUNI, TENRI)[n],
                actor=f"resident:{people[n]}",
                key="same-key",
            )
            return "won"
        except MyKeyError as error:
            return error.code

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(attempt, range(2)))
    assert outcomes == ["coupon_used", "won"]
    assert database.count("conversions") == 1
    assert ledger.check(uow).ok


def test_guessing_is_throttled_after_ten_unknown_codes(database: Database) -> None:
    (code,) = _batch(database, 1)
    uow = database.uow()
    who = resident(uow, "MY000033")

    def try_code(value: str, key: str = "k") -> str:
        try:
            redeem(uow, code=value, mykey_id=who, municipality=OGUNI, actor="r", key=key)
            return "ok"
        except MyKeyError as error:
            return error.code

    assert [try_code(new_code()) for _ in range(10)] == ["unknown_coupon"] * 10
    with pytest.raises(MyKeyError) as locked:
        redeem(uow, code=code, mykey_id=who, municipality=OGUNI, actor="r", key="k")
    assert (locked.value.code, locked.value.kind.value) == ("too_many_attempts", "throttled")
    database.clock.advance(hours=1, seconds=1)
    assert try_code(code) == "ok"
