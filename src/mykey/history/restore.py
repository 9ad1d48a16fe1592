"""Compare the history with a witness's copy, and restore from it (R8.3).

`fetch_copy` reads a witness's latest cosigned checkpoint and its copy of the entries (leaves
with record bytes, salt and row), checks the log's signature (and, with a policy, the quorum of
cosignatures) and that the copy's leaves hash to the checkpoint's root: from then on the copy
is trusted whatever the witness is.

`compare` then names, index by index, every entry whose stored leaf or whose record differs
from the copy, even when a leaf and its record were rewritten together (which the audit alone
can only see as a root that no longer matches the checkpoint).

`restore` puts back exactly those rows, after checking each one again: an inclusion proof from
the witness to the cosigned root, the record bytes against the leaf's commitment, the row
against the record bytes. Rows of append-only tables are changed by deliberately lifting that
table's trigger inside the restore's own transaction (PostgreSQL: ALTER TABLE … DISABLE/ENABLE
TRIGGER, transactional; SQLite: DROP TRIGGER and CREATE it again from its stored SQL), so no
other transaction ever sees the table unprotected, and only for rows proven altered. Every row
put back is written to `history_restores` (append-only) with what was there before.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, text, update

from mykey.db import UnitOfWork
from mykey.history import merkle
from mykey.history.audit import Finding, _expected_leaf, _records
from mykey.history.checkpoints import Checkpoint, NoteError, open_checkpoint
from mykey.history.cosign import add_signatures, log_only
from mykey.history.encoding import EncodingError, commitment, parse_leaf, record_of
from mykey.history.log import CHECKPOINTS, LEAVES, NODES, HistoryLog
from mykey.history.models import HistoryRestore
from mykey.history.policy import Policy, PolicyError
from mykey.history.witness import WitnessError, _json, _request
from mykey.history.witnessing import COSIGNATURES, KINDS, payload_of_row, row_values

RESTORES = cast(Table, HistoryRestore.__table__)


class RestoreError(RuntimeError):
    """The witness's copy cannot be trusted or does not prove what a restore needs."""


@dataclass
class WitnessCopy:
    url: str
    note: str
    checkpoint: Checkpoint
    entries: list[dict[str, Any]]
    cosigners: list[str] = field(default_factory=list)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(value: str | None) -> bytes | None:
    return None if value is None else base64.b64decode(value, validate=True)


def _local_cosignatures(uow: UnitOfWork, size: int) -> list[str]:
    def body() -> list[str]:
        rows = uow.connection.execute(
            select(COSIGNATURES.c.line).where(COSIGNATURES.c.size == size)
        )
        return [str(r[0]) for r in rows]

    return uow.run(body)


def fetch_copy(
    uow: UnitOfWork,
    log: HistoryLog,
    url: str,
    *,
    token: str = "",
    policy: Policy | None = None,
) -> WitnessCopy:
    base = url.rstrip("/")
    try:
        note = _request(f"{base}/checkpoint").decode("utf-8")
        checkpoint = open_checkpoint(note, log.signer.verifier())
    except (WitnessError, NoteError) as exc:
        raise RestoreError(f"the witness's checkpoint: {exc}") from exc
    cosigners: list[str] = []
    if policy is not None:
        merged = add_signatures(note, _local_cosignatures(uow, checkpoint.size))
        try:
            cosigners = policy.check(merged).witnesses
        except PolicyError as exc:
            raise RestoreError(f"the policy does not trust this checkpoint: {exc}") from exc
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    entries: list[dict[str, Any]] = []
    try:
        for lo in range(0, checkpoint.size, 1000):
            hi = min(checkpoint.size, lo + 1000)
            got = _json(f"{base}/records?start={lo}&end={hi}", headers)["entries"]
            entries.extend(got)
    except (WitnessError, KeyError) as exc:
        raise RestoreError(f"the witness's copy: {exc}") from exc
    leaves = [base64.b64decode(e["leaf"]) for e in entries]
    if [int(e["index"]) for e in entries] != list(range(checkpoint.size)) or merkle.root_of(
        [merkle.leaf_hash(leaf) for leaf in leaves]
    ) != checkpoint.root:
        raise RestoreError(
            f"the witness's copy does not hash to its cosigned root of size {checkpoint.size}"
        )
    for e, leaf in zip(entries, leaves, strict=True):
        e["leaf_bytes"] = leaf
    return WitnessCopy(url, note, checkpoint, entries, cosigners)


def compare(uow: UnitOfWork, log: HistoryLog, copy: WitnessCopy) -> list[Finding]:
    """Every entry of the cosigned tree whose stored leaf or record differs from the copy."""
    findings: list[Finding] = []
    with uow:
        conn = uow.connection
        for lo in range(0, copy.checkpoint.size, 5000):
            hi = min(copy.checkpoint.size, lo + 5000)
            rows = {
                int(r[0]): (r[1], r[2], bytes(r[3]))
                for r in conn.execute(
                    select(LEAVES.c.idx, LEAVES.c.kind, LEAVES.c.record_id, LEAVES.c.leaf).where(
                        LEAVES.c.idx >= lo, LEAVES.c.idx < hi
                    )
                )
            }
            wanted: dict[str, list[str]] = {}
            for e in copy.entries[lo:hi]:
                wanted.setdefault(e["kind"], []).append(e["record_id"])
            found = {k: _records(conn, k, ids) for k, ids in wanted.items()}
            for e in copy.entries[lo:hi]:
                i, kind, rid, leaf = int(e["index"]), e["kind"], e["record_id"], e["leaf_bytes"]
                mine = rows.get(i)
                if mine is None:
                    findings.append(Finding("leaf_removed", i, kind, rid, "the log lost it"))
                elif mine != (kind, rid, leaf):
                    findings.append(
                        Finding(
                            "leaf_altered", i, kind, rid, "the stored leaf is not the cosigned one"
                        )
                    )
                payload = found.get(kind, {}).get(rid)
                if payload is None:
                    findings.append(Finding("removed", i, kind, rid, "the record is gone"))
                elif _expected_leaf(log, payload, kind) != leaf:
                    findings.append(
                        Finding(
                            "altered", i, kind, rid, "the record differs from the cosigned leaf"
                        )
                    )
    return findings


# ---------------------------------------------------------------------------------------------
# restore


@dataclass
class RestoreReport:
    checkpoint_size: int
    restored: list[tuple[str, int | None, str | None]] = field(default_factory=list)
    not_restored: list[str] = field(default_factory=list)


def _lift_append_only(conn: Connection, table: str) -> list[str]:
    """Lift `table`'s append-only trigger in this transaction; returns how to put it back."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
        return [f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only"]
    again: list[str] = []
    for name in (f"{table}_no_update", f"{table}_no_delete"):
        sql = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :n"), {"n": name}
        ).scalar()
        if sql is not None:
            conn.execute(text(f"DROP TRIGGER {name}"))
            again.append(str(sql))
    return again


def _restore_row(conn: Connection, kind: str, record_id: str, row_text: str) -> Any:
    table, key, _, to_key = KINDS[kind]
    values = row_values(table, row_text)
    key_value = to_key(record_id)
    before = conn.execute(select(table).where(table.c[key] == key_value)).first()
    if before is None:
        conn.execute(insert(table).values(values))
        return None
    pk = {c.name for c in table.primary_key.columns}
    changes = {k: v for k, v in values.items() if k not in pk}
    again = _lift_append_only(conn, table.name)
    conn.execute(update(table).where(table.c[key] == key_value).values(changes))
    for sql in again:
        conn.execute(text(sql))
    return before


def _jsonable(row: Any) -> str:
    if row is None:
        return "null"
    return json.dumps(
        {
            k: (str(v) if v is not None and not isinstance(v, int | str) else v)
            for k, v in row._mapping.items()
        },
        ensure_ascii=False,
        sort_keys=True,
    )


def restore(
    uow: UnitOfWork, log: HistoryLog, copy: WitnessCopy, findings: list[Finding]
) -> RestoreReport:
    """Put back every record and leaf `compare` found altered or removed, each checked against
    the cosigned checkpoint first; then the stored subtree hashes and checkpoints that follow
    from them. One transaction: all or nothing."""
    report = RestoreReport(copy.checkpoint.size)
    size, root = copy.checkpoint.size, copy.checkpoint.root
    by_index = {int(e["index"]): e for e in copy.entries}
    todo: dict[int, set[str]] = {}
    for f in findings:
        if f.index is None or f.index not in by_index:
            report.not_restored.append(f"{f.problem} {f.kind} {f.record_id}: not in the copy")
            continue
        todo.setdefault(f.index, set()).add("leaf" if f.problem.startswith("leaf_") else "record")
    proven: dict[int, dict[str, Any]] = {}
    for i in sorted(todo):
        e = by_index[i]
        leaf = e["leaf_bytes"]
        path = _json(f"{copy.url.rstrip('/')}/proofs/inclusion?index={i}&tree_size={size}")["path"]
        try:
            merkle.verify_inclusion(
                i, size, merkle.leaf_hash(leaf), [base64.b64decode(h) for h in path], root
            )
        except merkle.ProofError as exc:
            raise RestoreError(f"entry {i}: the witness's inclusion proof fails: {exc}") from exc
        if "record" in todo[i]:
            data, salt_value = _unb64(e.get("record")), _unb64(e.get("salt"))
            if data is None or salt_value is None or not e.get("row"):
                raise RestoreError(f"entry {i}: the witness holds no record bytes to restore")
            try:
                fields = payload_of_row(e["kind"], KINDS[e["kind"]][0], e["row"])
                ok = (
                    commitment(salt_value, data) == parse_leaf(leaf).commitment
                    and record_of(e["kind"], fields).data == data
                )
            except (EncodingError, ValueError, KeyError) as exc:
                raise RestoreError(f"entry {i}: unreadable record: {exc}") from exc
            if not ok:
                raise RestoreError(f"entry {i}: the witness's record does not match the leaf")
        proven[i] = e

    def body() -> None:
        conn = uow.connection
        now = uow.now()

        def trail(
            target: str, i: int | None, kind: str | None, rid: str | None, before: str, after: str
        ) -> None:
            conn.execute(
                insert(RESTORES).values(
                    restored_at=now,
                    witness=copy.url,
                    checkpoint_size=size,
                    target=target,
                    idx=i,
                    kind=kind,
                    record_id=rid,
                    before=before,
                    after=after,
                )
            )
            report.restored.append((target, i, rid))

        for i, e in proven.items():
            kind, rid = e["kind"], e["record_id"]
            if "record" in todo[i]:
                before = _restore_row(conn, kind, rid, e["row"])
                trail("record", i, kind, rid, _jsonable(before), e["row"])
            if "leaf" in todo[i]:
                old = conn.execute(select(LEAVES.c.leaf).where(LEAVES.c.idx == i)).scalar()
                if old is None:
                    report.not_restored.append(f"leaf {i}: missing from the log (not re-created)")
                    continue
                conn.execute(
                    update(LEAVES)
                    .where(LEAVES.c.idx == i)
                    .values(kind=kind, record_id=rid, leaf=e["leaf_bytes"])
                )
                trail("leaf", i, kind, rid, json.dumps(_b64(bytes(old))), json.dumps(e["leaf"]))
        if any("leaf" in t for t in todo.values()):
            _repair_tree(conn, log, copy, trail)

    uow.run(body)
    return report


def _repair_tree(conn: Connection, log: HistoryLog, copy: WitnessCopy, trail: Any) -> None:
    """Stored subtree hashes that differ from the tree of the (restored) leaves, and stored
    checkpoints whose root is not that tree's: put back (the checkpoint from the witness)."""
    leaves = [
        merkle.leaf_hash(bytes(r[0]))
        for r in conn.execute(
            select(LEAVES.c.leaf).where(LEAVES.c.idx.is_not(None)).order_by(LEAVES.c.idx)
        )
    ]
    again = _lift_append_only(conn, "history_nodes")
    level, hashes = 0, leaves
    while hashes:
        stored = {
            int(r[0]): bytes(r[1])
            for r in conn.execute(select(NODES.c.idx, NODES.c.hash).where(NODES.c.level == level))
        }
        for j, h in enumerate(hashes):
            if stored.get(j) != h and j in stored:
                conn.execute(
                    update(NODES).where(NODES.c.level == level, NODES.c.idx == j).values(hash=h)
                )
                trail(
                    "node", j << level, None, None, json.dumps(_b64(stored[j])), json.dumps(_b64(h))
                )
        hashes = [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]
        level += 1
    for sql in again:
        conn.execute(text(sql))
    wrong = [
        r
        for r in conn.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.size))
        if int(r.size) <= len(leaves) and merkle.root_of(leaves[: int(r.size)]) != bytes(r.root)
    ]
    if not wrong:
        return
    again = _lift_append_only(conn, "history_checkpoints")
    for r in wrong:
        if int(r.size) != copy.checkpoint.size:
            continue  # only the witness's cosigned checkpoint is proven; the audit names others
        note = log_only(copy.note, log.signer.name)
        conn.execute(
            update(CHECKPOINTS)
            .where(CHECKPOINTS.c.size == r.size)
            .values(root=copy.checkpoint.root, note=note)
        )
        trail("checkpoint", int(r.size), None, None, json.dumps(r.note), json.dumps(note))
    for sql in again:
        conn.execute(text(sql))
