"""`mykey audit verify`: recompute the history from the database's records and compare.

1. Every leaf is recomputed from its record (a `ledger_transfers` row, a `mykey_usage` row)
   and compared with the stored leaf: a difference is an *altered* record (or leaf), a leaf
   whose record is gone a *removed* record.
2. Every record must have a leaf: a record without one was *added* behind the log's back.
3. The tree is recomputed from the recomputed leaves; every stored subtree hash is compared,
   and the root of each checkpoint size is compared with the last signed checkpoint, whose
   signature is checked too.
4. The append-only tables still have their triggers.
Findings name the entry exactly: its index, its kind and its record id.

Rows are read as stored (`history.rows`): a value of the wrong type is named, never fatal,
and a part of the audit that cannot be read at all is reported as `unreadable`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from sqlalchemy import Connection, Table, text
from sqlalchemy.exc import SQLAlchemyError

from mykey.db import UnitOfWork, make_engine
from mykey.history import merkle
from mykey.history.checkpoints import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    open_checkpoint,
    split_note,
)
from mykey.history.encoding import EncodingError
from mykey.history.keys import key_history
from mykey.history.log import CHECKPOINTS, LEAVES, NODES, HistoryLog, tree_size
from mykey.history.rows import Bad, RawRow, integers, not_integers, reader
from mykey.history.witnessing import KINDS

CHUNK = 5_000
# A parallel audit splits the integrated entries into parts of 2^16: whole subtrees, so each
# part checks its entries and the subtree hashes below its own top without the others.
PART_LEVEL = 16
logger = logging.getLogger("mykey.audit")
# The tables the history relies on being append-only (their triggers are checked).
APPEND_ONLY = (
    "ledger_transfers",
    "mykey_usage",
    "history_nodes",
    "history_checkpoints",
    "history_cosignatures",
    "history_restores",
    "history_key_rotations",
)


@dataclass(frozen=True)
class Finding:
    # altered · removed · added · node · checkpoint · trigger · unreadable (audit);
    # leaf_altered · leaf_removed · altered · removed (compared with a witness)
    problem: str
    index: int | None
    kind: str | None
    record_id: str | None
    detail: str


@dataclass
class AuditReport:
    entries: int = 0
    queued: int = 0
    records: int = 0
    checkpoint_size: int | None = None
    findings: list[Finding] = field(default_factory=list)
    # leaves (by kind) whose record was found: when that is every record, none was added
    named: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings


def record_key(kind: str, record_id: str) -> Any | None:
    """The record's key column value for a record id, or None if it cannot be one."""
    try:
        return KINDS[kind][3](record_id)
    except (KeyError, ValueError, TypeError):
        return None


def record_id_of(kind: str, row: RawRow) -> str | None:
    """The record id a record's row stands for (None: its key is unreadable)."""
    value = row.get(KINDS[kind][1])
    if value is None or isinstance(value, Bad):
        return None
    return str(value)


def primary_key(table: Table) -> str:
    return next(iter(table.primary_key.columns)).name


def _records(conn: Connection, kind: str, ids: list[str]) -> dict[str, RawRow]:
    """The rows of these records, as stored, by record id."""
    if kind not in KINDS:
        return {}
    table, key, _, _ = KINDS[kind]
    keys = [k for k in (record_key(kind, i) for i in ids) if k is not None]
    out: dict[str, RawRow] = {}
    for row in reader(conn, table).by_keys(key, keys):
        rid = record_id_of(kind, row)
        if rid is not None:
            out[rid] = row
    return out


def record_leaf(log: HistoryLog, kind: str, row: RawRow) -> tuple[bytes | None, str]:
    """The leaf a record's row encodes to, or None and why it cannot be encoded."""
    if row.bad:
        return None, "; ".join(f"{row.table}.{b}" for b in row.bad)
    try:
        return log.leaf_for(kind, KINDS[kind][2](row))[1], ""
    except (EncodingError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
        return None, f"the record cannot be encoded: {exc}"


def _expected_leaf(log: HistoryLog, row: RawRow | None, kind: str) -> bytes | None:
    """The leaf a record encodes to; b"" when it cannot be encoded, None when it is gone."""
    if row is None:
        return None
    leaf, _ = record_leaf(log, kind, row)
    return b"" if leaf is None else leaf


def verify(
    uow: UnitOfWork,
    log: HistoryLog,
    *,
    workers: int | None = None,
    part_level: int = PART_LEVEL,
    progress: Callable[[int, int], None] | None = None,
) -> AuditReport:
    """Audit the whole history, in one read-only transaction: one snapshot, no write lock.

    A log of at least two parts (2^`part_level` entries each) is audited by `workers`
    processes (default: one per core), each a part at a time in the same snapshot
    (PostgreSQL: `pg_export_snapshot`; SQLite: the entries and records below the tree's size
    are append-only, so a later snapshot holds the same ones unless they were tampered with
    during the audit). Its findings are the one-process audit's, in the same order; a part that
    finds the entries themselves out of place (an index missing, repeated or not a number)
    hands the whole audit to the one-process audit, which names each such entry.
    `progress(entries, of)` is told as parts finish."""
    count = workers if workers is not None else (os.cpu_count() or 1)
    if uow.in_transaction:
        count = 1  # inside a transaction of its caller: workers would not see its writes

    def body() -> AuditReport:
        conn = uow.connection
        if count > 1:
            try:
                size = tree_size(conn)
            except (SQLAlchemyError, ValueError, TypeError):
                size = 0
            if size >= 2 << part_level and _numbered_from_zero(conn, size):
                report = _in_parts(conn, log, size, count, part_level, progress)
                if report is not None:
                    return report
        return _in_one(conn, log)

    return uow.read(body)


def _numbered_from_zero(conn: Connection, size: int) -> bool:
    """The integrated leaves are as many as the tree's size says, the first numbered 0 (else
    an index was moved, say far beyond the others: the one-process audit names it, and no
    part is made for the empty ranges it would span)."""
    try:
        found = conn.execute(
            text(
                "SELECT count(*), min(idx) FROM history_leaves"  # noqa: S608 -- our SQL
                f" WHERE {integers(conn, 'idx')}"
            )
        ).one()
    except (SQLAlchemyError, ValueError, TypeError):
        return False
    return (found[0], found[1]) == (size, 0)


def _in_one(conn: Connection, log: HistoryLog) -> AuditReport:
    report = AuditReport()
    hashes: tuple[list[bytes], list[bytes]] = ([], [])

    def leaves() -> None:
        nonlocal hashes
        hashes = _check_leaves(conn, log, report)

    _guard(conn, report, "history_leaves", leaves)
    for kind, (table, _, _, _) in KINDS.items():
        _guard(conn, report, table.name, partial(_check_added, conn, kind, table, report))
    from_records, from_leaves = hashes
    _guard(conn, report, "history_nodes", lambda: _compare_tree(conn, from_leaves, report))
    _guard(
        conn,
        report,
        "history_checkpoints",
        lambda: _check_checkpoint(conn, log, _roots_of(from_records, from_leaves), report),
    )
    _guard(conn, report, "triggers", lambda: _check_triggers(conn, report))
    return report


# ---------------------------------------------------------------------------------------------
# a parallel audit


@dataclass(frozen=True)
class _Part:
    """What a worker process audits: entries [lo, lo + 2^level) of the database at `url`."""

    url: str
    snapshot: str | None  # PostgreSQL: the audit's exported snapshot
    origin: str
    salt_key: bytes  # the leaves' salt key (the log's signing key stays in the audit's process)
    lo: int
    level: int
    sizes: tuple[int, ...]  # tree sizes whose roots the checkpoint check needs


Pieces = list[tuple[int, bytes]]  # complete subtrees (their sizes and hashes), left to right


@dataclass
class _PartReport:
    regular: bool  # its entries are exactly lo, lo + 1, … (as many as the tree has there)
    report: AuditReport
    nodes: dict[int, list[Finding]]  # subtree hash findings by level, up to the part's top
    top: tuple[bytes, bytes] | None  # the part's subtree hash: from the leaves, the records
    pieces: dict[int, tuple[Pieces, Pieces]]  # for a size inside the part: [lo, size)


def _in_parts(
    conn: Connection,
    log: HistoryLog,
    size: int,
    workers: int,
    level: int,
    progress: Callable[[int, int], None] | None = None,
) -> AuditReport | None:
    span = 1 << level
    snapshot = None
    if conn.dialect.name == "postgresql":
        snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
    sizes = _checkpoint_sizes(conn, size)
    url = conn.engine.url.render_as_string(hide_password=False)
    jobs = [
        _Part(url, snapshot, log.origin, log.salt_key, lo, level, sizes)
        for lo in range(0, size, span)
    ]
    context = multiprocessing.get_context("spawn")  # a fork would share this connection
    try:
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
            parts: list[_PartReport] = []
            for part in pool.map(_audit_part, jobs):
                parts.append(part)
                if progress is not None:
                    progress(min(size, len(parts) * span), size)
    except (SQLAlchemyError, ValueError, TypeError, UnicodeError):
        return None  # a part the database cannot even read: the one-process audit says which
    except (BrokenProcessPool, OSError) as exc:  # no process could be started, or one died
        logger.warning("the audit's worker processes failed (%s): auditing in one process", exc)
        return None
    if not all(p.regular for p in parts):
        return None
    report = AuditReport()
    for p in parts:
        report.entries += p.report.entries
        report.findings += p.report.findings
        for kind, n in p.report.named.items():
            report.named[kind] = report.named.get(kind, 0) + n

    def queued() -> None:
        _check_leaves(conn, log, report, integrated=False)

    _guard(conn, report, "history_leaves", queued)
    for kind, (table, _, _, _) in KINDS.items():
        _guard(conn, report, table.name, partial(_check_added, conn, kind, table, report))

    def tree() -> None:
        counts = _stored_per_level(conn)
        for lv in range(level + 1):
            for p in parts:
                report.findings += p.nodes.get(lv, [])
            if counts.get(lv, 0) > size >> lv:
                report.findings.append(_extra(lv))
        tops = [p.top[0] for p in parts if p.top is not None]
        _compare_levels(conn, _up(tops), level + 1, report)

    _guard(conn, report, "history_nodes", tree)

    def roots(at: int) -> tuple[bytes, bytes] | None:
        if at > size:
            return None
        if at not in sizes:  # pragma: no cover -- the parts were given every size it reads
            raise LookupError(at)
        whole = [p.top for p in parts[: at >> level] if p.top is not None]
        inner = parts[at >> level].pieces.get(at, ([], [])) if at % span else ([], [])
        return (
            merkle.root_of_pieces([(span, t[0]) for t in whole] + inner[0]),
            merkle.root_of_pieces([(span, t[1]) for t in whole] + inner[1]),
        )

    try:
        _guard(
            conn, report, "history_checkpoints", lambda: _check_checkpoint(conn, log, roots, report)
        )
    except LookupError:  # pragma: no cover
        return None
    _guard(conn, report, "triggers", lambda: _check_triggers(conn, report))
    return report


def _checkpoint_sizes(conn: Connection, size: int) -> tuple[int, ...]:
    """The sizes the checkpoint check may ask a root of: the last checkpoint's stored size and
    the size its note signs."""
    found: set[int] = set()
    try:
        row = latest_checkpoint_row(conn)
    except (SQLAlchemyError, ValueError, TypeError):
        row = None
    if row is not None:
        stored = row.get("size")
        if isinstance(stored, int):
            found.add(stored)
        note = row.get("note")
        if isinstance(note, str):
            with contextlib.suppress(NoteError):
                found.add(Checkpoint.parse(split_note(note)[0]).size)
    return tuple(sorted(n for n in found if 0 < n <= size))


def _stored_per_level(conn: Connection) -> dict[int, int]:
    ints = integers(conn, "level", "idx")
    rows = conn.execute(
        text(f"SELECT level, count(*) FROM history_nodes WHERE {ints} GROUP BY level")  # noqa: S608
    )
    return {int(r[0]): int(r[1]) for r in rows}


def _audit_part(part: _Part) -> _PartReport:
    """One part, in a worker process, on its own connection in the audit's snapshot."""
    engine = make_engine(part.url, pool_size=1)
    # Leaves are recomputed with the salt key alone; a throwaway key stands for the signer.
    log = HistoryLog(Signer.generate(part.origin), part.salt_key)
    uow = UnitOfWork(engine)
    try:
        return uow.read(lambda: _part_in(uow.connection, part, log))
    finally:
        engine.dispose()


def _part_in(conn: Connection, part: _Part, log: HistoryLog) -> _PartReport:
    if part.snapshot is not None:
        conn.execute(text(f"SET TRANSACTION SNAPSHOT '{part.snapshot}'"))
    span = 1 << part.level
    report = AuditReport()
    from_records: list[bytes] = []
    from_leaves: list[bytes] = []
    _check_range(conn, log, report, from_records, from_leaves, part.lo, part.lo + span)
    size = tree_size(conn)
    expected = min(span, size - part.lo)
    regular = len(from_leaves) == expected and not any(
        f.detail == "entry indices are not consecutive" for f in report.findings
    )
    out = _PartReport(regular, report, {}, None, {})
    if not regular:
        return out
    nodes = reader(conn, NODES)
    ints = integers(conn, "level", "idx")
    levels = [(from_leaves, from_records)]
    for lv in range(part.level + 1):
        leaves_at, records_at = levels[lv]
        first = part.lo >> lv
        stored: dict[int, Any] = {}
        if leaves_at:
            for r in nodes.select(
                f"{ints} AND level = :lv AND idx >= :a AND idx < :b",
                {"lv": lv, "a": first, "b": first + len(leaves_at)},
            ):
                stored[int(r.get("idx"))] = r.get("hash")
        found = _node_findings(lv, first, leaves_at, stored)
        if found:
            out.nodes[lv] = found
        if lv < part.level:
            levels.append((_up(leaves_at), _up(records_at)))
    top_leaves, top_records = levels[part.level]
    if top_leaves:
        out.top = (top_leaves[0], top_records[0])
    for at in part.sizes:
        if part.lo < at < part.lo + span:
            out.pieces[at] = (
                _pieces(levels, 0, at - part.lo),
                _pieces(levels, 1, at - part.lo),
            )
    return out


def _pieces(levels: list[tuple[list[bytes], list[bytes]]], which: int, count: int) -> Pieces:
    """The complete subtrees, largest first, covering the part's first `count` entries."""
    out: Pieces = []
    at = 0
    for lv in reversed(range(len(levels))):
        if count - at >= 1 << lv:
            out.append((1 << lv, levels[lv][which][at >> lv]))
            at += 1 << lv
    return out


def _guard(conn: Connection, report: AuditReport, what: str, part: Callable[[], None]) -> None:
    """Run one part of the audit; if the database cannot even be read, say so and go on."""
    try:
        with conn.begin_nested():
            part()
    except (SQLAlchemyError, ValueError, TypeError, UnicodeError) as exc:
        first = str(exc).splitlines()[0][:300]
        report.findings.append(Finding("unreadable", None, None, None, f"{what}: {first}"))


def _count(
    conn: Connection, table: str, where: str = "", params: dict[str, Any] | None = None
) -> int:
    sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")  # noqa: S608
    return int(conn.execute(text(sql), params or {}).scalar_one())


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _check_leaves(
    conn: Connection, log: HistoryLog, report: AuditReport, *, integrated: bool = True
) -> tuple[list[bytes], list[bytes]]:
    """Leaf hashes of the integrated entries in index order: recomputed from the records, and
    as stored. Queued leaves are checked against their records too (only they, if not
    `integrated`: the parts of a parallel audit did the rest)."""
    from_records: list[bytes] = []
    from_leaves: list[bytes] = []
    if integrated:
        _check_range(conn, log, report, from_records, from_leaves)
    leaves = reader(conn, LEAVES)
    after: int | None = None
    while True:
        where = "idx IS NULL" + ("" if after is None else " AND id > :after")
        rows = leaves.select(where, {"after": after}, order_by="id", limit=CHUNK)
        if not rows:
            break
        last = rows[-1].get("id")
        after = last if isinstance(last, int) else None
        _check_rows(conn, log, rows, report, from_records, from_leaves)
        if after is None:  # pragma: no cover -- an integer key always follows
            break
    odd = not_integers(conn, "idx")
    if odd is not None:
        for r in leaves.select(odd, order_by="id"):
            report.findings.append(
                Finding(
                    "node",
                    None,
                    _str_or_none(r.get("kind")),
                    _str_or_none(r.get("record_id")),
                    f"the history_leaves row {r.get('id')} has no usable index: {r.get('idx')}",
                )
            )
    return from_records, from_leaves


def _check_range(
    conn: Connection,
    log: HistoryLog,
    report: AuditReport,
    from_records: list[bytes],
    from_leaves: list[bytes],
    lo: int = 0,
    hi: int | None = None,
) -> None:
    """The integrated entries with lo <= index < hi (all from lo if hi is None), in index
    order, chunk by chunk, each against its record."""
    leaves = reader(conn, LEAVES)
    ints = integers(conn, "idx")
    after: int | None = None if lo == 0 else lo - 1  # from 0: any index, negative too
    while True:
        where = ints + ("" if after is None else " AND idx > :after")
        where += "" if hi is None else " AND idx < :hi"
        rows = leaves.select(where, {"after": after, "hi": hi}, order_by="idx", limit=CHUNK)
        if not rows:
            break
        last = rows[-1].get("idx")
        after = last if isinstance(last, int) else None
        _check_rows(conn, log, rows, report, from_records, from_leaves, offset=lo)
        if after is None:  # pragma: no cover -- an integer key always follows
            break


def _check_rows(
    conn: Connection,
    log: HistoryLog,
    rows: list[RawRow],
    report: AuditReport,
    from_records: list[bytes],
    from_leaves: list[bytes],
    offset: int = 0,
) -> None:
    by_kind: dict[str, list[str]] = {}
    for r in rows:
        kind, rid = _str_or_none(r.get("kind")), _str_or_none(r.get("record_id"))
        if kind is not None and rid is not None:
            by_kind.setdefault(kind, []).append(rid)
    found = {k: _records(conn, k, ids) for k, ids in by_kind.items()}
    for r in rows:
        _check_leaf(log, r, found, report, from_records, from_leaves, offset)


def _check_leaf(
    log: HistoryLog,
    r: RawRow,
    found: dict[str, dict[str, RawRow]],
    report: AuditReport,
    from_records: list[bytes],
    from_leaves: list[bytes],
    offset: int = 0,
) -> None:
    idx = r.get("idx")
    index = idx if isinstance(idx, int) else None
    kind, rid = _str_or_none(r.get("kind")), _str_or_none(r.get("record_id"))
    stored = r.get("leaf")
    leaf = stored if isinstance(stored, bytes) else b""
    expected: bytes | None = None
    if r.bad:
        report.findings.append(
            Finding(
                "altered",
                index,
                kind,
                rid,
                "the stored leaf: " + "; ".join(f"history_leaves.{b}" for b in r.bad),
            )
        )
    if kind is not None and rid is not None:
        row = found.get(kind, {}).get(rid)
        if row is None:
            report.findings.append(
                Finding("removed", index, kind, rid, "the entry's record is gone")
            )
        else:
            report.named[kind] = report.named.get(kind, 0) + 1
            expected, why = record_leaf(log, kind, row)
            if expected is None:
                report.findings.append(Finding("altered", index, kind, rid, why))
            elif expected != leaf and not r.bad:
                report.findings.append(
                    Finding("altered", index, kind, rid, "the record differs from its leaf")
                )
    if index is None:
        report.queued += 1
        return
    report.entries += 1
    if index != offset + len(from_leaves):
        report.findings.append(
            Finding("node", index, kind, rid, "entry indices are not consecutive")
        )
    from_leaves.append(merkle.leaf_hash(leaf))
    from_records.append(merkle.leaf_hash(expected if expected is not None else b""))


def _check_added(conn: Connection, kind: str, table: Table, report: AuditReport) -> None:
    """Records without a leaf (written behind the log's back), by kind."""
    count = _count(conn, table.name)
    report.records += count
    if count == report.named.get(kind, 0):
        return  # distinct leaves name distinct records (a unique index): every one is named
    leaves = reader(conn, LEAVES, ("id", "record_id"))
    logged = {
        r.get("record_id") for page in leaves.pages("id", "kind = :k", {"k": kind}) for r in page
    }
    report.findings.extend(
        Finding("added", None, kind, rid, "a record without a leaf: it bypassed the log")
        for rid in unlogged(conn, kind, table, logged)
    )


def unlogged(conn: Connection, kind: str, table: Table, logged: set[Any]) -> list[str]:
    """The record ids (or, for an unreadable key, a description of the row) of records whose
    id no leaf names."""
    out: list[str] = []
    pk = primary_key(table)
    for page in reader(conn, table, (pk, KINDS[kind][1])).pages(pk):
        for row in page:
            rid = record_id_of(kind, row)
            if rid is None:
                out.append(f"<{table.name} {pk} {row.get(pk)}: {row.get(KINDS[kind][1])}>")
            elif rid not in logged:
                out.append(rid)
    return out


def _compare_tree(conn: Connection, from_leaves: list[bytes], report: AuditReport) -> None:
    """Every stored subtree hash against the tree rebuilt from the stored leaves."""
    _compare_levels(conn, from_leaves, 0, report)


def _compare_levels(conn: Connection, hashes: list[bytes], level: int, report: AuditReport) -> None:
    """The stored subtree hashes from `level` up, against the tree whose hashes at `level`
    are `hashes`."""
    nodes = reader(conn, NODES)
    ints = integers(conn, "level", "idx")
    while hashes:
        stored: dict[int, Any] = {}
        for r in nodes.select(f"{ints} AND level = :lv", {"lv": level}):
            stored[int(r.get("idx"))] = r.get("hash")
        report.findings.extend(_node_findings(level, 0, hashes, stored))
        if len(stored) > len(hashes):
            report.findings.append(_extra(level))
        hashes = _up(hashes)
        level += 1
    beyond = _count(conn, "history_nodes", f"{ints} AND level >= :lv", {"lv": level})
    if beyond:
        report.findings.append(
            Finding("node", None, None, None, f"{beyond} stored hash(es) above level {level - 1}")
        )
    odd = not_integers(conn, "level", "idx")
    if odd is not None:
        for r in nodes.select(odd):
            report.findings.append(
                Finding(
                    "node",
                    None,
                    None,
                    None,
                    f"a stored hash with no usable place: level {r.get('level')},"
                    f" subtree {r.get('idx')}",
                )
            )


def _up(hashes: list[bytes]) -> list[bytes]:
    """The complete subtrees one level up (a last odd hash waits for its sibling)."""
    return [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]


def _node_findings(
    level: int, first: int, hashes: list[bytes], stored: dict[int, Any]
) -> list[Finding]:
    out = []
    for j, h in enumerate(hashes, start=first):
        got = stored.get(j)
        if got != h:
            state = "missing" if got is None else str(got) if isinstance(got, Bad) else "wrong"
            out.append(
                Finding(
                    "node",
                    j << level,
                    None,
                    None,
                    f"the stored hash of level {level}, subtree {j} is {state}",
                )
            )
    return out


def _extra(level: int) -> Finding:
    return Finding("node", None, None, None, f"extra stored hashes at level {level}")


def latest_checkpoint_row(conn: Connection) -> RawRow | None:
    rows = reader(conn, CHECKPOINTS).select(integers(conn, "size"), order_by="size DESC", limit=1)
    return rows[0] if rows else None


Roots = Callable[[int], "tuple[bytes, bytes] | None"]  # a size's roots: leaves, records


def _roots_of(from_records: list[bytes], from_leaves: list[bytes]) -> Roots:
    def roots(size: int) -> tuple[bytes, bytes] | None:
        if size > len(from_leaves):
            return None
        return merkle.root_of(from_leaves[:size]), merkle.root_of(from_records[:size])

    return roots


def _check_checkpoint(conn: Connection, log: HistoryLog, roots: Roots, report: AuditReport) -> None:
    """The last signed checkpoint: its signature, and its root against the stored leaves and
    against the records (a leaf rewritten to match a rewritten record shows here)."""
    odd = not_integers(conn, "size")
    if odd is not None:
        for r in reader(conn, CHECKPOINTS).select(odd):
            report.findings.append(
                Finding(
                    "checkpoint", None, None, None, f"a checkpoint row with size {r.get('size')}"
                )
            )
    row = latest_checkpoint_row(conn)
    if row is None:
        return
    report.checkpoint_size = cast(int, row.get("size"))
    if row.bad:
        report.findings.append(
            Finding(
                "checkpoint",
                None,
                None,
                None,
                f"checkpoint {row.get('size')}: "
                + "; ".join(f"history_checkpoints.{b}" for b in row.bad),
            )
        )
        return
    try:
        checkpoint = open_checkpoint_of_log(conn, log, row.get("note"))
    except NoteError as exc:
        report.findings.append(Finding("checkpoint", None, None, None, f"bad signature: {exc}"))
        return
    if checkpoint.size != row.get("size") or checkpoint.root != row.get("root"):
        report.findings.append(
            Finding(
                "checkpoint",
                None,
                None,
                None,
                f"the stored size or root of checkpoint {row.get('size')} is not the signed one",
            )
        )
    got = roots(checkpoint.size)
    if got is None:
        report.findings.append(
            Finding(
                "checkpoint",
                None,
                None,
                None,
                f"the checkpoint has {checkpoint.size} entries, the log only {report.entries}",
            )
        )
        return
    for name, root in (("stored leaves", got[0]), ("records", got[1])):
        if root != checkpoint.root:
            report.findings.append(
                Finding(
                    "checkpoint",
                    None,
                    None,
                    None,
                    f"the {name} do not hash to the signed root of size {checkpoint.size}",
                )
            )


def open_checkpoint_of_log(conn: Connection, log: HistoryLog, note: str) -> Checkpoint:
    """A checkpoint note signed by the key the log had at its size: the configured key, or
    after a key rotation the key of its epoch (the key history is checked first)."""
    history = key_history(conn)
    if history.problems:
        raise NoteError("; ".join(history.problems))
    try:
        size = Checkpoint.parse(split_note(note)[0]).size
    except NoteError:
        size = 0
    key = history.key_for(size)
    verifier = log.signer.verifier() if key is None else Verifier.from_vkey(key)
    return open_checkpoint(note, verifier)


def _check_triggers(conn: Connection, report: AuditReport) -> None:
    for table in APPEND_ONLY:
        for name in missing_triggers(conn, table):
            report.findings.append(
                Finding(
                    "trigger",
                    None,
                    None,
                    None,
                    f"{table} is not append-only: its trigger {name} is missing or disabled",
                )
            )


def trigger_names(conn: Connection, table: str) -> list[str]:
    if conn.dialect.name == "postgresql":
        return [f"{table}_append_only"]
    return [f"{table}_no_update", f"{table}_no_delete"]


def missing_triggers(conn: Connection, table: str) -> list[str]:
    """The append-only triggers of `table` that are missing (or, on PostgreSQL, disabled)."""
    names = trigger_names(conn, table)
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass)"
                " AND tgenabled <> 'D'"
            ),
            {"t": table},
        )
    else:
        rows = conn.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
            {"t": table},
        )
    present = {str(r[0]) for r in rows}
    return [n for n in names if n not in present]
