"""Accumulating programs (R4.3): a year of care-support volunteering, then payouts and donations
(SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from mykey import ledger
from mykey.db import UnitOfWork
from mykey.demo import MUNICIPALITIES
from mykey.errors import MyKeyError
from mykey.identity.proofs import VerifiedCard
from mykey.identity.residents import create_mykey_id
from mykey.ledger import AccountKind
from mykey.municipalities.registry import upsert
from mykey.points.accruals import (
    accruals_of,
    accruals_to_close,
    choose,
    close_accrual_year,
    closings,
    mark_paid,
)
from mykey.points.balances import points_of
from mykey.points.grants import grant_points
from mykey.points.program_setup import Rule, set_up_program
from tests.conftest import Database

TSU = "242012"
RULES = [
    Rule("care", "介護支援ボランティア", 100, accrues=True),
    Rule("volunteer", "ボランティア", 200),
]


def make_residents(uow: UnitOfWork, *names: str) -> None:
    for name in names:
        card_key = hashlib.sha256(f"card-{name}".encode()).hexdigest()
        card = VerifiedCard(card_key, datetime(2030, 1, 1, tzinfo=UTC))
        create_mykey_id(uow, card=card, password="long enough", mykey_id=name)


def set_up(uow: UnitOfWork) -> None:
    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=TSU,
        point_name="津市ポイント",
        terms="",
        validity={},
        usable_at=["shop"],
        rules=RULES,
        accrual_default="donation",
    )


def test_a_year_of_accrual_then_payouts_and_donations(database: Database) -> None:
    uow = database.uow()
    set_up(uow)
    make_residents(uow, "TSUAAAAA", "TSUBBBBB", "TSUCCCCC", "TSUDDDDD")
    n = iter(range(1000))

    def grant(who: str, activity: str) -> ledger.Receipt | None:
        receipt = grant_points(
            uow,
            municipality=TSU,
            mykey_id=who,
            actor="staff:tsu",
            key=f"g-{next(n)}",
            reason="介護施設での活動",
            activity=activity,
        )
        assert receipt.accrued == (activity == "care")
        return None

    for who, times in (("TSUAAAAA", 3), ("TSUBBBBB", 2), ("TSUCCCCC", 1)):
        for _ in range(times):
            grant(who, "care")
    grant("TSUCCCCC", "volunteer")
    reversed_one = grant_points(
        uow,
        municipality=TSU,
        mykey_id="TSUDDDDD",
        actor="staff:tsu",
        key="d-1",
        reason="誤登録",
        activity="care",
    )
    assert (reversed_one.balance, reversed_one.expires_on.isoformat()) == (100, "2027-03-31")
    ledger.reverse(uow, transfer_id=reversed_one.transfer_id, actor="staff:tsu", reason="誤り")
    choose(uow, municipality=TSU, mykey_id="TSUAAAAA", choice="payout")
    choose(uow, municipality=TSU, mykey_id="TSUBBBBB", choice="payout")
    choose(uow, municipality=TSU, mykey_id="TSUBBBBB", choice="donation")  # changed their mind

    # Accrued points are not spendable: the wallet holds only the ordinary grant.
    assert [(h.municipality, h.balance) for h in points_of(uow, "TSUCCCCC").holdings] == [
        (TSU, 200)
    ]
    mine = accruals_of(uow, "TSUAAAAA")
    assert [(a.fiscal_year, a.points, a.choice, a.chosen) for a in mine.accruing] == [
        (2026, 300, "payout", True)
    ]
    assert accruals_of(uow, "TSUCCCCC").accruing[0].choice == "donation"  # the default

    database.clock.now = datetime(2027, 3, 31, 14, 0, tzinfo=UTC)  # 23:00 on March 31 in Tokyo
    grant("TSUAAAAA", "care")  # still fiscal 2026
    with pytest.raises(MyKeyError) as early:
        close_accrual_year(uow, municipality=TSU, fiscal_year=2026)
    assert early.value.code == "year_not_over"
    database.clock.advance(hours=2)  # April 1 in Tokyo: fiscal 2027
    grant("TSUAAAAA", "care")  # accrues in fiscal 2027, not in the year being closed
    assert accruals_to_close(uow, municipality=TSU, fiscal_year=2026) == 4

    seen: list[int] = []
    report = close_accrual_year(uow, municipality=TSU, fiscal_year=2026, progress=seen.append)
    assert (report.payouts, report.payout_points) == (1, 400)
    assert (report.donations, report.donation_points) == (2, 300)
    assert (report.already_closed, report.empty) == (0, 1)
    assert sum(seen) == 4

    again = close_accrual_year(uow, municipality=TSU, fiscal_year=2026, batch=2)
    assert (again.payouts, again.donations, again.already_closed, again.empty) == (0, 0, 3, 1)

    payout = ledger.find_account(uow, ledger=TSU, kind=AccountKind.PAYOUT, owner="TSUAAAAA")
    donation = ledger.find_account(uow, ledger=TSU, kind=AccountKind.DONATION, owner=TSU)
    assert ledger.balance(uow, payout.id).available == 400
    assert ledger.balance(uow, donation.id).posted == 300

    a = accruals_of(uow, "TSUAAAAA")
    assert [(x.fiscal_year, x.points) for x in a.accruing] == [(2027, 100)]
    assert [(c.fiscal_year, c.outcome, c.points, c.status) for c in a.closed] == [
        (2026, "payout", 400, "pending")
    ]
    assert [
        (c.mykey_id, c.outcome, c.points, c.status) for c in closings(uow, municipality=TSU)
    ] == [
        ("TSUAAAAA", "payout", 400, "pending"),
        ("TSUBBBBB", "donation", 200, "donated"),
        ("TSUCCCCC", "donation", 100, "donated"),
    ]

    paid = mark_paid(
        uow,
        municipality=TSU,
        fiscal_year=2026,
        mykey_id="tsuaaaaa",
        actor="staff:tsu",
        reference="振込 0001",
    )
    assert (paid.already_paid, paid.payout.status, paid.payout.paid_reference) == (
        False,
        "paid",
        "振込 0001",
    )
    twice = mark_paid(
        uow,
        municipality=TSU,
        fiscal_year=2026,
        mykey_id="TSUAAAAA",
        actor="staff:other",
        reference="振込 0002",
    )
    assert (twice.already_paid, twice.payout.paid_reference) == (True, "振込 0001")
    assert ledger.balance(uow, payout.id).available == 0
    assert closings(uow, municipality=TSU, status="pending") == []
    with pytest.raises(MyKeyError) as donated:
        mark_paid(
            uow,
            municipality=TSU,
            fiscal_year=2026,
            mykey_id="TSUBBBBB",
            actor="staff:tsu",
            reference="x",
        )
    assert donated.value.code == "unknown_payout"
    with pytest.raises(MyKeyError) as bad:
        choose(uow, municipality=TSU, mykey_id="TSUAAAAA", choice="cash")
    assert bad.value.code == "invalid_accrual_choice"

    report_check = ledger.check(uow)
    assert report_check.ok, report_check.problems


def test_two_closes_at_once_close_everyone_once(database: Database) -> None:
    uow = database.uow()
    set_up(uow)
    people = [f"TSUC000{n}" for n in range(6)]
    make_residents(uow, *people)
    for n, who in enumerate(people):
        grant_points(
            uow,
            municipality=TSU,
            mykey_id=who,
            actor="staff:tsu",
            key=f"c-{n}",
            reason="介護",
            activity="care",
        )
        if n % 2:
            choose(uow, municipality=TSU, mykey_id=who, choice="payout")
    database.clock.now = datetime(2027, 4, 1, 0, 0, tzinfo=UTC)
    start = threading.Barrier(2)

    def desk(actor: str) -> tuple[int, int]:
        mine = database.uow()
        start.wait()
        report = close_accrual_year(mine, municipality=TSU, fiscal_year=2026, actor=actor, batch=2)
        return report.payouts, report.donations

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(desk, ["staff:a", "staff:b"]))

    assert sum(p for p, _ in results) == 3
    assert sum(d for _, d in results) == 3
    assert database.count("accrual_closings") == 6
    report = ledger.check(uow)
    assert report.ok, report.problems
