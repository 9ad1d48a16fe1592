"""`mykey audit verify`: recompute the history from the database's records and compare.

1. Every leaf is recomputed from its record (a `ledger_transfers` row, a `mykey_usage` row)
   and compared with the stored leaf: a difference is an *altered* record (or leaf), a leaf
   whose record is gone a *removed* record.
2. Every record must have a leaf: a record without one was *added* behind the log's back.
3. The tree is recomputed from the recomputed leaves; every stored subtree hash is compared,
   and the root of each checkpoint size is compared with the last signed checkpoint, whose
   signature is checked too.
Findings name the entry exactly: its index, its kind and its record id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Connection, Table, func, select

from mykey.db import UnitOfWork, select_by_keys
from mykey.history import merkle
from mykey.history.checkpoints import NoteError, open_checkpoint
from mykey.history.encoding import EncodingError
from mykey.history.log import CHECKPOINTS, LEAVES, NODES, HistoryLog
from mykey.history.receipts import transfer_payload
from mykey.identity.models import UsageEntry
from mykey.ledger.models import TransferRow

USAGE = cast(Table, UsageEntry.__table__)
TRANSFERS = cast(Table, TransferRow.__table__)
CHUNK = 5_000


@dataclass(frozen=True)
class Finding:
    problem: str  # altered · removed · added · leaf_hash · node · checkpoint
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

    @property
    def ok(self) -> bool:
        return not self.findings


def _usage_payload(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "mykey_id": row.mykey_id,
        "action": row.action,
        "actor": row.actor,
        "provider": row.provider_id,
        "purpose": row.purpose,
        "at": row.at,
    }


def _records(conn: Connection, kind: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    if kind == "transfer":
        t = TRANSFERS
        keys = []
        for i in ids:
            try:
                keys.append(UUID(i))
            except ValueError:
                continue
        rows = select_by_keys(conn, t.c.id, keys, list(t.c))
        return {str(r.id): transfer_payload(r) for r in rows}
    numbers = [int(i) for i in ids if i.isdigit()]
    rows = select_by_keys(conn, USAGE.c.id, numbers, list(USAGE.c))
    return {str(r.id): _usage_payload(r) for r in rows}


def verify(uow: UnitOfWork, log: HistoryLog) -> AuditReport:
    """Audit the whole history (read only; run it on a quiet database or a copy)."""
    report = AuditReport()
    with uow:
        conn = uow.connection
        from_records, from_leaves = _check_leaves(conn, log, report)
        counts = {
            "transfer": _count(conn, TRANSFERS),
            "mykey_usage": _count(conn, USAGE),
        }
        report.records = sum(counts.values())
        logged = _count_leaves(conn)
        for kind, count in counts.items():
            if count != logged.get(kind, 0):
                report.findings.extend(_unlogged(conn, kind))
        _compare_tree(conn, from_leaves, report)
        _check_checkpoint(conn, log, from_records, from_leaves, report)
    return report


def _count(conn: Connection, table: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _count_leaves(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(LEAVES.c.kind, func.count()).group_by(LEAVES.c.kind))
    return {str(r[0]): int(r[1]) for r in rows}


def _check_leaves(
    conn: Connection, log: HistoryLog, report: AuditReport
) -> tuple[list[bytes], list[bytes]]:
    """Leaf hashes of the integrated entries in index order: recomputed from the records, and
    as stored. Queued leaves are checked against their records too."""
    from_records: list[bytes] = []
    from_leaves: list[bytes] = []
    for integrated in (True, False):
        after: int | None = None
        while True:
            q = select(LEAVES.c.id, LEAVES.c.idx, LEAVES.c.kind, LEAVES.c.record_id, LEAVES.c.leaf)
            order = LEAVES.c.idx if integrated else LEAVES.c.id
            q = q.where(LEAVES.c.idx.is_not(None) if integrated else LEAVES.c.idx.is_(None))
            if after is not None:
                q = q.where(order > after)
            rows = conn.execute(q.order_by(order).limit(CHUNK)).all()
            if not rows:
                break
            after = int(rows[-1][1] if integrated else rows[-1][0])
            by_kind: dict[str, list[str]] = {}
            for r in rows:
                by_kind.setdefault(r[2], []).append(r[3])
            found = {k: _records(conn, k, ids) for k, ids in by_kind.items()}
            for _, idx, kind, record_id, stored in rows:
                index = None if idx is None else int(idx)
                leaf = bytes(stored)
                expected = _expected_leaf(log, found.get(kind, {}).get(record_id), kind)
                if expected is None:
                    report.findings.append(
                        Finding("removed", index, kind, record_id, "the entry's record is gone")
                    )
                elif expected != leaf:
                    report.findings.append(
                        Finding(
                            "altered", index, kind, record_id, "the record differs from its leaf"
                        )
                    )
                if index is None:
                    report.queued += 1
                    continue
                report.entries += 1
                if index != len(from_leaves):
                    report.findings.append(
                        Finding("node", index, kind, record_id, "entry indices are not consecutive")
                    )
                from_leaves.append(merkle.leaf_hash(leaf))
                from_records.append(merkle.leaf_hash(expected if expected is not None else b""))
    return from_records, from_leaves


def _expected_leaf(log: HistoryLog, payload: dict[str, Any] | None, kind: str) -> bytes | None:
    if payload is None:
        return None
    try:
        return log.leaf_for(kind, payload)[1]
    except (EncodingError, ValueError, KeyError):
        return b""


def _unlogged(conn: Connection, kind: str) -> list[Finding]:
    logged = {r[0] for r in conn.execute(select(LEAVES.c.record_id).where(LEAVES.c.kind == kind))}
    if kind == "transfer":
        t = TRANSFERS
        ids = (str(r[0]) for r in conn.execute(select(t.c.id)))
    else:
        ids = (str(r[0]) for r in conn.execute(select(USAGE.c.id)))
    return [
        Finding("added", None, kind, rid, "a record without a leaf: it bypassed the log")
        for rid in ids
        if rid not in logged
    ]


def _compare_tree(conn: Connection, from_leaves: list[bytes], report: AuditReport) -> None:
    """Every stored subtree hash against the tree rebuilt from the stored leaves."""
    level, hashes = 0, from_leaves
    while hashes:
        stored = {
            int(r[0]): bytes(r[1])
            for r in conn.execute(select(NODES.c.idx, NODES.c.hash).where(NODES.c.level == level))
        }
        for j, h in enumerate(hashes):
            got = stored.get(j)
            if got != h:
                state = "missing" if got is None else "wrong"
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


def _check_checkpoint(
    conn: Connection,
    log: HistoryLog,
    from_records: list[bytes],
    from_leaves: list[bytes],
    report: AuditReport,
) -> None:
    """The last signed checkpoint: its signature, and its root against the stored leaves and
    against the records (a leaf rewritten to match a rewritten record shows here)."""
    row = conn.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.size.desc()).limit(1)).first()
    if row is None:
        return
    report.checkpoint_size = int(row.size)
    try:
        checkpoint = open_checkpoint(row.note, log.signer.verifier())
    except NoteError as exc:
        report.findings.append(Finding("checkpoint", None, None, None, f"bad signature: {exc}"))
        return
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
