"""`mykey shops payout-account` and `mykey municipalities bank-account` as an operator runs
them (the shops are made in-process: each run of the CLI costs seconds)."""

from __future__ import annotations

from pathlib import Path

from mykey.db import UnitOfWork, make_engine
from mykey.demo import MUNICIPALITIES
from mykey.migrations import upgrade
from mykey.municipalities.registry import upsert
from mykey.points.program_setup import set_up_program
from mykey.points.shops import set_shop
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
    engine.dispose()
