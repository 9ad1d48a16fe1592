"""Payout accounts of shops, paying accounts of municipalities, and the Zengin file a
municipality sends its bank to pay its shops (R7.2), on both engines."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mykey.db import UnitOfWork
from mykey.demo import MUNICIPALITIES
from mykey.errors import MyKeyError
from mykey.municipalities.registry import upsert
from mykey.points.program_setup import set_up_program
from mykey.points.shops import set_shop
from mykey.settlement.payouts import (
    Payout,
    paying_account,
    payout_account,
    payout_account_history,
    payout_file,
    set_paying_account,
    set_payout_account,
)
from mykey.settlement.zengin import parse
from tests.conftest import Database

TENRI, MAEBASHI = "292044", "102016"
DAY = date(2026, 11, 10)


def town(uow: UnitOfWork) -> None:
    """Tenri with three shops (one in Maebashi taking Tenri's points too) and its bank."""
    upsert(uow, MUNICIPALITIES)
    for code, name in ((TENRI, "天理市ポイント"), (MAEBASHI, "前橋市ポイント")):
        set_up_program(
            uow,
            municipality=code,
            point_name=name,
            terms="",
            validity={"budget": None},
            usable_at=["shop"],
        )
    for shop, municipality in (("honya", TENRI), ("panya", TENRI), ("maebashi-1", MAEBASHI)):
        set_shop(
            uow,
            shop_id=shop,
            name=shop,
            municipality=municipality,
            kind="shop",
            accepts=[TENRI, MAEBASHI],
        )
    set_paying_account(
        uow,
        municipality=TENRI,
        requester_code="0000012345",
        requester_name="テンリシ",
        bank_code="0162",
        bank_name="ナントギンコウ",
        branch_code="301",
        branch_name="テンリ",
        deposit_type=1,
        account_number="1234567",
        actor="staff:test",
    )


def account(uow: UnitOfWork, shop: str, number: str, holder: str) -> None:
    set_payout_account(
        uow,
        shop_id=shop,
        bank_code="0001",
        branch_code="123",
        deposit_type=1,
        account_number=number,
        holder_name=holder,
        actor="staff:test",
    )


def test_a_change_is_a_new_version_and_the_old_one_stays(database: Database) -> None:
    uow = database.uow()
    town(uow)
    account(uow, "honya", "1111111", "ホンヤ")
    database.clock.advance(days=3)
    changed = set_payout_account(
        uow,
        shop_id="honya",
        bank_code="0005",
        bank_name="ミツビシ",
        branch_code="045",
        deposit_type=2,
        account_number="22",
        holder_name="カ)ホンヤ",
        actor="operator:abc",
    )
    assert changed.changed
    now = payout_account(uow, "honya")
    assert (now.account.bank_code, now.account.account_number) == ("0005", "0000022")
    assert now.account.masked_number == "****022"
    assert (now.holder_name, now.account.bank_name) == ("ｶ)ﾎﾝﾔ", "ﾐﾂﾋﾞｼ")
    assert now.created_by == "operator:abc"
    history = payout_account_history(uow, "honya")
    assert [h.account.account_number for h in history] == ["0000022", "1111111"]
    assert history[0].created_at > history[1].created_at

    again = set_payout_account(
        uow,
        shop_id="honya",
        bank_code="0005",
        bank_name="ﾐﾂﾋﾞｼ",
        branch_code="045",
        deposit_type=2,
        account_number="0000022",
        holder_name="ｶ)ﾎﾝﾔ",
        actor="operator:abc",
    )
    assert not again.changed and again.version == now.version
    assert database.count("shop_payout_accounts") == 2


def test_the_account_tables_are_append_only(database: Database) -> None:
    uow = database.uow()
    town(uow)
    account(uow, "honya", "1111111", "ホンヤ")
    for statement in (
        "UPDATE shop_payout_accounts SET account_number = '9999999'",
        "DELETE FROM shop_payout_accounts",
        "DELETE FROM municipality_bank_accounts",
    ):
        with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as conn:
            conn.execute(text(statement))
    assert payout_account(uow, "honya").account.account_number == "1111111"


def test_bad_accounts_are_refused_and_change_nothing(database: Database) -> None:
    uow = database.uow()
    town(uow)
    cases = [
        ({"account_number": "12345678"}, "invalid_bank_field"),
        ({"bank_code": "1"}, "invalid_bank_field"),
        ({"deposit_type": 3}, "invalid_deposit_type"),
        ({"holder_name": "本屋"}, "unconvertible_kana"),
        ({"holder_name": "ア" * 31}, "kana_too_long"),
        ({"shop_id": "nowhere"}, "unknown_shop"),
    ]
    base = {
        "shop_id": "honya",
        "bank_code": "0001",
        "branch_code": "123",
        "deposit_type": 1,
        "account_number": "1",
        "holder_name": "ﾎﾝﾔ",
        "actor": "t",
    }
    for change, code in cases:
        with pytest.raises(MyKeyError) as caught:
            set_payout_account(uow, **{**base, **change})  # type: ignore[arg-type]  # mixed values
        assert caught.value.code == code
    assert database.count("shop_payout_accounts") == 0
    with pytest.raises(MyKeyError) as none:
        payout_account(uow, "honya")
    assert none.value.code == "no_payout_account"
    with pytest.raises(MyKeyError) as savings:  # a municipality does not pay from 貯蓄
        set_paying_account(
            uow,
            municipality=TENRI,
            requester_code="0000012345",
            requester_name="テンリシ",
            bank_code="0162",
            branch_code="301",
            deposit_type=4,
            account_number="1",
            actor="t",
        )
    assert savings.value.code == "invalid_deposit_type"
    with pytest.raises(MyKeyError) as short:
        set_paying_account(
            uow,
            municipality=TENRI,
            requester_code="12345",
            requester_name="テンリシ",
            bank_code="0162",
            branch_code="301",
            deposit_type=1,
            account_number="1",
            actor="t",
        )
    assert short.value.code == "invalid_bank_field"
    assert database.count("municipality_bank_accounts") == 1
    assert paying_account(uow, TENRI).requester_name == "ﾃﾝﾘｼ"
    with pytest.raises(MyKeyError) as unknown:
        paying_account(uow, MAEBASHI)
    assert unknown.value.code == "no_paying_account"


def test_the_payout_file_pays_each_shop_into_its_latest_account(database: Database) -> None:
    uow = database.uow()
    town(uow)
    account(uow, "honya", "1111111", "ホンヤ")
    account(uow, "honya", "3333333", "ホンヤ")  # changed: the newest applies
    account(uow, "panya", "2222222", "パンヤ")
    account(uow, "maebashi-1", "4444444", "マエバシ")
    data = payout_file(
        uow,
        municipality=TENRI,
        payouts=[
            Payout("honya", 12_000, "202610"),
            Payout("panya", 0),  # nothing earned this month: no transfer
            Payout("maebashi-1", 880),
        ],
        transfer_date=DAY,
    )
    parsed = parse(data)
    assert all(len(r) == 120 for r in data[:-2].split(b"\r\n"))
    assert (parsed.count, parsed.total) == (2, 12_880)
    assert parsed.payer.requester_code == "0000012345"
    assert parsed.payer.name == "ﾃﾝﾘｼ" and parsed.payer.account_number == "1234567"
    assert [(line.account_number, line.holder_name, line.amount) for line in parsed.lines] == [
        ("3333333", "ﾎﾝﾔ", 12_000),
        ("4444444", "ﾏｴﾊﾞｼ", 880),
    ]
    assert parsed.lines[0].customer_code1 == "0000202610"
    assert parsed.transfer_date == "1110"


def test_shops_without_a_payout_account_are_all_named(database: Database) -> None:
    uow = database.uow()
    town(uow)
    account(uow, "honya", "1111111", "ホンヤ")
    with pytest.raises(MyKeyError) as caught:
        payout_file(
            uow,
            municipality=TENRI,
            payouts=[Payout("honya", 1), Payout("panya", 2), Payout("maebashi-1", 3)],
            transfer_date=DAY,
        )
    assert caught.value.code == "no_payout_account"
    assert caught.value.details["shops"] == ["maebashi-1", "panya"]
    assert "maebashi-1, panya" in caught.value.message


@pytest.mark.parametrize(
    ("municipality", "payouts", "code"),
    [
        (TENRI, [Payout("honya", 0)], "nothing_to_pay"),
        (TENRI, [Payout("honya", -1)], "invalid_amount"),
        (TENRI, [Payout("honya", 1, "ABC")], "invalid_customer_ref"),
        (TENRI, [Payout("ghost", 1)], "unknown_shop"),
        (MAEBASHI, [Payout("honya", 1)], "no_paying_account"),
        ("999999", [Payout("honya", 1)], "invalid_municipality_code"),
    ],
)
def test_payout_file_refusals(
    database: Database, municipality: str, payouts: list[Payout], code: str
) -> None:
    uow = database.uow()
    town(uow)
    account(uow, "honya", "1111111", "ホンヤ")
    with pytest.raises(MyKeyError) as caught:
        payout_file(uow, municipality=municipality, payouts=payouts, transfer_date=DAY)
    assert caught.value.code == code
