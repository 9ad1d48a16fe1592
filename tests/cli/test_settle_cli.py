"""`mykey settle close|check|show` as an operator runs them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mykey import ledger
from mykey.db import UnitOfWork, make_engine
from mykey.ledger import AccountKind
from mykey.migrations import upgrade
from tests.cli.test_cli import db, run  # noqa: F401 -- db is a fixture

OCTOBER = datetime(2026, 10, 20, 3, 0, tzinfo=UTC)


def _shop_takes(path: Path, amount: int, moment: datetime) -> None:
    """Points move from a town's budget to a shop, booked at `moment` (a ledger transfer)."""
    uow = UnitOfWork(make_engine(f"sqlite:///{path}"), clock=lambda: moment)
    ledger.open_ledger(uow, code="131164", name="豊島区ポイント")
    budget = ledger.open_account(uow, ledger="131164", kind=AccountKind.BUDGET, owner="131164")
    shop = ledger.open_account(uow, ledger="131164", kind=AccountKind.SHOP, owner="shop-a")
    ledger.transfer(uow, debit=budget.id, credit=shop.id, amount=amount, kind="spend", actor="t")


def test_close_check_show(db: Path) -> None:  # noqa: F811 -- the fixture
    upgrade(make_engine(f"sqlite:///{db}"))
    _shop_takes(db, 1200, OCTOBER)
    early = run(db, "settle", "close", "--month", "2026-10", "--now", "2026-10-31T23:59+09:00")
    assert early.returncode == 1 and "month_not_ended" in early.stderr
    closed = run(db, "settle", "close", "--month", "2026-10", "--now", "2026-11-01T00:00+09:00")
    assert closed.returncode == 0, closed.stderr
    assert "Closed 2026-10: 1 statements in 1 ledgers, 1 settlement transfers" in closed.stdout
    again = run(db, "settle", "close", "--month", "2026-10", "--now", "2026-11-02T00:00+09:00")
    assert again.returncode == 0 and "already closed: nothing changed" in again.stdout
    checked = run(db, "settle", "check", "--month", "2026-10")
    assert checked.returncode == 0, checked.stderr
    assert "1 statements in 1 ledgers match" in checked.stdout
    shown = run(db, "settle", "show", "--month", "2026-10")
    assert "shop:shop-a" in shown.stdout and "1,200" in shown.stdout
    # a transfer booked into the closed month afterwards is named by the check
    _shop_takes(db, 5, OCTOBER)
    tampered = run(db, "settle", "check", "--month", "2026-10")
    assert tampered.returncode == 1
    assert "shop:shop-a" in tampered.stderr and "1205" in tampered.stderr
    assert "1200" in tampered.stderr
    assert run(db, "settle", "check", "--month", "2026-11").returncode == 1  # not closed
    assert run(db, "settle", "close", "--month", "October").returncode == 1
    assert run(db, "settle", "close", "--month", "2026-10", "--now", "soon").returncode == 2
