"""Conversions, premiums, reserved points and the sweep, through the use cases (both engines)."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest

from mykey import ledger
from mykey.db import UnitOfWork
from mykey.demo import MUNICIPALITIES
from mykey.errors import MyKeyError
from mykey.identity.proofs import VerifiedCard
from mykey.identity.residents import create_mykey_id
from mykey.municipalities.registry import upsert
from mykey.points.balances import points_of
from mykey.points.conversion import Receivable, convert, receivables
from mykey.points.partners import add_agreement, set_partner
from mykey.points.program_setup import set_up_program
from mykey.points.reserved import assign_reserved, set_default_municipality, sweep_reserved
from tests.conftest import Database

OGUNI, TENRI = "434248", "292044"
TODAY = date(2026, 10, 15)  # the test clock's Tokyo date


def resident(uow: UnitOfWork, mykey_id: str) -> str:
    card = VerifiedCard(
        hashlib.sha256(mykey_id.encode()).hexdigest(), datetime(2030, 1, 1, tzinfo=UTC)
    )
    return create_mykey_id(uow, card=card, password="long enough", mykey_id=mykey_id)


def setting(database: Database, **premium: int | None) -> UnitOfWork:
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    for code, name in ((OGUNI, "小国町ポイント"), (TENRI, "天理市ポイント")):
        set_up_program(
            uow,
            municipality=code,
            point_name=name,
            terms="",
            validity={},
            usable_at=["shop"],
            premium_permille=100 if code == OGUNI else 0,
            premium_budget=premium.get("budget"),
        )
    for partner in ("jal", "docomo"):
        set_partner(uow, partner=partner, name=partner.upper(), methods=["id_linkage"])
        add_agreement(
            uow,
            partner=partner,
            effective_from=TODAY,
            rate_units=1000,
            rate_points=1000,
            minimum=1000,
            step=1000,
            daily_limit=5000,
            actor="operator:test",
        )
    return uow


def conv(uow: UnitOfWork, who: str, units: int, code: str | None, key: str, partner: str = "jal"):  # type: ignore[no-untyped-def]
    return convert(
        uow,
        partner=partner,
        mykey_id=who,
        units=units,
        municipality=code,
        method="id_linkage",
        actor=f"partner:{partner}",
        key=key,
    )


def test_a_new_agreement_applies_from_its_date_not_before(database: Database) -> None:
    uow = setting(database)
    who = resident(uow, "MY000001")
    add_agreement(
        uow,
        partner="jal",
        effective_from=date(2026, 10, 25),
        rate_units=1000,
        rate_points=1500,
        minimum=2000,
        step=1000,
        daily_limit=10000,
        actor="operator:test",
    )
    assert conv(uow, who, 1000, TENRI, "a").points == 1000
    database.clock.advance(days=9)  # 2026-10-24: the old terms
    assert conv(uow, who, 1000, TENRI, "b").points == 1000
    database.clock.advance(days=1)  # 2026-10-25: the new terms
    with pytest.raises(MyKeyError) as refused:
        conv(uow, who, 1000, TENRI, "c")
    assert refused.value.code == "below_minimum"
    assert conv(uow, who, 2000, TENRI, "d").points == 3000
    with pytest.raises(MyKeyError) as past:
        add_agreement(
            uow,
            partner="jal",
            effective_from=date(2026, 10, 20),
            rate_units=1,
            rate_points=1,
            minimum=1,
            step=1,
            daily_limit=None,
            actor="operator:test",
        )
    assert past.value.code == "invalid_effective_from"


def test_concurrent_conversions_never_exceed_the_daily_limit(database: Database) -> None:
    uow = setting(database)
    who = resident(uow, "MY000002")
    start = threading.Barrier(4)

    def partner_server(n: int) -> int:
        mine = database.uow()
        start.wait()
        try:
            return conv(mine, who, 2000, OGUNI, f"race-{n}").points
        except MyKeyError as error:
            assert error.code == "daily_limit_reached"
            return 0

    with ThreadPoolExecutor(4) as pool:
        total = sum(pool.map(partner_server, range(4)))
    assert total == 4000  # two of 2,000 fit in 5,000 a day; a third would not
    assert database.count("conversions") == 2
    assert ledger.check(uow).ok


def test_premium_stops_at_the_premium_budget_but_the_conversion_goes_on(
    database: Database,
) -> None:
    uow = setting(database, budget=500)
    who, other = resident(uow, "MY000003"), resident(uow, "MY000013")
    first = conv(uow, who, 3000, OGUNI, "p1")
    second = conv(uow, other, 3000, OGUNI, "p2")
    third = conv(uow, other, 2000, OGUNI, "p3")
    assert (first.points, first.premium) == (3000, 300)
    assert (second.points, second.premium) == (3000, 0)  # 300 would not fit in the 200 left
    assert (third.points, third.premium) == (2000, 200)  # 200 does
    assert third.balance == 5200
    assert receivables(uow, partner="jal") == [Receivable("jal", OGUNI, 8000)]


def test_reserved_points_assigned_in_part_and_swept_after_14_days(database: Database) -> None:
    uow = setting(database)
    who = resident(uow, "MY000004")
    waiting = resident(uow, "MY000005")
    conv(uow, who, 3000, None, "r1")
    conv(uow, who, 2000, None, "r2", partner="docomo")
    conv(uow, waiting, 1000, None, "r3")
    assert points_of(uow, who).reserved == 5000

    part = assign_reserved(
        uow, mykey_id=who, municipality=OGUNI, points=4000, actor="resident:x", key="as1"
    )
    assert [(p.partner, p.points) for p in part.parts] == [("jal", 3000), ("docomo", 1000)]
    assert (part.premium, part.balance, part.reserved_left) == (400, 4400, 1000)
    again = assign_reserved(
        uow, mykey_id=who, municipality=OGUNI, points=4000, actor="resident:x", key="as1"
    )
    assert again.replayed and again.assignment_id == part.assignment_id
    assert sorted(receivables(uow), key=lambda r: (r.partner, r.municipality or "")) == [
        Receivable("docomo", None, 1000),
        Receivable("docomo", OGUNI, 1000),
        Receivable("jal", None, 1000),
        Receivable("jal", OGUNI, 3000),
    ]

    set_default_municipality(uow, mykey_id=who, municipality=TENRI)
    database.clock.advance(days=14)
    assert sweep_reserved(uow).residents == 0  # day D+14: still the resident's to assign
    database.clock.advance(days=1)  # day D+15
    report = sweep_reserved(uow)
    assert (report.residents, report.points) == (1, 1000)
    assert (report.skipped_residents, report.skipped_points) == (1, 1000)
    held = {h.municipality: h.balance for h in points_of(uow, who).holdings}
    assert held == {OGUNI: 4400, TENRI: 1000}
    assert points_of(uow, who).reserved == 0
    assert receivables(uow, partner="docomo", municipality=TENRI) == [
        Receivable("docomo", TENRI, 1000)
    ]
    transfers = database.count("ledger_transfers")
    again_report = sweep_reserved(uow)
    assert (again_report.residents, again_report.points) == (0, 0)
    assert database.count("ledger_transfers") == transfers
    assert ledger.check(uow).ok
