"""`mykey rankings award … --voucher-count` and `mykey rankings vouchers` as an operator runs
them: prize vouchers for the top walkers, then their PDFs (state made in-process)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from mykey import ledger
from mykey.db import UnitOfWork, make_engine
from mykey.demo import MUNICIPALITIES
from mykey.ledger import AccountKind
from mykey.migrations import upgrade
from mykey.municipalities.registry import upsert
from mykey.points.grants import grant_points
from mykey.points.program_setup import Rule, set_up_program
from mykey.points.shops import set_shop, set_street
from tests.cli.test_cli import db, run  # noqa: F401 -- db is a fixture
from tests.pdfs import read_pdf
from tests.points.test_accruals import make_residents

BUNGO = "442097"


def test_award_prize_vouchers_and_print_them(db: Path) -> None:  # noqa: F811 -- the fixture
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    uow = UnitOfWork(engine)
    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=BUNGO,
        point_name="豊後高田市ポイント",
        terms="",
        validity={},
        usable_at=["shop"],
        rules=[Rule("health_walk", "健康ウォーク", 500)],
    )
    set_street(uow, street_id="showa", name="昭和の町", municipality=BUNGO)
    set_shop(
        uow,
        shop_id="showa-1",
        name="駄菓子屋",
        municipality=BUNGO,
        kind="shop",
        accepts=[BUNGO],
        street_id="showa",
    )
    make_residents(uow, "CLIWALK1", "CLIWALK2")
    for who, walks in (("CLIWALK1", 3), ("CLIWALK2", 2)):
        for n in range(walks):
            grant_points(
                uow,
                municipality=BUNGO,
                mykey_id=who,
                actor="staff:test",
                key=f"{who}-{n}",
                reason="ウォーク",
                activity="health_walk",
            )
    engine.dispose()
    query = ("--municipality", BUNGO, "--activity", "health_walk", "--from", "2026-04-01")
    query += ("--to", "2027-03-31", "--top", "200", "--minimum", "1000")
    prize = ("--voucher-count", "10", "--voucher-value", "500", "--voucher-days", "90")

    bad = run(db, "rankings", "award", *query, *prize, "--reason", "賞品", "--key", "k-1")
    assert bad.returncode == 1 and "invalid_voucher_place" in bad.stderr
    awarded = run(
        db,
        *("rankings", "award", *query, *prize, "--voucher-street", "showa"),
        *("--reason", "ウォーキング上位者", "--key", "walk-2026"),
    )
    assert awarded.returncode == 0, awarded.stderr
    assert "2 given, 0 before, 0 refused" in awarded.stdout
    award_id = awarded.stdout.split("Award ")[1].split(":")[0]
    listed = run(db, "rankings", "awards", "--municipality", BUNGO)
    assert award_id in listed.stdout and "10 × 500 pt @ showa" in listed.stdout

    one = db.parent / "one.pdf"
    printed = run(
        db,
        *("rankings", "vouchers", "--municipality", BUNGO, "--award", award_id),
        *("--mykey-id", "cliwalk2", "--out", str(one)),
    )
    assert printed.returncode == 0, printed.stderr
    assert len([n for page in read_pdf(one.read_bytes()) for n in page.ean13]) == 10
    everyone = db.parent / "all.zip"
    zipped = run(
        db,
        *("rankings", "vouchers", "--municipality", BUNGO, "--award", award_id),
        *("--out", str(everyone)),
    )
    assert zipped.returncode == 0, zipped.stderr
    assert zipfile.ZipFile(everyone).namelist() == ["0001-CLIWALK1.pdf", "0002-CLIWALK2.pdf"]
    elsewhere = run(
        db,
        *("rankings", "vouchers", "--municipality", "131164", "--award", award_id),
        *("--out", str(everyone)),
    )
    assert elsewhere.returncode == 1 and "unknown_award" in elsewhere.stderr

    uow = UnitOfWork(make_engine(f"sqlite:///{db}"))
    float_account = ledger.find_account(
        uow, ledger=BUNGO, kind=AccountKind.VOUCHER_FLOAT, owner="vouchers"
    )
    assert ledger.balance(uow, float_account.id).posted == 2 * 10 * 500
    assert ledger.check(uow).ok
