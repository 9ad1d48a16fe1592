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

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from sqlalchemy import Connection, Table, text
from sqlalchemy.exc import SQLAlchemyError

from mykey.db import UnitOfWork
from mykey.history import merkle
from mykey.history.checkpoints import Checkpoint, NoteError, Verifier, open_checkpoint, split_note
from mykey.history.encoding import EncodingError
from mykey.history.keys import key_history
from mykey.history.log import CHECKPOINTS, LEAVES, NODES, HistoryLog
from mykey.history.rows import Bad, RawRow, integers, not_integers, reader
from mykey.history.witnessing import KINDS

CHUNK = 5_000
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


def verify(uow: UnitOfWork, log: HistoryLog) -> AuditReport:
    """Audit the whole history, in one read-only transaction: one snapshot, no write lock."""

    def body() -> AuditReport:
        report = AuditReport()
        conn = uow.connection
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
            lambda: _check_checkpoint(conn, log, from_records, from_leaves, report),
        )
        _guard(conn, report, "triggers", lambda: _check_triggers(conn, report))
        return report

    return uow.read(body)


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
    conn: Connection, log: HistoryLog, report: AuditReport
) -> tuple[list[bytes], list[bytes]]:
    """Leaf hashes of the integrated entries in index order: recomputed from the records, and
    as stored. Queued leaves are checked against their records too."""
    from_records: list[bytes] = []
    from_leaves: list[bytes] = []
    leaves = reader(conn, LEAVES)
    ints = integers(conn, "idx")
    for integrated in (True, False):
        after: int | None = None
        while True:
            if integrated:
                where = ints + ("" if after is None else " AND idx > :after")
                order = "idx"
            else:
                where = "idx IS NULL" + ("" if after is None else " AND id > :after")
                order = "id"
            rows = leaves.select(where, {"after": after}, order_by=order, limit=CHUNK)
            if not rows:
                break
            last = rows[-1].get(order)
            after = last if isinstance(last, int) else None
            by_kind: dict[str, list[str]] = {}
            for r in rows:
                kind, rid = _str_or_none(r.get("kind")), _str_or_none(r.get("record_id"))
                if kind is not None and rid is not None:
                    by_kind.setdefault(kind, []).append(rid)
            found = {k: _records(conn, k, ids) for k, ids in by_kind.items()}
            for r in rows:
                _check_leaf(log, r, found, report, from_records, from_leaves)
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


def _check_leaf(
    log: HistoryLog,
    r: RawRow,
    found: dict[str, dict[str, RawRow]],
    report: AuditReport,
    from_records: list[bytes],
    from_leaves: list[bytes],
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
    if index != len(from_leaves):
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
    nodes = reader(conn, NODES)
    ints = integers(conn, "level", "idx")
    level, hashes = 0, from_leaves
    while hashes:
        stored: dict[int, Any] = {}
        for r in nodes.select(f"{ints} AND level = :lv", {"lv": level}):
            stored[int(r.get("idx"))] = r.get("hash")
        for j, h in enumerate(hashes):
            got = stored.get(j)
            if got != h:
                state = "missing" if got is None else str(got) if isinstance(got, Bad) else "wrong"
                report.findings.append(
                    Finding(
                        "node",
                        j << level,
                        None,
                        None,
                        f"the stored hash of level {level}, subtree {j} is {state}",
                    )
                )
        if len(stored) > len(hashes):
            report.findings.append(
                Finding("node", None, None, None, f"extra stored hashes at level {level}")
            )
        hashes = [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]
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


def latest_checkpoint_row(conn: Connection) -> RawRow | None:
    rows = reader(conn, CHECKPOINTS).select(integers(conn, "size"), order_by="size DESC", limit=1)
    return rows[0] if rows else None


def _check_checkpoint(
    conn: Connection,
    log: HistoryLog,
    from_records: list[bytes],
    from_leaves: list[bytes],
    report: AuditReport,
) -> None:
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
    if checkpoint.size > len(from_leaves):
        report.findings.append(
            Finding(
                "checkpoint",
                None,
                None,
                None,
                f"the checkpoint has {checkpoint.size} entries, the log only {len(from_leaves)}",
            )
        )
        return
    for name, hashes in (("stored leaves", from_leaves), ("records", from_records)):
        if merkle.root_of(hashes[: checkpoint.size]) != checkpoint.root:
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
