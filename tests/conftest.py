"""The `database` fixture: every test that takes it runs on SQLite and on PostgreSQL.

PostgreSQL comes from MYKEY_TEST_DATABASE_URL (default: postgres on 127.0.0.1:5432). A fresh
database is created for the session and dropped after it. Without a server the PostgreSQL
cases skip with the reason shown, unless MYKEY_REQUIRE_POSTGRES=1 (CI), when they fail.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from mykey import caching as caches
from mykey.db import UnitOfWork, make_engine
from mykey.history.checkpoints import Signer
from mykey.history.log import HistoryLog
from mykey.ledger import check
from mykey.migrations import upgrade

PG_URL = os.environ.get(
    "MYKEY_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("MYKEY_REQUIRE_POSTGRES") == "1"
SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = Path(os.environ.get("MYKEY_SHARED_DATA", SHARED / "data"))

# The history log every test's unit of work writes to (a fixed key, for tests only).
LOG_SIGNER = Signer("test.mykey.invalid/history", bytes(range(32)))
LOG = HistoryLog(LOG_SIGNER)

TABLES = (
    "jobs",
    "job_schedules",
    "grant_job_files",
    "municipality_picks",
    "page_sessions",
    "staff_login_failures",
    "staff_accounts",
    "witness_alarms",
    "witness_checkpoints",
    "witness_nodes",
    "witness_entries",
    "witness_logs",
    "history_restores",
    "history_key_rotations",
    "history_cosignatures",
    "shop_payout_accounts",
    "municipality_bank_accounts",
    "settlement_statement_days",
    "settlement_statements",
    "settlement_ledger_closes",
    "settlement_months",
    "history_checkpoints",
    "history_nodes",
    "history_leaves",
    "vouchers",
    "gift_programs",
    "coupon_failures",
    "coupons",
    "coupon_batches",
    "online_refunds",
    "online_orders",
    "online_keys",
    "shop_payments",
    "shop_accepts",
    "shops",
    "shopping_streets",
    "grant_job_refusals",
    "grant_jobs",
    "reserved_assignments",
    "resident_point_settings",
    "premium_uses",
    "conversion_daily_uses",
    "conversions",
    "partner_signatures",
    "partner_keys",
    "partner_agreements",
    "partners",
    "correction_claims",
    "correction_legs",
    "correction_cases",
    "ranking_award_prizes",
    "ranking_award_shops",
    "ranking_award_entries",
    "ranking_awards",
    "accrual_closings",
    "accrual_choices",
    "accruals",
    "grant_limit_uses",
    "program_budget_uses",
    "grant_rules",
    "point_programs",
    "mykey_usage",
    "service_ids",
    "provider_links",
    "api_keys",
    "providers",
    "zones",
    "login_failures",
    "resident_sessions",
    "card_replacements",
    "resident_cards",
    "residents",
    "card_challenge_uses",
    "card_challenges",
    "card_proof_attempts",
    "card_revocations",
    "ledger_lot_uses",
    "ledger_lots",
    "ledger_rejections",
    "ledger_transfers",
    "ledger_account_stripes",
    "ledger_accounts",
    "ledger_ledgers",
    "municipalities",
)


# Below this many rows (live and dead, as PostgreSQL's statistics last counted them) a test's
# tables are emptied by DELETE, with every trigger off for the transaction (the append-only
# ones and the foreign keys'), in one round trip: ~20 ms. TRUNCATE makes a new file for each of
# the 81 tables and their indexes (~200 ms a test, about a minute of the suite) and is kept for
# the tests that wrote many rows (it also drops what the DELETEs left dead).
DELETE_BELOW = 20_000


def _empty_postgres(conn: Connection) -> None:
    written = conn.execute(
        text("SELECT coalesce(sum(n_live_tup + n_dead_tup), 0) FROM pg_stat_user_tables")
    ).scalar_one()
    if written >= DELETE_BELOW:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        return
    sequences = [
        str(r[0])
        for r in conn.execute(text("SELECT oid::regclass FROM pg_class WHERE relkind = 'S'"))
    ]
    conn.exec_driver_sql(
        "SET LOCAL session_replication_role = replica; "
        + "".join(f"DELETE FROM {t}; " for t in TABLES)
        + "".join(f"SELECT setval('{q}', 1, false); " for q in sequences)
    )


class Clock:
    """A clock the test moves by hand (aware UTC)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 10, 15, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Database:
    kind: str
    url: str
    engine: Engine
    template: Path | None = None
    clock: Clock = field(default_factory=Clock)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, clock=self.clock, log=LOG)

    def reset(self) -> None:
        """Empty every table (PostgreSQL) or start from a fresh migrated file (SQLite)."""
        self.clock = Clock()
        caches.clear_all()  # what the process kept of the old rows (API keys, shops)
        if self.kind == "postgres":
            with self.engine.begin() as conn:
                _empty_postgres(conn)
            return
        assert self.template is not None
        self.engine.dispose()
        path = Path(make_url(self.url).database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.template, path)
        self.engine = make_engine(self.url)

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection folds the WAL into the file
    assert not Path(f"{path}-wal").exists()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    import psycopg

    url = make_url(PG_URL)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"mykey_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL not reachable at {url.render_as_string()}: {exc}".strip()
        if REQUIRE_PG:
            pytest.fail(f"MYKEY_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    test_url = url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(test_url)
    upgrade(engine)
    engine.dispose()
    yield test_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url, pool_size=12)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        db = Database("postgres", url, request.getfixturevalue("postgres_engine"))
        db.reset()
        yield db
        _ledger_still_checks(request, db)
        return
    template: Path = request.getfixturevalue("sqlite_template")
    path = tmp_path / "mykey.db"
    shutil.copyfile(template, path)
    url = f"sqlite:///{path}"
    db = Database("sqlite", url, make_engine(url), template=template)
    yield db
    _ledger_still_checks(request, db)
    db.engine.dispose()


def _ledger_still_checks(request: pytest.FixtureRequest, db: Database) -> None:
    """After every test on a database, `mykey ledger check` passes (unless the test tampers
    with the rows on purpose to see the check fail)."""
    if request.node.get_closest_marker("tampers_ledger") is not None:
        return
    report = check(db.uow())
    assert report.ok, f"ledger check failed after the test: {report.problems}"


@pytest.fixture
def uow(database: Database) -> UnitOfWork:
    return database.uow()
