"""The sweep of reserved points counts Tokyo calendar days (R3.3), on both engines: points
converted on Tokyo day D may be assigned through day D+14 and are swept at the first run on or
after D+15; a conversion at 23:59:59 and one at 00:00:00 a second later are a day apart. The
daily job, `sweep_reserved(as_of=…)` and the deadline My Page and the API show agree."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mykey import ledger
from mykey.config import Settings
from mykey.db import TOKYO, UnitOfWork
from mykey.demo import MUNICIPALITIES
from mykey.errors import MyKeyError
from mykey.identity.proofs import VerifiedCard
from mykey.identity.residents import create_mykey_id
from mykey.municipalities.registry import upsert
from mykey.points.balances import points_of
from mykey.points.conversion import convert
from mykey.points.expiry import DailyJobs
from mykey.points.partners import add_agreement, set_partner
from mykey.points.program_setup import set_up_program
from mykey.points.reserved import reserved_of, set_default_municipality, sweep_reserved
from mykey.web.app import create_app
from tests.conftest import Database

TENRI = "292044"
WHO = "MY000001"
PASSWORD = "long enough"
DAY = date(2026, 10, 15)  # day D of the first conversion (Tokyo)


def tokyo(day: date, hh: int, mm: int, ss: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=TOKYO).astimezone(UTC)


def set_up(database: Database, first_day: date) -> UnitOfWork:
    """Tenri's program, a partner, and a resident whose default municipality is Tenri."""
    database.clock.now = tokyo(first_day, 9, 0, 0)
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=TENRI,
        point_name="天理市ポイント",
        terms="",
        validity={},
        usable_at=["shop"],
    )
    set_partner(uow, partner="jal", name="JAL", methods=["id_linkage"])
    add_agreement(
        uow,
        partner="jal",
        effective_from=first_day,
        rate_units=1000,
        rate_points=1000,
        minimum=1000,
        step=1000,
        daily_limit=None,
        actor="operator:test",
    )
    card = VerifiedCard(hashlib.sha256(WHO.encode()).hexdigest(), datetime(2030, 1, 1, tzinfo=UTC))
    create_mykey_id(uow, card=card, password=PASSWORD, mykey_id=WHO)
    set_default_municipality(uow, mykey_id=WHO, municipality=TENRI)
    return uow


def convert_reserved(database: Database, at: datetime, units: int, key: str) -> None:
    """A conversion into reserved points at this moment."""
    database.clock.now = at
    convert(
        database.uow(),
        partner="jal",
        mykey_id=WHO,
        units=units,
        municipality=None,
        method="id_linkage",
        actor="partner:jal",
        key=key,
    )


def two_conversions(database: Database, day: date) -> UnitOfWork:
    """1,000 points converted at 23:59:59 on `day`, 2,000 a second later (00:00:00, day + 1)."""
    uow = set_up(database, day)
    convert_reserved(database, tokyo(day, 23, 59, 59), 1000, "late")
    convert_reserved(database, tokyo(day + timedelta(days=1), 0, 0, 0), 2000, "early")
    return uow


def held(uow: UnitOfWork) -> tuple[int, int]:
    """(points in Tenri, reserved points)."""
    view = points_of(uow, WHO)
    return sum(h.balance for h in view.holdings if h.municipality == TENRI), view.reserved


def test_the_deadline_is_the_14th_tokyo_day_after_the_conversion(database: Database) -> None:
    uow = two_conversions(database, DAY)
    lots = reserved_of(uow, WHO).lots
    assert [(lot.remaining, lot.assign_by) for lot in lots] == [
        (1000, date(2026, 10, 29)),  # converted at 23:59:59 on 10-15: D+14
        (2000, date(2026, 10, 30)),  # converted at 00:00:00 on 10-16
    ]
    assert [lot.sweep_after for lot in lots] == [
        tokyo(date(2026, 10, 30), 0, 0, 0),
        tokyo(date(2026, 10, 31), 0, 0, 0),
    ]


def test_the_daily_run_sweeps_at_the_tokyo_midnights(database: Database) -> None:
    """The run just before midnight of D+14 takes nothing; the one at 00:00:00 of D+15 takes
    the 23:59:59 conversion but not the one a second later, whose turn is a day later."""
    uow = two_conversions(database, DAY)
    database.clock.now = tokyo(date(2026, 10, 29), 23, 59, 59)  # D+14, last second
    assert sweep_reserved(uow).residents == 0
    assert held(uow) == (0, 3000)

    database.clock.now = tokyo(date(2026, 10, 30), 0, 0, 0)  # D+15, first second
    swept = sweep_reserved(uow)
    assert (swept.residents, swept.points) == (1, 1000)
    assert held(uow) == (1000, 2000)

    database.clock.now = tokyo(date(2026, 10, 30), 23, 59, 59)
    assert sweep_reserved(uow).points == 0
    database.clock.now = tokyo(date(2026, 10, 31), 0, 0, 0)
    assert sweep_reserved(uow).points == 2000
    assert held(uow) == (3000, 0)
    assert ledger.check(uow).ok


def test_as_of_runs_the_sweep_of_that_day_and_never_of_a_day_to_come(database: Database) -> None:
    uow = two_conversions(database, DAY)
    database.clock.now = tokyo(date(2026, 11, 20), 10, 0, 0)  # later: catching up
    assert sweep_reserved(uow, as_of=date(2026, 10, 29)).points == 0
    assert sweep_reserved(uow, as_of=date(2026, 10, 30)).points == 1000
    assert held(uow) == (1000, 2000)
    transfers = database.count("ledger_transfers")
    with pytest.raises(MyKeyError) as refused:
        sweep_reserved(uow, as_of=date(2026, 11, 21))
    assert refused.value.code == "as_of_in_future"
    assert database.count("ledger_transfers") == transfers
    assert sweep_reserved(uow, as_of=date(2026, 10, 31)).points == 2000


def test_the_daily_jobs_sweep_by_the_tokyo_day(database: Database) -> None:
    uow = two_conversions(database, DAY)
    database.clock.now = tokyo(date(2026, 10, 29), 23, 59, 59)
    jobs = DailyJobs(database.uow, database.clock)
    jobs.run_once()
    assert jobs.last_sweep is not None and jobs.last_sweep.points == 0
    database.clock.now = tokyo(date(2026, 10, 30), 0, 0, 0)
    jobs.run_once()
    assert jobs.last_sweep.points == 1000
    assert held(uow) == (1000, 2000)


@pytest.fixture
def my_page(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.chdir(tmp_path)
    settings = Settings(database_url=database.url, environment="test")
    app = create_app(settings, clock=database.clock)
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


def test_my_page_and_the_api_show_the_same_deadline(
    database: Database, my_page: TestClient
) -> None:
    two_conversions(database, DAY)
    database.clock.now = tokyo(date(2026, 10, 20), 12, 0, 0)
    form = my_page.get("/mypage/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    signed_in = my_page.post(
        "/mypage/login?lang=en",
        data={"csrf_token": csrf.group(1), "mykey_id": WHO, "password": PASSWORD},
    )
    assert signed_in.status_code == 200
    rows = re.findall(
        r"<tr><td>([^<]+)</td><td data-numeric>([^<]+)</td><td>([^<]+)</td>", signed_in.text
    )
    assert rows == [
        ("2026-10-15 23:59", "1,000", "2026-10-29"),
        ("2026-10-16 00:00", "2,000", "2026-10-30"),
    ]
    assert "go to your default municipality (天理市ポイント" in signed_in.text

    token = my_page.post("/api/v1/sessions", json={"mykey_id": WHO, "password": PASSWORD})
    api = my_page.get(
        "/api/v1/me/reserved", headers={"Authorization": f"Bearer {token.json()['token']}"}
    ).json()
    assert [(lot["assign_by"], lot["sweep_after"]) for lot in api["lots"]] == [
        ("2026-10-29", "2026-10-29T15:00:00Z"),
        ("2026-10-30", "2026-10-30T15:00:00Z"),
    ]
