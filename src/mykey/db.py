"""Engines, the unit of work, and the column types every domain shares.

- `make_engine(url)`: SQLite in WAL mode with a busy timeout and `BEGIN IMMEDIATE` for writes
  (one writer at a time, no lost updates), or PostgreSQL through psycopg 3.
- `UnitOfWork`: a connection (with an ORM session on it, made on first use), a clock and the
  history log. `with uow:` opens a transaction;
  `uow.commit()` commits it; leaving the block without commit rolls back. Blocks nest: only
  the outermost one really commits, so a use case can call another use case (or the ledger's
  verbs) and all of it commits or none of it does.
- `uow.run(fn)`: runs a whole use case in one transaction and re-runs it on a serialisation
  failure, a deadlock, a busy SQLite or a lost idempotency race (`RetryTransaction`), and once
  on a connection that turned out to be dead before the commit was sent (a database restart:
  the pool is then invalidated, so the second try takes a new connection).
- `uow.read(fn)`: the same for a use case that only reads, in a read-only transaction that
  takes no write lock: SQLite says `BEGIN` (deferred; WAL gives it a snapshot, so it never
  waits for a writer) with `PRAGMA query_only` on for that transaction, PostgreSQL says
  `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`: on both, every statement of the read sees
  the same snapshot. A write inside it fails loudly on both ("attempt to write a readonly
  database", SQLSTATE 25006), also from a use case it calls: a nested `uow.run` joins the read
  transaction. A read inside a write joins the write.
- `uow.run(fn, statement_begin=True)` (PostgreSQL; elsewhere a plain `run`): psycopg sends no
  BEGIN of its own; `fn` opens the transaction in its first round trip and may commit it in its
  last (`send_together`, psycopg's pipeline mode: several statements, one wait for the
  server), so that a use case of two statements costs two round trips, not four. A statement
  sent any other way before the BEGIN is refused (it would run outside the transaction).
- `is_unavailable(exc)`: the database cannot serve now (down, restarting, out of connections,
  locked past the busy timeout); the web answers such errors with 503 and Retry-After.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from psycopg.pq import TransactionStatus
from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    MetaData,
    RootTransaction,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.types import TypeDecorator

TOKYO = ZoneInfo("Asia/Tokyo")
_IDLE = TransactionStatus.IDLE

T = TypeVar("T")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def tokyo_date(moment: datetime) -> date:
    """The calendar day in Japan at `moment` (expiry, months and fiscal years are Tokyo days)."""
    return moment.astimezone(TOKYO).date()


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every engine (SQLite keeps no zone, so we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def is_sqlite(url_or_engine: str | Engine) -> bool:
    url = url_or_engine if isinstance(url_or_engine, str) else str(url_or_engine.url)
    return url.startswith("sqlite")


READONLY_OPTION = "mykey_readonly"  # execution option of a read-only transaction (`uow.read`)
STANDBY_OPTION = "mykey_standby"  # an engine on a hot standby (a read replica)
QUERY_ONLY = "mykey_query_only"  # in a pooled SQLite connection's info: PRAGMA query_only is on

BUSY_TIMEOUT = 60.0  # seconds SQLite waits for another writer before "database is locked"
CONNECT_TIMEOUT = 10  # seconds to reach PostgreSQL before a request gives up (503)


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    pool_timeout: float = 30.0,
    prepared_statements: bool = True,
    busy_timeout: float = BUSY_TIMEOUT,
) -> Engine:
    """An engine for `url`, configured for the ledger's concurrency rules.

    The pool keeps `pool_size` connections open; `max_overflow` more (default: as many again)
    are opened when all are in use and closed when given back, so a serving process sizes it to
    its threads with a small overflow (`Settings.engine_options`, docs/deploy.md). A checkout
    that waits longer than `pool_timeout` raises, and the web answers 503. Without
    `prepared_statements`, psycopg prepares nothing on the server (PgBouncer in transaction
    mode).

    Pooled connections are not pinged before use (`pool_pre_ping` would cost a round trip per
    transaction); a connection found dead invalidates the whole pool and `UnitOfWork.run` tries
    again on a new one (docs/operators.md, "Database outages")."""
    overflow = pool_size if max_overflow is None else max_overflow
    if is_sqlite(url):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": busy_timeout, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=overflow,
            pool_timeout=pool_timeout,
        )
        engine.update_execution_options(mykey_busy_timeout=busy_timeout)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control away from the driver so that we can say BEGIN IMMEDIATE.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            # A bulk grant writes a few hundred thousand index entries in one transaction:
            # a 64 MB page cache keeps them in memory until the commit.
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A read (`uow.read`) begins deferred: in WAL mode it reads a snapshot and waits for
            # no writer. `query_only` makes a write inside it fail instead of taking the lock.
            readonly = conn.get_execution_options().get(READONLY_OPTION, False)
            info = conn.info  # the pooled DBAPI connection's own dict: lives as long as it does
            if bool(info.get(QUERY_ONLY, False)) != readonly:
                conn.exec_driver_sql(f"PRAGMA query_only={'ON' if readonly else 'OFF'}")
                info[QUERY_ONLY] = readonly
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        @event.listens_for(engine, "checkin")
        def _sqlite_checkin(dbapi_connection: Any, record: Any) -> None:
            # Back in the pool a connection is writable again, whoever takes it next.
            if record.info.pop(QUERY_ONLY, False) and dbapi_connection is not None:
                dbapi_connection.execute("PRAGMA query_only=OFF")

        return engine
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in make_url(url).query:
        # A server that does not answer (a host down, packets dropped) would otherwise hold
        # every request for the operating system's TCP timeout, about two minutes.
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    if not prepared_statements:
        connect_args["prepare_threshold"] = None
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=overflow,
        pool_timeout=pool_timeout,
        connect_args=connect_args,
    )


def read_only(connection: Connection) -> Connection:
    """Make the transactions of `connection` read-only; call it before one begins.

    SQLite's begin event then says `BEGIN` with `PRAGMA query_only` on, and psycopg says
    `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY` (no extra round trip: one snapshot for the
    whole read, as SQLite's WAL gives). All of it is undone when the connection goes back to
    the pool.

    On a hot standby (an engine with the `mykey_standby` option: a read replica) every
    transaction is read-only already, and a connection back in the pool cannot be reset to
    READ WRITE there: only the isolation level is set."""
    options: dict[str, Any] = {READONLY_OPTION: True}
    if connection.dialect.name == "postgresql":
        options.update(isolation_level="REPEATABLE READ")
        if not connection.engine.get_execution_options().get(STANDBY_OPTION):
            options.update(postgresql_readonly=True)
    return connection.execution_options(**options)


class HistoryLog(Protocol):
    """Where committed transfers and card lookups leave their leaf (R8; built in `history`).

    The ledger calls `append` inside the transaction that makes the change, so no transfer
    commits without its leaf.
    """

    def append(self, connection: Connection, kind: str, payload: Mapping[str, Any]) -> None: ...

    def append_many(
        self, connection: Connection, records: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> None:
        """`append` of each (kind, payload), in order, in one statement (a bulk grant's chunk)."""
        ...

    def ready(self, connection: Connection) -> None:
        """Read now what the first leaf written to this database would read (the log's
        identity), so that the leaves after can be sent without waiting (psycopg's pipeline
        mode)."""
        ...

    def leaf_row(
        self, connection: Connection, kind: str, payload: Mapping[str, Any]
    ) -> tuple[str, str, bytes, datetime] | None:
        """The row `append` would insert (kind, record id, leaf, queued at), for a write that
        inserts it in its own statement; None: this log keeps nothing."""
        ...


class NullLog:
    """A log that keeps nothing: the default until the history domain plugs its log in."""

    def append(self, connection: Connection, kind: str, payload: Mapping[str, Any]) -> None:
        return None

    def append_many(
        self, connection: Connection, records: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> None:
        return None

    def ready(self, connection: Connection) -> None:
        return None

    def leaf_row(
        self, connection: Connection, kind: str, payload: Mapping[str, Any]
    ) -> tuple[str, str, bytes, datetime] | None:
        return None


class RetryTransaction(Exception):  # noqa: N818 -- a signal, not an error a user sees
    """Raised inside a use case when the transaction lost a race and must be run again."""


RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


SQLITE_LOCKED = ("database is locked", "database table is locked")
# SQLite errors that say the database file cannot be used now, not that a statement is wrong.
SQLITE_UNAVAILABLE = (*SQLITE_LOCKED, "unable to open database file", "disk i/o error")
# PostgreSQL's classes of "not now": connection exception, insufficient resources (too many
# connections, disk full), operator intervention (shutdown, restart, cannot connect now, a
# statement cancelled by its timeout).
PG_UNAVAILABLE_CLASSES = ("08", "53", "57")


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, RetryTransaction):
        return True
    if getattr(exc, "sqlstate", None) in RETRYABLE_SQLSTATES:  # from the driver itself
        return True
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate in RETRYABLE_SQLSTATES:
            return True
        return is_locked(exc)
    return False


def is_locked(exc: BaseException) -> bool:
    """SQLite's "database is locked": another writer held the file for the busy timeout."""
    return isinstance(exc, DBAPIError) and any(t in str(exc.orig).lower() for t in SQLITE_LOCKED)


def is_disconnect(exc: BaseException) -> bool:
    """A pooled connection turned out to be dead (the server restarted or the network cut it).
    SQLAlchemy has then invalidated the whole pool: the next checkout connects anew."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot serve now: it is down or restarting, unreachable, out of
    connections, or (SQLite) locked by another writer past the busy timeout. Not a defect of
    the request or of the code: the caller should try again later (503 with Retry-After)."""
    if isinstance(exc, SQLAlchemyTimeoutError):  # no pooled connection came free in time
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if not isinstance(exc, OperationalError):
        return False
    if is_sqlite_error(orig):
        return any(t in str(orig).lower() for t in SQLITE_UNAVAILABLE)
    sqlstate = getattr(orig, "sqlstate", None)
    # No SQLSTATE: the server never answered (refused, closed, timed out while connecting).
    return sqlstate is None or str(sqlstate)[:2] in PG_UNAVAILABLE_CLASSES


def unavailable_summary(exc: BaseException) -> str:
    """The driver's first line of a database error (no SQL, no parameters): what a log line
    says about an outage instead of a traceback."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0]
    return f"{type(orig).__name__}: {first}"[:300]


def is_sqlite_error(orig: BaseException | None) -> bool:
    return orig is not None and type(orig).__module__.startswith("sqlite3")


class UnitOfWork:
    """One transaction at a time on one connection; re-entrant (see the module docstring).

    The transaction lives on a plain connection (`uow.connection`, for Core statements on the
    hot path); the ORM session (`uow.session`) is made on first use and joins it.

    A use case that only reads runs with `uow.read(body)`, one that may write with
    `uow.run(body)`; `readonly=True` makes every transaction of this unit of work read-only
    (a copy that must not be changed, a replica).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = utcnow,
        log: HistoryLog | None = None,
        readonly: bool = False,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.log: HistoryLog = log or NullLog()
        self.readonly = readonly
        self._reading = False  # the transaction being opened or open is read-only
        self._connection: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._session: Session | None = None
        self._depth = 0
        self._committed = False
        self._committing = False
        self._statement_begin = False  # the transaction opening or open is begun by `fn`

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("the unit of work is not open: use `with uow:`")
        return self._connection

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(
                bind=self.connection,
                join_transaction_mode="rollback_only",
                expire_on_commit=False,
            )
        return self._session

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @property
    def reading(self) -> bool:
        """The open transaction is read-only (`uow.read`, or a `readonly` unit of work)."""
        return self._depth > 0 and (self._reading or self.readonly)

    @property
    def statement_begin(self) -> bool:
        """The open transaction is begun by the use case's own statements (`send_together`):
        run with `statement_begin=True`, on PostgreSQL, outermost."""
        return self._statement_begin and self._depth == 1 and self.dialect == "postgresql"

    def now(self) -> datetime:
        moment = self.clock()
        if moment.tzinfo is None:
            raise ValueError("the clock must return aware datetimes")
        return moment.astimezone(UTC)

    def __enter__(self) -> UnitOfWork:
        if self._depth == 0:
            connection = self.engine.connect()
            if self._reading or self.readonly:
                read_only(connection)
            elif self._statement_begin and self.dialect == "postgresql":
                # psycopg in autocommit sends no BEGIN of its own (`send_together` does); its
                # commit and rollback still end the transaction the server reports open.
                connection.execution_options(isolation_level="AUTOCOMMIT")
                event.listen(connection, "before_cursor_execute", _inside_transaction)
            try:
                # SQLite's BEGIN IMMEDIATE waits here for another writer and may give up
                self._transaction = connection.begin()
            except BaseException:
                connection.close()  # back to the pool, not left open on this object
                raise
            self._connection = connection
            self._committed = False
            self._committing = False
        self._depth += 1
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        connection, self._connection = self._connection, None
        transaction, self._transaction = self._transaction, None
        session, self._session = self._session, None
        try:
            if session is not None:
                session.close()
            if transaction is not None and transaction.is_active and not self._committed:
                transaction.rollback()
        finally:
            if connection is not None:
                connection.close()

    def commit(self) -> None:
        """Commit, if this is the outermost block; an inner block's commit is its consent."""
        if self._depth == 1:
            if self._session is not None:
                self._session.flush()
            assert self._transaction is not None
            self._committing = True
            self._transaction.commit()
            self._committed = True

    def run(self, fn: Callable[[], T], *, attempts: int = 8, statement_begin: bool = False) -> T:
        """Run `fn` in a transaction that commits when it returns; retry lost races, and once
        a connection that was dead before the commit was sent.

        `statement_begin` (PostgreSQL): `fn` begins the transaction itself with its first
        statements, and may commit it with its last (`send_together`); see the module
        docstring. Elsewhere, or inside an open transaction, it changes nothing."""
        return self._run(fn, attempts=attempts, reading=False, statement_begin=statement_begin)

    def read(self, fn: Callable[[], T], *, attempts: int = 8) -> T:
        """Run `fn`, which only reads, in a read-only transaction that takes no write lock and
        sees one snapshot (SQLite: deferred `BEGIN` with `PRAGMA query_only`; PostgreSQL:
        `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`).

        A write inside it fails (a defect: 500, never a silent write); retries as `run` does.
        Inside an open transaction `fn` just joins it, read-only or not."""
        return self._run(fn, attempts=attempts, reading=True)

    def _run(
        self, fn: Callable[[], T], *, attempts: int, reading: bool, statement_begin: bool = False
    ) -> T:
        if self._depth > 0:
            return fn()
        reconnected = False
        for attempt in range(attempts):
            began = time.monotonic()
            self._reading = reading
            self._statement_begin = statement_begin
            try:
                with self:
                    result = fn()
                    self.commit()  # a read commits too: its session's flush must find nothing
                    return result
            except Exception as exc:
                if attempt == attempts - 1:
                    raise
                if is_disconnect(exc):
                    # Before COMMIT was sent the server has rolled the transaction back, so
                    # running it again on a new connection is safe; during the commit nobody
                    # knows whether it happened: the caller retries with its idempotency key.
                    # A read has nothing to lose: it is run again even then.
                    if reconnected or (self._committing and not reading):
                        raise
                    reconnected = True
                    continue
                if not is_retryable(exc):
                    raise
                if is_locked(exc) and time.monotonic() - began >= self._busy_timeout() / 2:
                    raise  # SQLite already waited the busy timeout: another wait won't help
                time.sleep(min(0.002 * 2**attempt, 0.2))
            finally:
                self._reading = False
                self._statement_begin = False
        raise AssertionError("unreachable")  # pragma: no cover

    def _busy_timeout(self) -> float:
        value = self.engine.get_execution_options().get("mykey_busy_timeout", BUSY_TIMEOUT)
        return float(value)


def _inside_transaction(connection: Connection, *_args: object) -> None:
    """A unit of work whose use case begins its transaction itself (`statement_begin`) sends
    nothing before that BEGIN: in autocommit it would run, and commit, on its own."""
    driver = connection.connection.driver_connection
    if driver is not None and driver.info.transaction_status == _IDLE:
        raise RuntimeError("a statement before the use case's BEGIN (statement_begin)")


def driver_sql(statement: ClauseElement) -> tuple[str, dict[str, Any]]:
    """A Core statement for psycopg's own cursor (`send_together`): its SQL, with `%(name)s`
    parameters, and the values SQLAlchemy bound for its literals. The caller's own parameters
    are the statement's `bindparam`s, named `p_…`, given at each call."""
    compiled = statement.compile(dialect=_psycopg_dialect())
    literals = {k: v for k, v in compiled.params.items() if not k.startswith("p_")}
    return str(compiled), literals


def _psycopg_dialect() -> Dialect:
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    return PGDialect_psycopg()  # type: ignore[no-untyped-call]


def send_together(
    uow: UnitOfWork,
    statements: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    begin: bool = False,
    commit: bool = False,
) -> list[list[tuple[Any, ...]]]:
    """PostgreSQL: send `statements` (driver SQL, `%(name)s` parameters) in one round trip,
    psycopg's pipeline mode, with `BEGIN` before them and `COMMIT` after them if asked; the
    rows of each (none for a statement that returns none). In a unit of work run with
    `statement_begin=True`.

    A statement that fails aborts the transaction (the COMMIT sent with it does nothing) and
    its error is raised. Once a COMMIT is sent a lost connection is not retried by the unit of
    work (whether it committed is unknown): the caller retries with its idempotency key."""
    driver = uow.connection.connection.driver_connection
    assert driver is not None
    assert uow.dialect == "postgresql"
    if commit:
        uow._committing = True  # the unit of work's own module
    with driver.pipeline():
        if begin:
            driver.execute("BEGIN")
        cursors = [driver.execute(sql, params) for sql, params in statements]
        if commit:
            driver.execute("COMMIT")
    rows = [cursor.fetchall() if cursor.description else [] for cursor in cursors]
    if commit:
        uow._committed = True
    return rows


def make_uow_factory(
    engine: Engine, *, clock: Clock = utcnow, log: HistoryLog | None = None
) -> Callable[[], UnitOfWork]:
    def factory() -> UnitOfWork:
        return UnitOfWork(engine, clock=clock, log=log)

    return factory


def execute_plain_many(
    conn: Connection, stmt: ClauseElement, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run a statement whose parameters need no conversion (integers, text) for many rows
    with the driver's `executemany` (see `insert_many`)."""
    if not rows:
        return
    compiled = stmt.compile(dialect=conn.dialect)
    if getattr(compiled, "positional", False):
        order = list(getattr(compiled, "positiontup", None) or ())
        conn.exec_driver_sql(str(compiled), [tuple(row[n] for n in order) for row in rows])
    else:
        conn.exec_driver_sql(str(compiled), [dict(row) for row in rows])


def insert_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many rows with one compiled statement and the driver's `executemany`.

    For bulk work (tens of thousands of rows): SQLAlchemy's per-row parameter handling costs
    more than the database here. The column types' own bind processors still convert each
    value, so the rows are stored exactly as the ORM would store them. Every row has the keys
    of the first."""
    if not rows:
        return
    dialect = conn.dialect
    if dialect.name == "postgresql":
        conn.exec_driver_sql(*insert_arrays(conn, table, rows))
        return
    names = list(rows[0])
    compiled = (
        insert(table).values({name: bindparam(name) for name in names}).compile(dialect=dialect)
    )
    processors = {
        name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    }
    positional = bool(getattr(compiled, "positional", False))
    order = list(getattr(compiled, "positiontup", None) or ()) if positional else names
    converters = [_converter(processors[name]) for name in order]
    values = [
        tuple(convert(row[name]) for name, convert in zip(order, converters, strict=True))
        for row in rows
    ]
    if positional:
        conn.exec_driver_sql(str(compiled), values)
    else:
        conn.exec_driver_sql(str(compiled), [dict(zip(order, v, strict=True)) for v in values])


def insert_arrays(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> tuple[str, dict[str, list[Any]]]:
    """PostgreSQL: `insert_many`'s statement and parameters, for psycopg's own cursor (a bulk
    credit sends them in pipeline mode). One statement over arrays, not one per row:
    PostgreSQL plans and runs it once. The arrays go in psycopg's binary format (`%(…)b`):
    quoting them as text in Python cost more client CPU than all the rest of a bulk grant
    (issue #15)."""
    dialect = conn.dialect
    names = list(rows[0])
    processors = {
        name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    }
    columns = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    arrays = ", ".join(
        f"%(c{i})b::{table.c[name].type.compile(dialect=dialect)}[]" for i, name in enumerate(names)
    )
    params: dict[str, list[Any]] = {}
    for i, name in enumerate(names):
        convert = _converter(processors[name])
        params[f"c{i}"] = [convert(row[name]) for row in rows]
    table_name = dialect.identifier_preparer.format_table(table)
    # names from our own table metadata, quoted; the values are bound parameters
    sql = f"INSERT INTO {table_name} ({columns}) SELECT * FROM unnest({arrays})"  # noqa: S608
    return sql, params


def _converter(process: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """A column's bind processor that converts a value repeated from the row before (the
    batch's time, its ledger) only once."""
    if process is None:
        return lambda value: value
    last: list[Any] = [object(), None]

    def convert(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]

    return convert


def select_by_keys(
    conn: Connection,
    key: ColumnElement[Any],
    keys: Sequence[Any],
    columns: Sequence[ColumnElement[Any]],
    *where: ColumnElement[bool],
) -> list[Any]:
    """`columns` of the rows whose `key` is one of `keys` (a chunk of a bulk job: thousands).

    On PostgreSQL the keys are joined as an array (`unnest`), so that each is an index lookup
    even while the table's statistics still say it is empty (a fresh table filled in the same
    transaction would otherwise be scanned once per chunk). SQLite looks up an IN list by its
    index anyway."""
    if not keys:
        return []
    if conn.dialect.name == "postgresql":
        array = bindparam("p_keys", value=list(keys), type_=postgresql.ARRAY(key.type))
        wanted = func.unnest(array).table_valued("k").render_derived()
        stmt = select(*columns).select_from(wanted).join_from(wanted, key.table, key == wanted.c.k)
        return list(conn.execute(stmt.where(*where)).all())
    return list(conn.execute(select(*columns).where(key.in_(keys), *where)).all())
