"""`mykey shops payout-account`, `mykey municipalities bank-account` and `mykey settle zengin`
as an operator runs them (the shops are made in-process: each run of the CLI costs seconds)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mykey import ledger
from mykey.db import UnitOfWork, make_engine
from mykey.demo import MUNICIPALITIES
from mykey.ledger import AccountKind
from mykey.migrations import upgrade
from mykey.municipalities.registry import upsert
from mykey.points.program_setup import set_up_program
from mykey.points.shops import set_shop
from mykey.settlement import zengin
from mykey.settlement.payouts import payout_account
from tests.cli.test_cli import db, run  # noqa: F401 -- db is a fixture

TENRI = "292044"


def test_bank_accounts_from_the_command_line(db: Path) -> None:  # noqa: F811 -- the fixture
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    uow = UnitOfWork(engine)
    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=TENRI,
        point_name="天理市ポイント",
        terms="",
        validity={"budget": 1},
        usable_at=["shop"],
    )
    set_shop(uow, shop_id="honya", name="本屋", municipality=TENRI, kind="shop", accepts=[TENRI])

    shown = run(db, "shops", "payout-account", "honya")
    assert shown.returncode == 1 and "no_payout_account" in shown.stderr
    partial = run(db, "shops", "payout-account", "honya", "--bank", "0001")
    assert partial.returncode == 2 and "--holder" in partial.stderr
    made = run(
        db,
        *("shops", "payout-account", "honya", "--bank", "0001", "--branch", "123"),
        *("--type", "1", "--number", "1234567", "--holder", "ホンヤ"),
    )
    assert made.returncode == 0, made.stderr
    assert "ﾎﾝﾔ" in made.stdout and "****567" in made.stdout and "1234567" not in made.stdout
    assert payout_account(uow, "honya").account.account_number == "1234567"
    bad = run(
        db,
        *("shops", "payout-account", "honya", "--bank", "0001", "--branch", "123"),
        *("--type", "1", "--number", "1234567", "--holder", "本屋"),
    )
    assert bad.returncode == 1 and "unconvertible_kana" in bad.stderr

    paying = run(
        db,
        *("municipalities", "bank-account", TENRI, "--requester", "0000012345"),
        *("--name", "テンリシ", "--bank", "0162", "--branch", "301", "--type", "1"),
        *("--number", "7654321"),
    )
    assert paying.returncode == 0, paying.stderr
    assert "ﾃﾝﾘｼ" in paying.stdout and "0000012345" in paying.stdout
    again = run(db, "municipalities", "bank-account", TENRI)
    assert again.returncode == 0 and "****321" in again.stdout

    # October's takings of the shop, the month closed, and the file that pays it
    october = UnitOfWork(engine, clock=lambda: datetime(2026, 10, 20, 3, tzinfo=UTC))
    budget = ledger.open_account(october, ledger=TENRI, kind=AccountKind.BUDGET, owner=TENRI)
    shop = ledger.find_account(october, ledger=TENRI, kind=AccountKind.SHOP, owner="honya")
    ledger.transfer(october, debit=budget.id, credit=shop.id, amount=2500, kind="spend", actor="t")
    args = ("settle", "zengin", "--month", "2026-10", "--municipality", TENRI)
    args += ("--transfer-date", "2026-11-10", "--out", str(db.parent / "zengin.txt"))
    early = run(db, *args)
    assert early.returncode == 1 and "month_not_closed" in early.stderr
    closed = run(db, "settle", "close", "--month", "2026-10")
    assert closed.returncode == 0, closed.stderr
    written = run(db, *args)
    assert written.returncode == 0, written.stderr
    assert "1 transfers, 2,500 yen" in written.stdout
    parsed = zengin.parse((db.parent / "zengin.txt").read_bytes())
    assert [(line.holder_name, line.amount) for line in parsed.lines] == [("ﾎﾝﾔ", 2500)]
    assert (parsed.count, parsed.total, parsed.transfer_date) == (1, 2500, "1110")
    assert run(db, *args[:-4], "--transfer-date", "10 Nov", "--out", "x").returncode == 2
    engine.dispose()
