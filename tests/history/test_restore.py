"""Every kind of tampering the audit can name is restored from a witness's copy (R8.3).

A log (`mykey serve`, SQLite or PostgreSQL) and a witness (`mykey witness serve`) run as
processes on loopback; the witness copies and cosigns the log. Then an attacker with database
access changes, deletes, swaps, reorders, inserts rows, rewrites leaf bytes and stores values
of the wrong type, in the leaves and in the records they commit to. Each time: the audit (with
the witness's copy) names the entry, the restore puts everything back in one transaction, the
audit is clean again, and the append-only triggers are in force again.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from mykey import ledger
from mykey.db import UnitOfWork, make_engine
from mykey.history import audit
from mykey.history import log as hlog
from mykey.history.audit import APPEND_ONLY, Finding, missing_triggers
from mykey.history.log import HistoryLog
from mykey.history.restore import WitnessCopy, compare, fetch_copy, restore
from mykey.identity import usage
from mykey.ledger import check
from mykey.migrations import upgrade
from tests.builders import grant, spend, town, wallet
from tests.conftest import PG_URL
from tests.history.test_witnesses import (
    LOG_KEY,
    MYKEY,
    WITNESSES,
    _start,
    _stop,
    free_port,
    get,
    wait_for,
)

LOG = HistoryLog(LOG_KEY)
pytestmark = pytest.mark.tampers_ledger


@dataclass
class Site:
    """A log with one witness that has cosigned all of it, and what is in it."""

    kind: str  # sqlite · postgres
    db_url: str
    log_url: str
    witness_url: str
    env: dict[str, str]
    work: Path
    engine: Engine
    entries: list[tuple[str, str]]  # index → (kind, record id)
    copy: WitnessCopy | None = None
    stats: dict[str, int] = field(default_factory=dict)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, log=LOG)

    def index(self, kind: str, record_id: str) -> int:
        return self.entries.index((kind, record_id))

    def transfer(self, i: int) -> str:
        kind, rid = self.entries[i]
        assert kind == "transfer"
        return rid

    def uid(self, record_id: str) -> str:
        """A transfer id as the database stores it."""
        return uuid.UUID(record_id).hex if self.kind == "sqlite" else record_id

    def witness_copy(self) -> WitnessCopy:
        if self.copy is None:
            self.copy = fetch_copy(self.uow(), LOG, self.witness_url)
        return self.copy

    def findings(self) -> list[Finding]:
        """What `mykey audit verify --witness` reports."""
        found = audit.verify(self.uow(), LOG).findings
        return found + compare(self.uow(), LOG, self.witness_copy())

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MYKEY), *args],
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def attack(self, *statements: tuple[str, dict[str, Any]]) -> None:
        """What an attacker with database access does: switch off the append-only triggers
        and the foreign keys, change rows."""
        if self.kind == "sqlite":
            path = make_url(self.db_url).database
            assert path is not None
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                conn.execute("PRAGMA foreign_keys=OFF")
                conn.execute("BEGIN")
                for table in APPEND_ONLY:
                    for action in ("update", "delete"):
                        conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
                for sql, params in statements:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
            finally:
                conn.close()
            return
        import psycopg

        url = make_url(self.db_url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(url) as pg:
            pg.execute("SET session_replication_role = replica")  # no triggers, no FKs
            for sql, params in statements:
                pg.execute(re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql), params)


def _named(found: list[Finding], problem: str, index: int | None, record_id: str | None) -> bool:
    return any(
        f.problem == problem
        and (index is None or f.index == index)
        and (record_id is None or f.record_id == record_id)
        for f in found
    )


def _clean_after_restore(site: Site) -> list[tuple[str, int | None, str | None]]:
    report = restore(site.uow(), LOG, site.witness_copy())
    assert report.not_restored == [], report.not_restored
    after = site.findings()
    assert after == [], after
    with site.engine.connect() as conn:
        for table in APPEND_ONLY:
            assert missing_triggers(conn, table) == [], table
    assert check(site.uow()).ok
    return report.restored


def _create_database(kind: str, tmp_path: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}", None
    import psycopg

    admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(False)
    name = f"mykey_restore_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        if os.environ.get("MYKEY_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    return make_url(PG_URL).set(database=name).render_as_string(False), name


def _drop_database(name: str | None) -> None:
    if name is None:
        return
    import psycopg

    admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fill(engine: Engine) -> None:
    uow = UnitOfWork(engine, log=LOG)
    t = town(uow)
    w = wallet(uow, t)
    receipts = [grant(uow, t, w, 100 + i) for i in range(8)]
    paid = spend(uow, t, w, 5)
    ledger.reverse(uow, transfer_id=paid.transfer_id, actor="staff:test", key="rev", reason="x")
    for i in range(3):
        with uow:
            usage.record(uow, mykey_id="MY123456", action="lookup", actor=f"terminal:T{i}")
            uow.commit()
    spend(uow, t, w, 7)
    assert len(receipts) == 8
    hlog.make_checkpoint(uow, LOG_KEY)


@pytest.fixture(params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    db_url, pg_name = _create_database(request.param, tmp_path)
    engine = make_engine(db_url)
    upgrade(engine)
    _fill(engine)
    found = hlog.entries(UnitOfWork(engine), start=0, end=1000)
    env = {
        **os.environ,
        "MYKEY_LOG_SIGNING_KEY": LOG_KEY.key_string(),
        "MYKEY_LOG_WITNESSES": WITNESSES[0].verifier().vkey(),
        "MYKEY_LOG_CHECKPOINT_SECONDS": "0",
        "MYKEY_DAILY_EXPIRY": "0",
        "MYKEY_DATABASE_URL": db_url,
    }
    port, wport = free_port(), free_port()
    log_url, w_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{wport}"
    processes = [_start(["serve", "--port", str(port)], env, tmp_path, tmp_path / "log.out")]
    processes.append(
        _start(
            ["witness", "serve", "--log", log_url, "--log-key", LOG_KEY.verifier().vkey(),
             "--key", WITNESSES[0].key_string(), "--db", f"sqlite:///{tmp_path / 'w.db'}",
             "--port", str(wport), "--interval", "0.3"],
            env, tmp_path, tmp_path / "w.out",
        )
    )  # fmt: skip
    try:
        wait_for(
            lambda: json.loads(get(w_url + "/status"))["size"] == len(found),
            "the witness to cosign the whole log",
            seconds=120,
        )
        _stop(processes[:1])  # the witness's copy is all a restore needs from here on
        yield Site(
            request.param,
            db_url,
            log_url,
            w_url,
            env,
            tmp_path,
            engine,
            [(e.kind, e.record_id) for e in found],
        )
    finally:
        _stop(processes)
        engine.dispose()
        _drop_database(pg_name)


# ---------------------------------------------------------------------------------------------
# the kinds of tampering: each returns (what the attacker runs, what the audit must name)

Names = list[tuple[str, int | None, str | None]]
Tamper = Callable[[Site], tuple[list[tuple[str, dict[str, Any]]], Names]]


def record_changed(s: Site) -> tuple[list[tuple[str, dict[str, Any]]], Names]:
    rid = s.transfer(1)
    sql = "UPDATE ledger_transfers SET amount = 9999 WHERE id = :id"
    return [(sql, {"id": s.uid(rid)})], [("altered", 1, rid)]


def record_deleted(s: Site) -> tuple[list[tuple[str, dict[str, Any]]], Names]:
    rid = s.transfer(2)  # a grant: its lot refers to it
    usage_index = s.index("mykey_usage", "2")
    return [
        ("DELETE FROM ledger_transfers WHERE id = :id", {"id": s.uid(rid)}),
        ("DELETE FROM mykey_usage WHERE id = 2", {}),
    ], [("removed", 2, rid), ("removed", usage_index, "2")]


def _column(s: Site, column: str, rid: str) -> Any:
    with s.engine.connect() as conn:
        return conn.execute(
            text(f"SELECT {column} FROM ledger_transfers WHERE id = :id"), {"id": s.uid(rid)}
        ).scalar_one()


def records_swapped(s: Site) -> tuple[list[tuple[str, dict[str, Any]]], Names]:
    a, b = s.transfer(3), s.transfer(4)
    amount_a, amount_b = _column(s, "amount", a), _column(s, "amount", b)
    swap = "UPDATE ledger_transfers SET amount = :amount, actor = :actor WHERE id = :id"
    u1, u3 = s.index("mykey_usage", "1"), s.index("mykey_usage", "3")
    return [
        (swap, {"amount": amount_b, "actor": "staff:mallory", "id": s.uid(a)}),
        (swap, {"amount": amount_a, "actor": "staff:test", "id": s.uid(b)}),
        ("UPDATE mykey_usage SET actor = 'terminal:T2' WHERE id = 1", {}),
        ("UPDATE mykey_usage SET actor = 'terminal:T0' WHERE id = 3", {}),
    ], [("altered", 3, a), ("altered", 4, b), ("altered", u1, "1"), ("altered", u3, "3")]


def records_reordered(s: Site) -> tuple[list[tuple[str, dict[str, Any]]], Names]:
    """Three transfers' rows take each other's place (primary key): only the witness's copy
    of the rows shows it, the commitments do not cover the key."""
    ids = [s.transfer(i) for i in (5, 6, 7)]
    seqs = [_column(s, "seq", rid) for rid in ids]
    move = "UPDATE ledger_transfers SET seq = :seq WHERE id = :id"
    statements = [(move, {"seq": -1 - n, "id": s.uid(rid)}) for n, rid in enumerate(ids)]
    statements += [
        (move, {"seq": seqs[(n + 1) % 3], "id": s.uid(rid)}) for n, rid in enumerate(ids)
    ]
    return statements, [("altered", i, rid) for i, rid in zip((5, 6, 7), ids, strict=True)]


def record_inserted(s: Site) -> tuple[list[tuple[str, dict[str, Any]]], Names]:
    new = str(uuid.uuid4())
    sql = (
        "INSERT INTO ledger_transfers (seq, id, ledger, kind, phase, debit_account_id,"
        " credit_account_id, amount, actor, metadata, created_at) SELECT (SELECT max(seq)"
        " FROM ledger_transfers) + 10, :new, ledger, kind, phase, debit_account_id,"
        " credit_account_id, 50000, actor, metadata, created_at FROM ledger_transfers"
        " WHERE id = :id"
    )
    return [(sql, {"new": s.uid(new), "id": s.uid(s.transfer(0))})], [("added", None, new)]


def record_wrongly_typed(s: Site) -> tuple[list[tuple[str, dict[str, Any]]], Names]:
    rid = s.transfer(8)
    u1 = s.index("mykey_usage", "1")
    if s.kind == "sqlite":
        statements = [
            (
                "UPDATE ledger_transfers SET amount = 'lots', created_at = 1234567 WHERE id = :id",
                {"id": s.uid(rid)},
            ),
            ("UPDATE mykey_usage SET at = x'00ff', purpose = CAST(x'ff' AS TEXT) WHERE id = 1", {}),
        ]
    else:  # a time the driver cannot load
        statements = [
            ("UPDATE ledger_transfers SET created_at = 'infinity' WHERE id = :id", {"id": rid}),
            ("UPDATE mykey_usage SET at = '-infinity' WHERE id = 1", {}),
        ]
    return statements, [("altered", 8, rid), ("altered", u1, "1")]


def leaf_changed(s: Site) -> tuple[list[tuple[str, dict[str, Any]]], Names]:
    sql = "UPDATE history_leaves SET leaf = :leaf WHERE idx = 3"
    forged = bytes(60)
    return [(sql, {"leaf": forged})], [("leaf_altered", 3, s.transfer(3)), ("altered", 3, None)]


def leaf_deleted(s: Site) -> tuple[list[tuple[str, dict[str, Any]]], Names]:
    return [("DELETE FROM history_leaves WHERE idx = 4", {})], [
        ("leaf_removed", 4, s.transfer(4)),
        ("added", None, s.transfer(4)),
    ]


def leaves_swapped(s: Site) -> tuple[list[tuple[str, dict[str, Any]]], Names]:
    statements = [
        ("UPDATE history_leaves SET idx = -1 WHERE idx = 5", {}),
        ("UPDATE history_leaves SET idx = 5 WHERE idx = 6", {}),
        ("UPDATE history_leaves SET idx = 6 WHERE idx = -1", {}),
    ]
    return statements, [("leaf_altered", 5, s.transfer(5)), ("leaf_altered", 6, s.transfer(6))]


def leaves_reordered(s: Site) -> tuple[list[tuple[str, dict[str, Any]]], Names]:
    statements = [
        ("UPDATE history_leaves SET idx = -idx - 1 WHERE idx IN (0, 1, 2)", {}),
        ("UPDATE history_leaves SET idx = 1 WHERE idx = -1", {}),
        ("UPDATE history_leaves SET idx = 2 WHERE idx = -2", {}),
        ("UPDATE history_leaves SET idx = 0 WHERE idx = -3", {}),
    ]
    return statements, [("leaf_altered", i, s.transfer(i)) for i in (0, 1, 2)]


def leaf_inserted(s: Site) -> tuple[list[tuple[str, dict[str, Any]]], Names]:
    """A forged leaf (and its record) slipped in at index 7: everything after moves up."""
    forged = str(uuid.uuid4())
    last = len(s.entries) - 1
    statements = [
        ("UPDATE history_leaves SET idx = idx + 1000 WHERE idx >= 7", {}),
        ("UPDATE history_leaves SET idx = idx - 999 WHERE idx >= 1000", {}),
        (
            "INSERT INTO history_leaves (idx, kind, record_id, leaf, queued_at) SELECT 7,"
            " 'transfer', :forged, leaf, queued_at FROM history_leaves WHERE idx = 8",
            {},
        ),
    ]
    params = {"forged": forged}
    names: Names = [("leaf_altered", i, s.entries[i][1]) for i in range(7, last + 1)]
    names.append(("removed", 7, forged))
    return [(sql, {**p, **params}) for sql, p in statements], names


def leaf_wrongly_typed(s: Site) -> tuple[list[tuple[str, dict[str, Any]]], Names]:
    if s.kind == "sqlite":  # the reported crash: a BLOB column given TEXT that is not UTF-8
        statements = [
            ("UPDATE history_leaves SET leaf = CAST(leaf AS TEXT) WHERE idx = 1", {}),
            ("UPDATE history_leaves SET record_id = CAST(record_id AS BLOB) WHERE idx = 2", {}),
            ("UPDATE history_leaves SET idx = 'nine' WHERE idx = 9", {}),
        ]
    else:
        statements = [
            ("UPDATE history_leaves SET leaf = convert_to('not a leaf', 'UTF8') WHERE idx = 1", {}),
            ("UPDATE history_leaves SET record_id = '' WHERE idx = 2", {}),
            ("UPDATE history_leaves SET idx = 9000000000000000000 WHERE idx = 9", {}),
        ]
    return statements, [
        ("leaf_altered", 1, s.transfer(1)),
        ("leaf_altered", 2, s.transfer(2)),
        ("leaf_removed", 9, s.entries[9][1]),
    ]


def tree_tampered(s: Site) -> tuple[list[tuple[str, dict[str, Any]]], Names]:
    statements = [
        ("UPDATE history_nodes SET hash = :h WHERE level = 1 AND idx = 0", {"h": bytes(32)}),
        ("INSERT INTO history_nodes (level, idx, hash) VALUES (0, 500, :h)", {"h": bytes(32)}),
        ("DELETE FROM history_nodes WHERE level = 2 AND idx = 1", {}),
    ]
    return statements, [("node", 0, None), ("node", None, None), ("node", 4, None)]


KINDS: list[Tamper] = [
    record_changed,
    record_deleted,
    records_swapped,
    records_reordered,
    record_inserted,
    record_wrongly_typed,
    leaf_changed,
    leaf_deleted,
    leaves_swapped,
    leaves_reordered,
    leaf_inserted,
    leaf_wrongly_typed,
    tree_tampered,
]


def test_each_kind_of_tampering_is_named_and_restored(site: Site) -> None:
    assert site.findings() == []
    for tamper in KINDS:
        statements, names = tamper(site)
        site.attack(*statements)
        found = site.findings()
        for problem, index, rid in names:
            assert _named(found, problem, index, rid), (tamper.__name__, problem, index, found)
        restored = _clean_after_restore(site)
        assert restored, tamper.__name__
    # After all that, the append-only triggers refuse changes again (outside a restore).
    with pytest.raises(Exception, match="append-only"), site.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_transfers SET amount = 1"))
    with pytest.raises(Exception, match="append-only"), site.engine.begin() as conn:
        conn.execute(text("DELETE FROM history_nodes"))


def test_several_kinds_at_once_are_named_and_restored_by_the_cli(site: Site) -> None:
    """The report of issue #13: five tamperings at once, two leaves swapped among them; the
    audit crashed on a leaf stored as text and the restore stopped at a UNIQUE violation."""
    everything: list[tuple[str, dict[str, Any]]] = []
    expected: Names = []
    for tamper in (
        record_changed,
        record_deleted,
        records_swapped,
        record_inserted,
        record_wrongly_typed,
        leaf_changed,
        leaves_swapped,
        leaf_wrongly_typed,
    ):
        statements, names = tamper(site)
        everything += statements
        expected += names
    site.attack(*everything)
    found = site.cli("audit", "verify", "--witness", site.witness_url)
    assert found.returncode == 1, found.stdout + found.stderr
    assert "Traceback" not in found.stderr
    for problem, index, rid in expected:
        where = f"index {index} " if index is not None else ""
        pattern = rf"{problem} {where}\S+ {re.escape(rid)}:" if rid else rf"{problem} {where}"
        assert re.search(pattern, found.stdout), (pattern, found.stdout)
    assert site.cli("ledger", "check").returncode != 0

    restored = site.cli("audit", "restore", "--from", site.witness_url)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "in one transaction" in restored.stdout
    for i in (1, 2, 3, 5, 6, 9):
        assert f"restored leaf index {i} " in restored.stdout, restored.stdout
    for i in (1, 2, 3, 4, 8):
        assert f"restored record index {i} {site.transfer(i)}" in restored.stdout
    clean = site.cli("audit", "verify", "--witness", site.witness_url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "OK" in clean.stdout
    checked = site.cli("ledger", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with site.engine.connect() as conn:
        trail = conn.execute(text("SELECT target, count(*) FROM history_restores GROUP BY target"))
        counts = {str(r[0]): int(r[1]) for r in trail}
    assert counts["record"] >= 7 and counts["leaf"] >= 6
    again = site.cli("audit", "restore", "--from", site.witness_url)
    assert again.returncode == 0 and "Nothing to restore" in again.stdout


# ---------------------------------------------------------------------------------------------
# fuzzing: every column of the audited tables given values of other types

SQLITE_VALUES = ["NULL", "7", "2.5", "'lots'", "x'ff00'", "CAST(x'ff' AS TEXT)"]
PG_VALUES = {
    "int": ["-1", "4611686018427387904"],
    "str": ["''", "'lots'"],
    "uuid": ["'00000000-0000-0000-0000-000000000000'"],
    "time": ["'infinity'", "'-infinity'", "'10000-01-01 00:00:00+00'"],
    "bytes": ["''::bytea", "'\\xff00'::bytea"],
}


def _targets(s: Site) -> list[tuple[Any, str, dict[str, Any], tuple[Any, ...]]]:
    """One row of each audited table, and what must name a change to it."""
    from mykey.history.log import CHECKPOINTS, LEAVES, NODES
    from mykey.history.witnessing import TRANSFERS, USAGE

    return [
        (TRANSFERS, "id = :k", {"k": s.uid(s.transfer(3))}, ("entry", 3, s.transfer(3))),
        (USAGE, "id = 2", {}, ("entry", s.index("mykey_usage", "2"), "2")),
        (LEAVES, "idx = 5", {}, ("entry", 5, s.transfer(5))),
        (NODES, "level = 1 AND idx = 1", {}, ("node",)),
        (CHECKPOINTS, f"size = {len(s.entries)}", {}, ("checkpoint",)),
    ]


def _names(found: list[Finding], what: tuple[Any, ...]) -> bool:
    if what[0] == "entry":
        return any(f.index == what[1] or f.record_id == what[2] for f in found)
    return any(f.problem == what[0] for f in found)


def _unchanged(s: Site, table: str, column: str, value: str, where: str, params: Any) -> bool:
    with s.engine.connect() as conn:
        same = conn.execute(
            text(f"SELECT 1 FROM {table} WHERE {where} AND {column} IS NOT DISTINCT FROM {value}")
            if s.kind == "postgres"
            else text(f"SELECT 1 FROM {table} WHERE {where} AND {column} IS {value}"),
            params,
        ).first()
    return same is not None


@pytest.mark.slow
def test_the_audit_names_and_the_restore_repairs_any_stored_value(site: Site) -> None:
    import psycopg

    from mykey.history.rows import kind_of

    tried = named = 0
    for table, where, params, what in _targets(site):
        for column in table.c:
            cases: list[tuple[list[str], str, list[str]]] = []  # (before, value, after) SQL
            if site.kind == "sqlite":
                cases = [([], value, []) for value in SQLITE_VALUES]
            else:
                cases = [([], value, []) for value in PG_VALUES[kind_of(column)]]
                if not column.primary_key:
                    ddl = f"ALTER TABLE {table.name} ALTER COLUMN {column.name}"
                    nullable = [f"{ddl} DROP NOT NULL"] if not column.nullable else []
                    back = [f"{ddl} SET NOT NULL"] if not column.nullable else []
                    cases.append((nullable, "NULL", back))
            for before, value, after in cases:
                if _unchanged(site, table.name, column.name, value, where, params):
                    continue
                update = f"UPDATE {table.name} SET {column.name} = {value} WHERE {where}"
                try:
                    site.attack(*[(sql, {}) for sql in before], (update, params))
                except (sqlite3.Error, psycopg.Error):
                    continue  # a constraint the attacker cannot pass without changing schema
                tried += 1
                found = site.findings()  # never raises, whatever is stored
                surrogate = table.name == "history_leaves" and column.name == "id"
                if not surrogate:
                    assert _names(found, what), (table.name, column.name, value, found)
                    named += 1
                report = restore(site.uow(), LOG, site.witness_copy())
                assert report.not_restored == [], (table.name, column.name, value)
                for sql in after:
                    site.attack((sql, {}))
                assert site.findings() == [], (table.name, column.name, value)
    assert tried >= 90 and named >= tried - 6, (tried, named)
    if site.kind == "postgres":
        # A column's type changed under the log: the rows are named, the restore writes the
        # witness's values back, and once the type is changed back the history is clean.
        for table, column, value, back in (
            ("ledger_transfers", "debit_balance", "'lots'", "bigint"),
            ("mykey_usage", "at", "'yesterday'", "timestamp with time zone"),
        ):
            ddl = f"ALTER TABLE {table} ALTER COLUMN {column}"
            site.attack((f"{ddl} TYPE text", {}), (f"UPDATE {table} SET {column} = {value}", {}))
            found = site.findings()
            assert any("the column's type was changed" in f.detail for f in found), found
            report = restore(site.uow(), LOG, site.witness_copy())
            assert report.not_restored == []
            site.attack((f"{ddl} TYPE {back} USING {column}::{back}", {}))
            assert site.findings() == [], (table, column)
