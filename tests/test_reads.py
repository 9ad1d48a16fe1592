"""Reads that take no write lock (issue #14): `uow.read` on both engines.

A use case that only reads runs in a read-only transaction: on SQLite a deferred `BEGIN` (WAL
gives it a snapshot, so it does not queue behind a writer) with `PRAGMA query_only` on for
that transaction; on PostgreSQL `BEGIN READ ONLY`. A write inside a read fails loudly, and
the connection is writable again for the next unit of work that takes it from the pool.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.exc import DBAPIError, OperationalError

from mykey import ledger
from mykey.db import UnitOfWork, is_retryable, is_unavailable, make_engine
from mykey.ledger.models import LedgerRow
from tests.builders import grant, town, wallet
from tests.conftest import LOG, Database

BUSY_TIMEOUT = 0.3  # seconds a writer waits here for the lock before giving up


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[Path, UnitOfWork]]:
    path = tmp_path / "reads.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}", busy_timeout=BUSY_TIMEOUT)
    yield path, UnitOfWork(engine, log=LOG)
    engine.dispose()


def test_a_read_completes_while_another_connection_holds_the_write_lock(
    sqlite_db: tuple[Path, UnitOfWork],
) -> None:
    path, uow = sqlite_db
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 1000)
    holder = sqlite3.connect(path, isolation_level=None, timeout=5)
    holder.execute("BEGIN IMMEDIATE")  # another process's writer, in the middle of its work
    holder.execute("INSERT INTO ledger_ledgers (code, name, created_at) VALUES ('x', 'x', '')")
    try:
        # the reads answer at once, from the last committed state
        assert ledger.balance(uow, w.id).available == 1000
        assert [lot.remaining for lot in ledger.wallet_lots(uow, w.id)] == [1000]
        assert uow.read(lambda: uow.connection.execute(text(COUNT_LEDGERS)).scalar()) == 1
        # a write still queues behind the writer, and gives up after the busy timeout
        with pytest.raises(OperationalError) as caught:
            grant(uow, t, w, 5)
        assert is_unavailable(caught.value)
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert uow.read(lambda: uow.connection.execute(text(COUNT_LEDGERS)).scalar()) == 2
    grant(uow, t, w, 5)
    assert ledger.balance(uow, w.id).available == 1005


COUNT_LEDGERS = "SELECT count(*) FROM ledger_ledgers"


def _write_in_read(uow: UnitOfWork) -> DBAPIError:
    before = uow.read(lambda: uow.connection.execute(text(COUNT_LEDGERS)).scalar())
    row = {"code": "999999", "name": "x", "created_at": uow.now()}
    with pytest.raises(DBAPIError) as caught:
        uow.read(lambda: uow.connection.execute(insert(LedgerRow).values(**row)))
    assert uow.read(lambda: uow.connection.execute(text(COUNT_LEDGERS)).scalar()) == before
    return caught.value


def test_a_write_inside_a_read_fails_and_the_connection_is_writable_again(
    database: Database,
) -> None:
    uow = database.uow()
    t = town(uow)
    error = _write_in_read(uow)
    # a defect, not an outage (the web answers 500, not 503) and nothing to try again
    assert not is_unavailable(error)
    assert not is_retryable(error)
    if database.kind == "postgres":
        assert getattr(error.orig, "sqlstate", None) == "25006"  # read_only_sql_transaction
    else:
        assert "readonly database" in str(error.orig)

    # a write use case called inside a read joins it, and fails there too
    with pytest.raises(DBAPIError):
        uow.read(lambda: ledger.open_ledger(uow, code="999998", name="y"))
    # so does an ORM object left unflushed in the session: the read's end flushes it
    row = LedgerRow(code="999997", name="z", created_at=uow.now())
    with pytest.raises(DBAPIError):
        uow.read(lambda: uow.session.add(row))
    assert ledger.accounts_of(uow, owner="MY123456", kind="wallet") == []

    # the connection went back to the pool writable: the next unit of work writes on it
    grant(uow, t, wallet(uow, t), 10)
    assert len(ledger.accounts_of(uow, owner="MY123456", kind="wallet")) == 1


def test_a_read_inside_a_write_joins_the_write(database: Database) -> None:
    uow = database.uow()
    t = town(uow)

    def body() -> int:
        w = wallet(uow, t)
        grant(uow, t, w, 40)
        assert not uow.reading
        return ledger.balance(uow, w.id).available  # a read use case, inside the write

    assert uow.run(body) == 40
    assert uow.read(lambda: uow.reading)
    assert not uow.run(lambda: uow.reading)
    # what the database itself says
    ask = "SHOW transaction_read_only" if database.kind == "postgres" else "PRAGMA query_only"
    said = {"postgres": ("on", "off"), "sqlite": (1, 0)}[database.kind]
    assert uow.read(lambda: uow.connection.exec_driver_sql(ask).scalar()) == said[0]
    assert uow.run(lambda: uow.connection.exec_driver_sql(ask).scalar()) == said[1]


def test_a_read_sees_one_snapshot(database: Database) -> None:
    """What another connection commits during a read is not seen by the rest of that read
    (SQLite's WAL snapshot; REPEATABLE READ on PostgreSQL), so a read of several statements (a
    statement of account, the ledger check) adds up."""
    uow, other = database.uow(), database.uow()
    town(uow)

    def body() -> tuple[int, int]:
        first = uow.connection.execute(text(COUNT_LEDGERS)).scalar_one()
        ledger.open_ledger(other, code="999999", name="committed meanwhile")
        return first, uow.connection.execute(text(COUNT_LEDGERS)).scalar_one()

    assert uow.read(body) == (1, 1)
    assert uow.read(lambda: uow.connection.execute(text(COUNT_LEDGERS)).scalar_one()) == 2
    if database.kind == "postgres":
        level = "SHOW transaction_isolation"
        assert uow.read(lambda: uow.connection.exec_driver_sql(level).scalar()) == (
            "repeatable read"
        )
        # a write has the server's default again, on the same pooled connection
        assert uow.run(lambda: uow.connection.exec_driver_sql(level).scalar()) == ("read committed")


def _statements(uow: UnitOfWork) -> list[str]:
    seen: list[str] = []

    @event.listens_for(uow.engine, "before_cursor_execute")
    def _seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement.strip().upper())

    return seen


def test_a_read_begins_without_the_write_lock_and_a_write_with_it(
    sqlite_db: tuple[Path, UnitOfWork],
) -> None:
    _, uow = sqlite_db
    t = town(uow)
    seen = _statements(uow)
    ledger.balance(uow, t.budget.id)
    assert "BEGIN IMMEDIATE" not in seen
    assert seen.count("BEGIN") == 1
    assert "PRAGMA QUERY_ONLY=ON" in seen
    raw = uow.engine.raw_connection()  # the pooled connection the read used, back in the pool
    try:
        assert raw.cursor().execute("PRAGMA query_only").fetchone() == (0,)
    finally:
        raw.close()
    seen.clear()
    grant(uow, t, wallet(uow, t), 10)
    assert "BEGIN IMMEDIATE" in seen
    assert "BEGIN" not in seen
    assert "PRAGMA QUERY_ONLY=OFF" not in seen  # reset when it went back, not on the next use


def test_a_read_retries_on_a_connection_that_died(database: Database) -> None:
    """A database restart between two requests: the read is run again on a new connection,
    as a write is (the outage handling of `UnitOfWork.run` holds for reads)."""
    if database.kind != "postgres":
        pytest.skip("a SQLite connection does not die with a server")
    engine = make_engine(database.url, pool_size=2)
    uow = UnitOfWork(engine, log=LOG)
    try:
        t = town(uow)
        pid = uow.read(lambda: uow.connection.execute(text("SELECT pg_backend_pid()")).scalar())
        with database.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.commit()
        assert ledger.balance(uow, t.budget.id).available == 0
    finally:
        engine.dispose()
