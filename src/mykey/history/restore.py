"""Compare the history with a witness's copy, and restore from it (R8.3).

`fetch_copy` reads a witness's latest cosigned checkpoint and its copy of the entries (leaves
with record bytes, salt and row), checks the log's signature (and, with a policy, the quorum of
cosignatures) and that the copy's leaves hash to the checkpoint's root: from then on the copy
is trusted whatever the witness is, and every leaf in it is proven by that root.

`compare` then names, index by index, every entry whose stored leaf or whose record differs
from the copy, even when a leaf and its record were rewritten together (which the audit alone
can only see as a root that no longer matches the checkpoint).

`restore` puts the database back to the copy, in **one transaction** (all or nothing):

* leaves: every cosigned index holds the cosigned leaf again, whether the stored one was
  changed, removed, given a wrong type, swapped or moved to another index (rows are taken off
  their indices first, then put on the right ones, so no unique index is ever violated); a leaf
  at a cosigned index that names no cosigned record is removed;
* records (`ledger_transfers`, `mykey_usage`): every column of each cosigned record's row as
  the witness holds it (the columns in the commitment are proven by it; the others are as the
  log served them), whether the row was changed, removed, wrongly typed, swapped with another
  or moved (its primary key); records that no leaf names — written behind the log's back — are
  removed;
* the stored subtree hashes that follow from the leaves, the stored checkpoints up to the
  cosigned size (the cosigned one from the witness, smaller ones signed again: Ed25519 is
  deterministic, so the same key gives the same note), and missing append-only triggers.

Rows of append-only tables are changed by deliberately lifting that table's trigger inside the
restore's own transaction (PostgreSQL: ALTER TABLE … DISABLE/ENABLE TRIGGER, transactional;
SQLite: DROP TRIGGER and CREATE it again), so no other transaction ever sees the table
unprotected. Every row put back, moved or removed is a row of `history_restores`
(append-only) with what was there before and what is there now.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, UniqueConstraint, delete, insert, text, update
from sqlalchemy.exc import IntegrityError

from mykey.db import UnitOfWork
from mykey.history import merkle
from mykey.history.audit import (
    APPEND_ONLY,
    Finding,
    missing_triggers,
    primary_key,
    record_id_of,
    record_key,
    record_leaf,
    trigger_names,
)
from mykey.history.checkpoints import (
    Checkpoint,
    NoteError,
    Verifier,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    split_note,
)
from mykey.history.cosign import add_signatures, log_only
from mykey.history.encoding import EPOCH, EncodingError, commitment, parse_leaf, record_of
from mykey.history.keys import ROTATIONS, KeyHistory, Rotation, chain_problems, key_history
from mykey.history.log import CHECKPOINTS, LEAVES, NODES, HistoryLog, _lock, node_reader
from mykey.history.models import HistoryRestore
from mykey.history.policy import Policy, PolicyError
from mykey.history.rows import RawRow, integers, not_integers, reader
from mykey.history.witness import WitnessError, _json, _request
from mykey.history.witnessing import COSIGNATURES, KINDS, payload_of_row, row_values
from mykey.migrations.append_only import statements as protect_statements

RESTORES = cast(Table, HistoryRestore.__table__)
CHUNK = 5_000


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
        rows = reader(uow.connection, COSIGNATURES, ("size", "line")).select(
            "size = :s", {"s": size}
        )
        return [str(r.get("line")) for r in rows if isinstance(r.get("line"), str)]

    return uow.read(body)


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
        checkpoint = Checkpoint.parse(split_note(note)[0])
    except (WitnessError, NoteError, UnicodeDecodeError) as exc:
        raise RestoreError(f"the witness's checkpoint: {exc}") from exc
    if checkpoint.origin != log.signer.name:
        raise RestoreError(f"the witness's checkpoint is of another log: {checkpoint.origin!r}")
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
        leaves = [base64.b64decode(e["leaf"], validate=True) for e in entries]
        indices = [int(e["index"]) for e in entries]
    except (WitnessError, KeyError, TypeError, ValueError) as exc:
        raise RestoreError(f"the witness's copy: {exc}") from exc
    if (
        indices != list(range(checkpoint.size))
        or merkle.root_of([merkle.leaf_hash(leaf) for leaf in leaves]) != checkpoint.root
    ):
        raise RestoreError(
            f"the witness's copy does not hash to its cosigned root of size {checkpoint.size}"
        )
    for e, leaf in zip(entries, leaves, strict=True):
        e["leaf_bytes"] = leaf
        try:
            parsed = parse_leaf(leaf)
        except EncodingError as exc:
            raise RestoreError(f"entry {e['index']}: {exc}") from exc
        if (parsed.kind, parsed.record_id) != (e.get("kind"), e.get("record_id")):
            raise RestoreError(f"entry {e['index']}: the leaf names another record")
    records_once(entries)
    keys = _log_keys(uow, log, entries)
    try:
        open_note(note, *keys)
    except NoteError as exc:
        raise RestoreError(
            f"the witness's checkpoint is not signed by a key of this log: {exc}"
        ) from exc
    return WitnessCopy(url, note, checkpoint, entries, cosigners)


def records_once(entries: list[dict[str, Any]]) -> None:
    """A log numbers each record once. A copy that holds one record at two indices was
    cosigned after a leaf was taken off its index and numbered again (witnesses refuse that
    now; a copy made before may hold it): the log cannot hold that tree, so nothing is
    restored from it."""
    first: dict[tuple[Any, Any], Any] = {}
    for e in entries:
        key = (e.get("kind"), e.get("record_id"))
        if key in first:
            raise RestoreError(
                f"entry {e['index']}: {key[0]} {key[1]} is already entry {first[key]} of the"
                " witness's copy (a log numbers each record once): restore from a witness that"
                " did not cosign this tree"
            )
        first[key] = e["index"]


def _log_keys(uow: UnitOfWork, log: HistoryLog, entries: list[dict[str, Any]]) -> list[Verifier]:
    """The keys this log has signed with: the configured key, and the keys of its key
    history (as the witness's copy holds it, and as the database does), each rotation signed
    by both its keys and the chain ending in the configured key."""
    mine = log.signer.verifier().vkey()
    chains: list[list[str]] = []
    rotations: list[Rotation] = []
    for e in entries:
        if e.get("kind") == "key_rotation" and e.get("row"):
            try:
                rotations.append(Rotation.of(payload_of_row("key_rotation", ROTATIONS, e["row"])))
            except (ValueError, TypeError, KeyError):
                continue
    if rotations and not chain_problems(rotations):
        chains.append([rotations[0].old_key, *(r.new_key for r in rotations)])
    history = uow.read(lambda: key_history(uow.connection))
    if history.steps and not history.problems:
        chains.append(history.keys())
    keys = {mine}
    for chain in chains:
        if mine in chain:  # a history that leads to the configured key
            keys.update(chain)
    return [Verifier.from_vkey(k) for k in sorted(keys)]


# ---------------------------------------------------------------------------------------------
# the plan: what differs from the copy (read only)


@dataclass
class LeafFix:
    index: int
    kind: str
    record_id: str
    leaf: bytes
    at: RawRow | None  # the row now at this index
    holder: RawRow | None  # the row now naming this record (anywhere), to move here


@dataclass
class RecordFix:
    index: int
    kind: str
    record_id: str
    entry: dict[str, Any]
    current: RawRow | None
    why: str


@dataclass
class Plan:
    leaves: list[LeafFix] = field(default_factory=list)
    stray_leaves: list[RawRow] = field(default_factory=list)  # at cosigned indices, no record
    records: list[RecordFix] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    not_restorable: list[str] = field(default_factory=list)


def _leaf_row_matches(row: RawRow, kind: str, rid: str, leaf: bytes) -> bool:
    return row.ok and (row.get("kind"), row.get("record_id"), row.get("leaf")) == (kind, rid, leaf)


def _plan(conn: Connection, log: HistoryLog, copy: WitnessCopy) -> Plan:
    plan = Plan()
    size = copy.checkpoint.size
    leaves = reader(conn, LEAVES)
    ints = integers(conn, "idx")
    wrong: list[tuple[dict[str, Any], RawRow | None]] = []
    for lo in range(0, size, CHUNK):
        hi = min(size, lo + CHUNK)
        at = {
            cast(int, r.get("idx")): r
            for r in leaves.select(f"{ints} AND idx >= :lo AND idx < :hi", {"lo": lo, "hi": hi})
        }
        chunk = copy.entries[lo:hi]
        for e in chunk:
            i, kind, rid, leaf = int(e["index"]), e["kind"], e["record_id"], e["leaf_bytes"]
            mine = at.get(i)
            if mine is None:
                plan.findings.append(Finding("leaf_removed", i, kind, rid, "the log lost it"))
                wrong.append((e, None))
            elif not _leaf_row_matches(mine, kind, rid, leaf):
                detail = "the stored leaf is not the cosigned one"
                if mine.bad:
                    detail += ": " + "; ".join(f"history_leaves.{b}" for b in mine.bad)
                plan.findings.append(Finding("leaf_altered", i, kind, rid, detail))
                wrong.append((e, mine))
        _plan_records(conn, log, chunk, plan)
    # Where the rows naming the wrong indices' records are now (swapped, moved, re-queued).
    holders: dict[tuple[str, str], RawRow] = {}
    wanted: dict[str, list[str]] = {}
    for e, _ in wrong:
        wanted.setdefault(e["kind"], []).append(e["record_id"])
    for kind, ids in wanted.items():
        for lo in range(0, len(ids), 500):
            part = ids[lo : lo + 500]
            names = {f"r{j}": rid for j, rid in enumerate(part)}
            clause = ", ".join(f":{n}" for n in names)
            for r in leaves.select(f"kind = :k AND record_id IN ({clause})", {"k": kind, **names}):
                holders[(kind, cast(str, r.get("record_id")))] = r
    wanted_keys = {(e["kind"], e["record_id"]) for e in copy.entries}
    for e, mine in wrong:
        key = (e["kind"], e["record_id"])
        plan.leaves.append(
            LeafFix(int(e["index"]), key[0], key[1], e["leaf_bytes"], mine, holders.get(key))
        )
        if mine is not None:
            mine_key = (mine.get("kind"), mine.get("record_id"))
            if mine_key not in wanted_keys or not isinstance(mine_key[1], str):
                plan.stray_leaves.append(mine)
    return plan


def _plan_records(
    conn: Connection, log: HistoryLog, chunk: list[dict[str, Any]], plan: Plan
) -> None:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for e in chunk:
        by_kind.setdefault(e["kind"], []).append(e)
    for kind, items in by_kind.items():
        if kind not in KINDS:
            continue
        table, key, _, _ = KINDS[kind]
        keys = [k for k in (record_key(kind, e["record_id"]) for e in items) if k is not None]
        current: dict[str, RawRow] = {}
        for found in reader(conn, table).by_keys(key, keys):
            found_id = record_id_of(kind, found)
            if found_id is not None:
                current[found_id] = found
        for e in items:
            i, rid = int(e["index"]), e["record_id"]
            row = current.get(rid)
            why = _record_difference(log, kind, table, e, row)
            if why is None:
                continue
            problem = "removed" if row is None else "altered"
            plan.findings.append(Finding(problem, i, kind, rid, why))
            if not e.get("row"):
                plan.not_restorable.append(
                    f"{problem} index {i} {kind} {rid}: the witness holds no record to restore"
                )
                continue
            plan.records.append(RecordFix(i, kind, rid, e, row, why))


def _record_difference(
    log: HistoryLog, kind: str, table: Table, e: dict[str, Any], row: RawRow | None
) -> str | None:
    """Why the record differs from the copy (None: it does not)."""
    if row is None:
        return "the record is gone"
    mine, why = record_leaf(log, kind, row)
    if mine is None:
        return why
    if mine != e["leaf_bytes"]:
        return "the record differs from the cosigned leaf"
    if not e.get("row"):
        return None
    try:
        theirs = row_values(table, e["row"])
    except (ValueError, TypeError, KeyError):
        return None  # an unreadable copy of a row that matches its leaf: nothing to compare
    differ = sorted(name for name, value in theirs.items() if row.get(name) != value)
    if differ:
        return (
            f"{', '.join(differ)} differ(s) from the witness's copy of the row"
            " (not in the commitment)"
        )
    return None


def compare(uow: UnitOfWork, log: HistoryLog, copy: WitnessCopy) -> list[Finding]:
    """Every entry of the cosigned tree whose stored leaf or record differs from the copy."""
    return uow.read(lambda: _plan(uow.connection, log, copy).findings)


# ---------------------------------------------------------------------------------------------
# restore


@dataclass
class RestoreReport:
    checkpoint_size: int
    restored: list[tuple[str, int | None, str | None]] = field(default_factory=list)
    not_restored: list[str] = field(default_factory=list)


def _lift_append_only(conn: Connection, table: str) -> list[str]:
    """Lift `table`'s append-only trigger in this transaction; returns how to put it back (as
    it was: a trigger an attacker removed is put back by `_protect` at the end)."""
    if conn.dialect.name == "postgresql":
        if missing_triggers(conn, table):
            return []
        conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
        return [f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only"]
    again: list[str] = []
    for name in trigger_names(conn, table):
        sql = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :n"), {"n": name}
        ).scalar()
        if sql is not None:
            conn.execute(text(f"DROP TRIGGER {name}"))
            again.append(str(sql))
    return again


def _check_records(plan: Plan) -> None:
    """Each record to restore: the witness's bytes against the (proven) leaf's commitment,
    and the witness's row against those bytes."""
    for fix in plan.records:
        e = fix.entry
        data, salt_value = _unb64(e.get("record")), _unb64(e.get("salt"))
        if data is None or salt_value is None:
            raise RestoreError(f"entry {fix.index}: the witness holds no record bytes to restore")
        try:
            fields = payload_of_row(fix.kind, KINDS[fix.kind][0], e["row"])
            record = record_of(fix.kind, fields)
            ok = (
                commitment(salt_value, data) == parse_leaf(e["leaf_bytes"]).commitment
                and record.data == data
                and record.record_id == fix.record_id
            )
        except (EncodingError, ValueError, KeyError, TypeError) as exc:
            raise RestoreError(f"entry {fix.index}: unreadable record: {exc}") from exc
        if not ok:
            raise RestoreError(f"entry {fix.index}: the witness's record does not match the leaf")


def _shown(row: RawRow | None) -> str:
    return "null" if row is None else json.dumps(row.shown(), ensure_ascii=False, sort_keys=True)


class _Restorer:
    """The restore's one transaction: every change is made here and written to the trail."""

    def __init__(
        self, uow: UnitOfWork, log: HistoryLog, copy: WitnessCopy, report: RestoreReport
    ) -> None:
        self.conn = uow.connection
        self.now = uow.now()
        self.log = log
        self.copy = copy
        self.report = report
        self.history = KeyHistory()

    def trail(
        self,
        target: str,
        i: int | None,
        kind: str | None,
        rid: str | None,
        before: str,
        after: str,
        *,
        label: str | None = None,
    ) -> None:
        """One row of `history_restores`; the report names it by its record, or by `label`
        (a trigger's name), or says it was removed."""
        if i is not None and not -(2**63) <= i < 2**63:
            i = None  # a place no index can be (tampered): the rows in the trail say it
        self.conn.execute(
            insert(RESTORES).values(
                restored_at=self.now,
                witness=self.copy.url,
                checkpoint_size=self.copy.checkpoint.size,
                target=target,
                idx=i,
                kind=kind,
                record_id=rid,
                before=before,
                after=after,
            )
        )
        shown = rid or label or ("(removed)" if after == "null" else None)
        self.report.restored.append((target, i, shown))

    # -- leaves ----------------------------------------------------------------------------

    def leaves(self, plan: Plan) -> None:
        conn = self.conn
        by_id = LEAVES.c.id
        for stray in plan.stray_leaves:
            conn.execute(delete(LEAVES).where(by_id == stray.get("id")))
            self.trail(
                "leaf",
                stray.get("idx") if isinstance(stray.get("idx"), int) else None,
                _text(stray.get("kind")),
                _text(stray.get("record_id")),
                _shown(stray),
                "null",
            )
        moving = [f.holder for f in plan.leaves if f.holder is not None]
        for row in moving:  # off their indices first: no unique index is ever violated
            conn.execute(update(LEAVES).where(by_id == row.get("id")).values(idx=None))
        for f in plan.leaves:
            queued_at = EPOCH + timedelta(microseconds=parse_leaf(f.leaf).at_micros)
            values = {"idx": f.index, "kind": f.kind, "record_id": f.record_id, "leaf": f.leaf}
            before = f.holder if f.holder is not None else f.at
            if f.holder is not None:
                if not isinstance(f.holder.get("queued_at"), type(self.now)):
                    values["queued_at"] = queued_at
                conn.execute(update(LEAVES).where(by_id == f.holder.get("id")).values(values))
            else:
                conn.execute(insert(LEAVES).values(queued_at=queued_at, **values))
            after = {**values, "leaf": f.leaf.hex()}
            self.trail(
                "leaf", f.index, f.kind, f.record_id, _shown(before), json.dumps(after, default=str)
            )

    # -- records ---------------------------------------------------------------------------

    def records(self, plan: Plan) -> None:
        logged = self._logged_records()
        for kind, (table, key, _, _) in KINDS.items():
            fixes = [f for f in plan.records if f.kind == kind]
            added = self._unlogged_rows(kind, table, logged.get(kind, set()))
            if not fixes and not added:
                continue
            again = _lift_append_only(self.conn, table.name)
            for row in added:
                self._remove_added(kind, table, row)
            self._put_back(kind, table, key, fixes)
            for sql in again:
                self.conn.execute(text(sql))

    def _logged_records(self) -> dict[str, set[str]]:
        """Record ids that a leaf names once the leaves are restored."""
        out: dict[str, set[str]] = {}
        for page in reader(self.conn, LEAVES, ("id", "kind", "record_id")).pages("id"):
            for r in page:
                kind, rid = r.get("kind"), r.get("record_id")
                if isinstance(kind, str) and isinstance(rid, str):
                    out.setdefault(kind, set()).add(rid)
        return out

    def _unlogged_rows(self, kind: str, table: Table, logged: set[str]) -> list[RawRow]:
        pk = primary_key(table)
        out: list[RawRow] = []
        for page in reader(self.conn, table).pages(pk):
            for row in page:
                rid = record_id_of(kind, row)
                if rid is None or rid not in logged:
                    out.append(row)
        return out

    def _remove_added(self, kind: str, table: Table, row: RawRow) -> None:
        """A record no leaf names was written behind the log's back: it is taken out (its
        row is kept in the trail). A row other rows still refer to is left and reported."""
        pk = primary_key(table)
        rid = record_id_of(kind, row)
        try:
            with self.conn.begin_nested():
                self.conn.execute(delete(table).where(table.c[pk] == row.get(pk)))
        except IntegrityError:
            self.report.not_restored.append(
                f"added {kind} {rid or row.get(pk)}: other rows refer to it; not removed"
            )
            return
        self.trail("record", None, kind, rid, _shown(row), "null")

    def _put_back(self, kind: str, table: Table, key: str, fixes: list[RecordFix]) -> None:
        conn = self.conn
        pk = primary_key(table)
        targets = [(f, row_values(table, f.entry["row"])) for f in fixes]
        if pk != key:
            # Take every row to be changed off its primary key and its unique values first, so
            # that rows swapped or moved never collide on the way back.
            floor = conn.execute(text(f"SELECT min({pk}) FROM {table.name}")).scalar()  # noqa: S608
            temp = min(0, floor if isinstance(floor, int) else 0) - 1
            for f, _ in targets:
                if f.current is None:
                    continue
                conn.execute(
                    update(table)
                    .where(table.c[key] == f.current.get(key))
                    .values(_parked(table, key, f.current, temp))
                )
                temp -= 1
        for f, values in targets:
            if f.current is None:
                conn.execute(insert(table).values(values))
            else:
                conn.execute(update(table).where(table.c[key] == values[key]).values(values))
            self.trail("record", f.index, kind, f.record_id, _shown(f.current), f.entry["row"])

    # -- tree, checkpoints, triggers ---------------------------------------------------------

    def tree(self) -> tuple[int, int]:
        """Stored subtree hashes as the restored leaves give them; returns the size of the
        consecutive tree and one past the largest index of any leaf."""
        conn = self.conn
        leaves = reader(conn, LEAVES, ("idx", "leaf"))
        hashes: list[bytes] = []
        end = 0
        for r in leaves.select(integers(conn, "idx"), order_by="idx"):
            idx, leaf = r.get("idx"), r.get("leaf")
            end = max(end, cast(int, idx) + 1)
            if idx == len(hashes) and isinstance(leaf, bytes):
                hashes.append(merkle.leaf_hash(leaf))
        size = len(hashes)
        if end != size:
            self.report.not_restored.append(
                f"the log's entries are not consecutive after index {size - 1} (beyond the"
                " witness's copy): their subtree hashes are left as they are"
            )
        nodes = reader(conn, NODES)
        again: list[str] | None = None

        def lift() -> None:
            nonlocal again
            if again is None:
                again = _lift_append_only(conn, "history_nodes")

        odd = not_integers(conn, "level", "idx")
        if odd is not None:
            strays = nodes.select(odd)
            if strays:
                lift()
                for r in strays:
                    self.trail("node", None, None, None, _shown(r), "null")
                conn.execute(text(f"DELETE FROM history_nodes WHERE {odd}"))  # noqa: S608
        stored = {
            (cast(int, r.get("level")), cast(int, r.get("idx"))): r
            for r in nodes.select(integers(conn, "level", "idx"))
        }
        expected: dict[tuple[int, int], bytes] = {}
        level, current = 0, hashes
        while current:
            for j, h in enumerate(current):
                expected[(level, j)] = h
            current = [
                merkle.node_hash(current[i], current[i + 1]) for i in range(0, len(current) - 1, 2)
            ]
            level += 1
        for k, h in expected.items():
            row = stored.get(k)
            if row is not None and row.ok and row.get("hash") == h:
                continue
            lift()
            if row is None:
                conn.execute(insert(NODES).values(level=k[0], idx=k[1], hash=h))
            else:
                conn.execute(
                    update(NODES).where(NODES.c.level == k[0], NODES.c.idx == k[1]).values(hash=h)
                )
            self.trail("node", k[1] << k[0], None, None, _shown(row), json.dumps(_b64(h)))
        for (lv, ix), row in stored.items():
            if (lv, ix) in expected:
                continue
            garbage = lv < 0 or ix < 0 or lv >= 64 or (ix + 1) << lv > end
            if garbage:
                lift()
                conn.execute(delete(NODES).where(NODES.c.level == lv, NODES.c.idx == ix))
                where = ix << lv if 0 <= lv < 64 and ix >= 0 else None
                self.trail("node", where, None, None, _shown(row), "null")
        for sql in again or []:
            conn.execute(text(sql))
        return size, end

    def checkpoints(self, size: int, end: int) -> None:
        """Stored checkpoints up to the cosigned size whose root is not the copy's, and stored
        checkpoints of trees larger than the log has (no log signs those)."""
        conn = self.conn
        copy = self.copy
        self.history = key_history(conn)  # as restored (`records` ran first)
        # Up to the cosigned size the stored tree is the copy's now (`tree` ran first).
        read = node_reader(conn)

        def root(s: int) -> bytes:
            return merkle.root_from(s, read)

        rows = reader(conn, CHECKPOINTS)
        odd = not_integers(conn, "size")
        wrong: list[tuple[RawRow | None, int]] = []
        strays = rows.select(odd) if odd is not None else []
        have = {cast(int, r.get("size")): r for r in rows.select(integers(conn, "size"))}
        for s, r in have.items():
            if 0 < s <= min(size, copy.checkpoint.size):
                if not self._checkpoint_ok(r, s, root(s)):
                    wrong.append((r, s))
            elif s > end or s < 0:
                strays.append(r)
            elif s > copy.checkpoint.size and not self._checkpoint_ok(r, s, None):
                self.report.not_restored.append(
                    f"checkpoint {s} (beyond the witness's copy) is not a checkpoint this log"
                    " signed: left as it is"
                )
        if copy.checkpoint.size not in have and copy.checkpoint.size <= size:
            wrong.append((None, copy.checkpoint.size))
        if not wrong and not strays:
            return
        again = _lift_append_only(conn, "history_checkpoints")
        for r in strays:
            self.trail("checkpoint", None, None, None, _shown(r), "null")
        if odd is not None:
            conn.execute(text(f"DELETE FROM history_checkpoints WHERE {odd}"))  # noqa: S608
        for r in strays:
            if isinstance(r.get("size"), int):
                conn.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.size == r.get("size")))
        for old, s in sorted(wrong, key=lambda w: w[1]):
            root_s = root(s)
            if s == copy.checkpoint.size:
                note = log_only(copy.note, copy.checkpoint.origin)
            elif self._key_for(s) == self.log.signer.verifier().vkey():
                # Ed25519 is deterministic: the same key signs the same text the same way
                note = sign_checkpoint(Checkpoint(self.log.signer.name, s, root_s), self.log.signer)
            else:
                self.report.not_restored.append(
                    f"checkpoint {s}: signed with an earlier key of the log, not restorable"
                )
                continue
                if old is not None and old.get("note") == note:
                    continue
            values: dict[str, Any] = {"root": root_s, "note": note}
            if old is None:
                conn.execute(insert(CHECKPOINTS).values(size=s, created_at=self.now, **values))
            else:
                if not isinstance(old.get("created_at"), type(self.now)):
                    values["created_at"] = self.now
                conn.execute(update(CHECKPOINTS).where(CHECKPOINTS.c.size == s).values(values))
            self.trail("checkpoint", s, None, None, _shown(old), json.dumps(note))
        for sql in again:
            conn.execute(text(sql))

    def _key_for(self, size: int) -> str:
        key = self.history.key_for(size)
        return self.log.signer.verifier().vkey() if key is None else key

    def _checkpoint_ok(self, r: RawRow, size: int, root: bytes | None) -> bool:
        """A stored checkpoint is the log's signed note of this size (and root, if given)."""
        if not r.ok or (root is not None and r.get("root") != root):
            return False
        try:
            verifier = Verifier.from_vkey(self._key_for(size))
            opened = open_checkpoint(cast(str, r.get("note")), verifier)
        except NoteError:
            return False
        return opened.size == size and opened.root == r.get("root")

    def triggers(self) -> None:
        """Append-only triggers an attacker removed or disabled are put back."""
        conn = self.conn
        for table in APPEND_ONLY:
            for name in missing_triggers(conn, table):
                if conn.dialect.name == "postgresql":
                    exists = conn.execute(
                        text(
                            "SELECT 1 FROM pg_trigger WHERE tgname = :n"
                            " AND tgrelid = CAST(:t AS regclass)"
                        ),
                        {"n": name, "t": table},
                    ).first()
                    if exists is not None:
                        conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {name}"))
                    else:
                        for sql in protect_statements("postgresql", table):
                            conn.execute(text(sql))
                else:
                    action = name.rsplit("_", 1)[1].upper()
                    for sql in protect_statements("sqlite", table):
                        if f" BEFORE {action} " in sql:
                            conn.execute(text(sql))
                self.trail(
                    "trigger", None, None, None, json.dumps(None), json.dumps(name), label=name
                )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _parked(table: Table, key: str, current: RawRow, temp: int) -> dict[str, Any]:
    """Values that take a row off its primary key and every unique value except its record
    key, keeping its CHECK constraints (a post or void names its pending transfer, so a
    `pending_id` is parked on the row's own id, not NULL)."""
    out: dict[str, Any] = {primary_key(table): temp}
    unique = {c.name for c in table.c if c.unique}
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            unique.update(c.name for c in constraint.columns)
    for name in unique - {key}:
        if table.c[name].nullable:
            out[name] = None
    if "pending_id" in out and current.get("pending_id") is not None:
        out["pending_id"] = current.get(key)
    return out


def restore(uow: UnitOfWork, log: HistoryLog, copy: WitnessCopy) -> RestoreReport:
    """Put the database back to the witness's copy (see the module docstring). One
    transaction: all or nothing; a record the copy cannot prove stops it before any change."""
    report = RestoreReport(copy.checkpoint.size)

    def body() -> None:
        report.restored.clear()
        report.not_restored.clear()
        conn = uow.connection
        _lock(conn)
        if conn.dialect.name == "postgresql":
            conn.execute(
                text(
                    "LOCK TABLE history_leaves, history_nodes, history_checkpoints,"
                    " ledger_transfers, mykey_usage, history_key_rotations IN EXCLUSIVE MODE"
                )
            )
        plan = _plan(conn, log, copy)
        report.not_restored.extend(plan.not_restorable)
        _check_records(plan)
        restorer = _Restorer(uow, log, copy, report)
        restorer.leaves(plan)
        restorer.records(plan)
        size, end = restorer.tree()
        restorer.checkpoints(size, end)
        restorer.triggers()

    uow.run(body)
    return report
