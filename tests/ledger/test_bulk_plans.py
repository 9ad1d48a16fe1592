"""A bulk credit into a fresh, never-analysed PostgreSQL database stays linear (issue #15).

Seen in `make bench-history`: a connection that had made a few single transfers while the
accounts table was nearly empty kept a cached plan for the foreign-key check of
`(credit_account_id, ledger) → ledger_accounts (id, ledger)` that walked the ledger's accounts
through `uq_ledger_accounts_ledger_kind_owner`; a bulk credit on that connection, opening
thousands of wallets, then read every account of the ledger for each transfer (2,000-row
chunks went from 1.6 s to 33 s). Opening many accounts now analyses the table in the
transaction (`ledger.batch.ANALYZE_AFTER`), which makes the backend plan again.

Counted, not timed: the index tuples that index gave out during the credit, from
`pg_stat_user_indexes` after the backends have exited (they report their counts then).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from sqlalchemy.engine import make_url

from mykey import ledger
from mykey.db import UnitOfWork, make_engine
from mykey.ledger import AccountKind
from mykey.ledger.batch import ANALYZE_AFTER
from mykey.migrations import upgrade
from tests.builders import bulk_grant
from tests.conftest import Database

pytestmark = pytest.mark.parametrize("database", ["postgres"], indirect=True)

WALLETS = 5 * ANALYZE_AFTER
READS = (
    "SELECT idx_tup_read FROM pg_stat_user_indexes"
    " WHERE indexrelname = 'uq_ledger_accounts_ledger_kind_owner'"
)


@pytest.fixture
def fresh(database: Database) -> Iterator[str]:
    """A new database, migrated, never analysed (its URL); dropped afterwards."""
    url = make_url(database.url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    name = f"mykey_fresh_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_bulk_credit_after_single_transfers_reads_each_account_once(fresh: str) -> None:
    engine = make_engine(fresh)
    upgrade(engine)
    uow = UnitOfWork(engine)
    ledger.open_ledger(uow, code="242012", name="津市ポイント")
    budget = ledger.open_account(uow, ledger="242012", kind=AccountKind.BUDGET, owner="242012")
    shop = ledger.open_account(uow, ledger="242012", kind=AccountKind.SHOP, owner="shop")
    for _ in range(20):  # the connection plans its foreign-key checks on a tiny table
        ledger.transfer(uow, debit=budget.id, credit=shop.id, amount=1, kind="grant", actor="a")
    report = bulk_grant(
        uow, budget.id, [(f"R{i:08d}", 1) for i in range(WALLETS)], expires=date(2030, 3, 31)
    )
    assert report.accounts_opened == WALLETS
    assert ledger.check(uow).ok
    engine.dispose()  # the backends exit and report what they read
    admin = make_url(fresh).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin) as conn:
        row = conn.execute(READS).fetchone()
    assert row is not None
    # each wallet is looked up by owner a few times (opening, its id), never the ledger walked
    # per transfer (that would be WALLETS² / 2, 12,500,000 here)
    assert row[0] <= 10 * WALLETS, row[0]
