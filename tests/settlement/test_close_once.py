"""A month is closed once, even when two operators close it at the same moment (issue #13,
item 2): the second close finds the first's statements when its insert collides, books nothing
and answers without an error (PostgreSQL; SQLite writers never overlap)."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection

from mykey import ledger
from mykey.settlement import statements
from tests import builders
from tests.conftest import Database


def test_two_closes_at_once_settle_the_month_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database.kind == "sqlite":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): two closes cannot overlap")
    uow = database.uow()
    town = builders.town(uow, code="434248", name="小国町ポイント")
    wallet = builders.wallet(uow, town)
    builders.grant(uow, town, wallet, 5000)
    builders.spend(uow, town, wallet, 1200)
    database.clock.now = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)

    # Both closes have checked that the ledger is not closed yet before either writes its
    # statements: the window in which two operators' clicks meet.
    both_checked = threading.Barrier(2, timeout=10)
    real_insert = statements.insert_many

    def insert_many(conn: Connection, table: Any, rows: Any) -> None:
        if table.name == "settlement_statements" and not both_checked.broken:
            # (a second attempt of the close that lost has no one to wait for)
            with contextlib.suppress(threading.BrokenBarrierError):
                both_checked.wait()
        real_insert(conn, table, rows)

    monkeypatch.setattr(statements, "insert_many", insert_many)

    def close(operator: str) -> statements.CloseReport:
        return statements.close_month(database.uow(), month="2026-10", actor=operator)

    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(close, ["operator:one", "operator:two"]))

    assert sorted(r.transfers for r in reports) == [0, 1]  # one settlement transfer, once
    settled = [
        t
        for t in ledger.history(database.uow(), town.shop.id).entries
        if t.kind == statements.SETTLE_KIND
    ]
    assert [t.amount for t in settled] == [1200]
    assert database.count("settlement_statements") == 1
    report = ledger.check(database.uow())
    assert report.ok, report.problems
