"""The history log (R8): leaves in the record's transaction, a sequencer, proofs, checkpoints.

Writing (`HistoryLog.append`, called by the ledger and the usage history through `uow.log`):
the record's leaf is inserted *queued* (no index yet) in the same transaction as the record,
so a record never commits without its leaf, nor a leaf without its record. Nothing else is
touched: concurrent transfers do not wait on any shared row.

Sequencing (`integrate`): one integrator at a time (a PostgreSQL advisory lock; SQLite has
one writer anyway) gives the committed queued leaves the next consecutive indices, in queue
order, and stores every subtree hash they complete. A leaf is therefore numbered in the order
in which it became visible to the integrator, i.e. after its transaction committed; a leaf
committed later always gets a larger index than one already integrated. This is the
sequencer/integrator split of Trillian and Tessera (research §9).

Reading: inclusion and consistency proofs read O(log n) stored subtree hashes in one query.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, case, func, insert, or_, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError

from mykey.config import Settings
from mykey.db import (
    RetryTransaction,
    UnitOfWork,
    insert_many,
    is_unavailable,
    unavailable_summary,
)
from mykey.errors import ErrorKind, MyKeyError
from mykey.history import merkle
from mykey.history.checkpoints import (
    Checkpoint,
    NoteError,
    Signer,
    open_checkpoint,
    sign_checkpoint,
)
from mykey.history.encoding import EPOCH, leaf_bytes, record_of, salt
from mykey.history.keys import (
    ROTATIONS,
    Rotation,
    check_log_identity,
    derived_salt_key,
    key_history,
    salt_key_id,
    short,
)
from mykey.history.models import HistoryCheckpoint, HistoryLeaf, HistoryNode

LEAVES = cast(Table, HistoryLeaf.__table__)
NODES = cast(Table, HistoryNode.__table__)
CHECKPOINTS = cast(Table, HistoryCheckpoint.__table__)
INTEGRATOR_LOCK = 0x6D796B6579_6C6F67  # "mykeylog": pg_advisory_xact_lock key
DEV_ORIGIN = "dev.mykey.invalid/history"
INSERT_LEAF = insert(LEAVES)
logger = logging.getLogger("mykey.log")
PG_INSERT_LEAF = (
    "INSERT INTO history_leaves (kind, record_id, leaf, queued_at) VALUES (%s, %s, %s, %s)"
)
SQLITE_INSERT_LEAF = (
    "INSERT INTO history_leaves (kind, record_id, leaf, queued_at) VALUES (?, ?, ?, ?)"
)
# the integrator's statements (arrays in binary)
PG_QUEUED = "SELECT id, leaf FROM history_leaves WHERE idx IS NULL ORDER BY id LIMIT %s"
PG_QUEUED_AFTER = (
    "SELECT id, leaf FROM history_leaves WHERE idx IS NULL AND id > %s ORDER BY id LIMIT %s"
)
PG_INSERT_NODES = (
    "INSERT INTO history_nodes (level, idx, hash)"
    " SELECT * FROM unnest(%b::smallint[], %b::bigint[], %b::bytea[])"
)
PG_NUMBER_LEAVES = (
    "UPDATE history_leaves SET idx = v.idx FROM unnest(%b::bigint[], %b::bigint[])"
    " AS v(id, idx) WHERE history_leaves.id = v.id"
)
# many leaves in one statement, queued in the order given (arrays in binary: no quoting)
PG_INSERT_LEAVES = (
    "INSERT INTO history_leaves (kind, record_id, leaf, queued_at)"
    " SELECT v.kind, v.record_id, v.leaf, v.queued_at"
    " FROM unnest(%b::text[], %b::text[], %b::bytea[], %b::timestamptz[]) WITH ORDINALITY"
    " AS v(kind, record_id, leaf, queued_at, n) ORDER BY v.n"
)


# ---------------------------------------------------------------------------------------------
# keys


def salt_key_of(signer: Signer) -> bytes:
    """The key that salts leaf commitments of a log whose key was never rotated, derived from
    its signing key. After a rotation the salt key stays the log's (MYKEY_LOG_SALT_KEY)."""
    return derived_salt_key(signer)


def dev_key_path() -> Path:
    return Path.cwd() / "var" / "log" / "signing-key"


def dev_salt_key_path() -> Path:
    return Path.cwd() / "var" / "log" / "salt-key"


def signer_of(settings: Settings) -> Signer:
    """The log's signing key: MYKEY_LOG_SIGNING_KEY, or (outside production) a development
    key generated once into var/log/signing-key, never committed."""
    if settings.log_signing_key:
        return Signer.from_key(settings.log_signing_key)
    if settings.environment == "production":
        raise ValueError("MYKEY_LOG_SIGNING_KEY must be set in production")
    path = dev_key_path()
    if not path.exists():
        _write_secret(path, Signer.generate(DEV_ORIGIN).key_string())
    return Signer.from_key(path.read_text())


def salt_key_of_settings(settings: Settings, signer: Signer) -> bytes:
    """MYKEY_LOG_SALT_KEY (64 hex digits), or (outside production) var/log/salt-key if a
    rotation wrote one, or the key derived from the signing key (a log never rotated)."""
    text = settings.log_salt_key.strip()
    if not text and settings.environment != "production" and not settings.log_signing_key:
        path = dev_salt_key_path()
        text = path.read_text().strip() if path.exists() else ""
    if not text:
        return salt_key_of(signer)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError("MYKEY_LOG_SALT_KEY is 64 hex digits (32 bytes)")
    return key


def _write_secret(path: Path, text_value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(text_value + "\n")
    partial.chmod(0o600)
    partial.replace(path)


# ---------------------------------------------------------------------------------------------
# writing


_CHECKED: set[tuple[URL, tuple[str, str]]] = set()
_CHECKED_LOCK = threading.Lock()


class HistoryLog:
    """The real `mykey.db.HistoryLog`: one queued leaf per record, in the record's transaction.

    The first leaf it writes to a database checks that its key is the log's current key and
    its salt key the log's (`keys.check_log_identity`): a process started with another key
    writes nothing."""

    def __init__(self, signer: Signer, salt_key: bytes | None = None) -> None:
        self.signer = signer
        self.origin = signer.name
        self.salt_key = salt_key if salt_key is not None else salt_key_of(signer)
        self._identity = (signer.verifier().vkey(), salt_key_id(self.salt_key))

    def leaf_for(self, kind: str, payload: Mapping[str, Any]) -> tuple[str, bytes]:
        record = record_of(kind, payload)
        return record.record_id, leaf_bytes(record, salt(self.salt_key, kind, record.record_id))

    def ready(self, connection: Connection) -> None:
        self.check(connection)

    def check(self, connection: Connection) -> None:
        """Refuse unless this log's keys are the database's log's (once per database)."""
        token = (connection.engine.url, self._identity)
        if token in _CHECKED:  # the hot path: one set lookup per leaf
            return
        check_log_identity(connection, self.signer, self.salt_key)
        with _CHECKED_LOCK:
            _CHECKED.add(token)

    def leaf_row(
        self, connection: Connection, kind: str, payload: Mapping[str, Any]
    ) -> tuple[str, str, bytes, datetime]:
        """The row `append` inserts: for a write that inserts it in its own statement (a
        counter payment on PostgreSQL writes its rows and their leaves in one)."""
        self.check(connection)
        return self._row(kind, payload)

    def _row(self, kind: str, payload: Mapping[str, Any]) -> tuple[str, str, bytes, datetime]:
        record = record_of(kind, payload)
        leaf = leaf_bytes(record, salt(self.salt_key, kind, record.record_id))
        return kind, record.record_id, leaf, EPOCH + timedelta(microseconds=record.at_micros)

    def append(self, connection: Connection, kind: str, payload: Mapping[str, Any]) -> None:
        _, record_id, leaf, queued_at = self.leaf_row(connection, kind, payload)
        # The driver's own cursor, in the unit of work's transaction: on the hot path (a bulk
        # grant logs 100,000 transfers) SQLAlchemy's statement handling costs more than the
        # insert itself.
        driver = connection.connection.driver_connection
        if connection.dialect.name == "postgresql":
            assert driver is not None
            driver.execute(PG_INSERT_LEAF, (kind, record_id, leaf, queued_at))
        elif connection.dialect.name == "sqlite":
            assert driver is not None
            driver.execute(SQLITE_INSERT_LEAF, (kind, record_id, leaf, _sqlite_stamp(queued_at)))
        else:  # pragma: no cover -- other engines are not supported yet
            connection.execute(
                INSERT_LEAF,
                {"kind": kind, "record_id": record_id, "leaf": leaf, "queued_at": queued_at},
            )

    def append_many(
        self, connection: Connection, records: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> None:
        """`append` of each (kind, payload), in order, in one statement on PostgreSQL (one
        prepared insert run for each on SQLite, where a statement costs no round trip)."""
        if not records:
            return
        self.check(connection)
        rows = [self._row(kind, payload) for kind, payload in records]
        driver = connection.connection.driver_connection
        assert driver is not None
        if connection.dialect.name == "postgresql":
            columns = [list(column) for column in zip(*rows, strict=True)]
            driver.execute(PG_INSERT_LEAVES, columns)
        elif connection.dialect.name == "sqlite":
            driver.executemany(
                SQLITE_INSERT_LEAF,
                [(kind, record_id, leaf, _sqlite_stamp(at)) for kind, record_id, leaf, at in rows],
            )
        else:  # pragma: no cover -- other engines are not supported yet
            connection.execute(
                INSERT_LEAF,
                [
                    dict(zip(("kind", "record_id", "leaf", "queued_at"), r, strict=True))
                    for r in rows
                ],
            )


def _sqlite_stamp(at: datetime) -> str:
    """A UTC time as SQLite's column keeps it (the driver's own cursor bypasses the type)."""
    return at.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def history_log(settings: Settings) -> HistoryLog:
    signer = signer_of(settings)
    return HistoryLog(signer, salt_key_of_settings(settings, signer))


# ---------------------------------------------------------------------------------------------
# the stored tree


def node_reader(conn: Connection) -> merkle.NodeReader:
    """Stored subtree hashes by (level, index); one that is not a 32-byte hash as stored (a
    tampered row) reads as missing, so a proof that needs it fails with `ProofError`."""
    sqlite = conn.dialect.name == "sqlite"

    def read(keys: Iterable[merkle.Key]) -> Mapping[merkle.Key, bytes]:
        wanted = list(keys)
        out: dict[merkle.Key, bytes] = {}
        for i in range(0, len(wanted), 200):
            chunk = wanted[i : i + 200]
            query = select(NODES.c.level, NODES.c.idx, NODES.c.hash).where(
                # An OR of primary-key lookups: SQLite scans for a row-value IN list.
                or_(*(and_(NODES.c.level == lv, NODES.c.idx == ix) for lv, ix in chunk))
            )
            if sqlite:  # a hash stored as another type (tampered) is not a hash: missing
                query = query.where(func.typeof(NODES.c.hash) == "blob")
            for r in conn.execute(query):
                if len(r[2]) == merkle.HASH_SIZE:
                    out[(int(r[0]), int(r[1]))] = bytes(r[2])
        return out

    return read


def tree_size(conn: Connection) -> int:
    """One past the largest index of a leaf. An index that is not an integer (a tampered
    row: SQLite keeps any value in any column, and sorts text above every number) is not
    one."""
    last = conn.execute(select(func.max(LEAVES.c.idx))).scalar()
    if last is not None and not isinstance(last, int):
        last = conn.execute(
            select(func.max(LEAVES.c.idx)).where(func.typeof(LEAVES.c.idx) == "integer")
        ).scalar()
    return 0 if last is None else int(last) + 1


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": INTEGRATOR_LOCK})


def integrate_once(
    uow: UnitOfWork, *, limit: int = 20_000, after: int | None = None
) -> tuple[int, int | None]:
    """Number up to `limit` committed queued leaves (of id above `after`, if given), in id
    order, in one transaction; returns how many and the last one's id."""

    def body() -> tuple[int, int | None]:
        conn = uow.connection
        _lock(conn)
        size = tree_size(conn)
        driver = conn.connection.driver_connection
        if conn.dialect.name == "postgresql":  # psycopg's own cursor: no per-value processing
            assert driver is not None
            queued = (
                driver.execute(PG_QUEUED, (limit,))
                if after is None
                else driver.execute(PG_QUEUED_AFTER, (after, limit))
            ).fetchall()
        else:
            query = select(LEAVES.c.id, LEAVES.c.leaf).where(LEAVES.c.idx.is_(None))
            if after is not None:
                query = query.where(LEAVES.c.id > after)
            queued = conn.execute(query.order_by(LEAVES.c.id).limit(limit)).all()
        if not queued:
            return 0, after
        hashes = [merkle.leaf_hash(bytes(row[1])) for row in queued]
        try:
            nodes = merkle.new_subtrees(size, hashes, node_reader(conn))
        except merkle.ProofError as exc:  # the stored tree was tampered with: sign nothing
            raise tree_damaged(str(exc)) from None
        ids = [int(row[0]) for row in queued]
        if conn.dialect.name == "postgresql":
            assert driver is not None
            levels, indexes = zip(*nodes, strict=True)
            driver.execute(PG_INSERT_NODES, (list(levels), list(indexes), list(nodes.values())))
            driver.execute(PG_NUMBER_LEAVES, (ids, list(range(size, size + len(ids)))))
        else:
            insert_many(
                conn, NODES, [{"level": k[0], "idx": k[1], "hash": h} for k, h in nodes.items()]
            )
            conn.exec_driver_sql(
                "UPDATE history_leaves SET idx = ? WHERE id = ?",
                [(size + i, q) for i, q in enumerate(ids)],
            )
        return len(queued), ids[-1]

    return uow.run(body)


def integrate(uow: UnitOfWork, *, chunk: int = 20_000) -> int:
    """Integrate everything queued; returns the tree size.

    After its first batch, each batch starts above the last leaf the one before numbered:
    the queued-leaves index still holds the leaves numbered moments ago (until vacuum), and
    walking them again each batch made a backlog of a million leaves cost the square of its
    size (issue #15). A leaf committed meanwhile below that point waits for the next call."""
    done, after = integrate_once(uow, limit=chunk)
    while done == chunk:
        done, after = integrate_once(uow, limit=chunk, after=after)
    return current_size(uow)


def current_size(uow: UnitOfWork) -> int:
    return uow.read(lambda: tree_size(uow.connection))


# ---------------------------------------------------------------------------------------------
# checkpoints


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: str
    created_at: datetime


def _no_checkpoint() -> MyKeyError:
    return MyKeyError(
        "no_checkpoint",
        ErrorKind.NOT_FOUND,
        "The log has signed no checkpoint yet.",
        "履歴ログのチェックポイントはまだ署名されていません。",
    )


def _row_checkpoint(row: Any) -> SignedCheckpoint:
    return SignedCheckpoint(
        Checkpoint.parse(row.note.split("\n\n")[0] + "\n"), row.note, row.created_at
    )


def checkpoint_damaged(size: int | None, why: str) -> MyKeyError:
    """A stored checkpoint that is not the one the log signed (a tampered row)."""
    return MyKeyError(
        "log_checkpoint_damaged",
        ErrorKind.CONFLICT,
        f"The log's stored checkpoint of size {size} is damaged in the database ({why}): it"
        " is not served until the operator restores it (`mykey audit verify`, `mykey audit"
        " restore --from WITNESS`).",
        f"履歴ログのサイズ {size} のチェックポイントがデータベース上で損なわれています。運用者が"
        "復元するまで提供できません（mykey audit verify、mykey audit restore --from 証人）。",
        details={"size": size, "reason": why},
    )


def _stored_checkpoint(conn: Connection, where: str, params: Mapping[str, Any]) -> Any:
    """The stored checkpoint row matching `where` (the largest), read as stored: a row whose
    values are not of their types, or whose note is not the checkpoint of its size and root,
    is named (`log_checkpoint_damaged`), never a crash."""
    from mykey.history.rows import integers, reader  # rows imports nothing of the log

    rows = reader(conn, CHECKPOINTS).select(
        f"{integers(conn, 'size')}{' AND ' + where if where else ''}",
        params,
        order_by="size DESC",
        limit=1,
    )
    if not rows:
        return None
    row = rows[0]
    size = row.get("size")
    if not row.ok:
        raise checkpoint_damaged(size, str(row.bad[0]))
    try:
        signed = _row_checkpoint(row)
    except (NoteError, ValueError) as exc:
        raise checkpoint_damaged(size, f"its note is not a checkpoint: {exc}") from None
    if signed.checkpoint.size != size or signed.checkpoint.root != row.get("root"):
        raise checkpoint_damaged(size, "its note is of another size or root")
    return signed


def latest_checkpoint(uow: UnitOfWork) -> SignedCheckpoint:
    def body() -> SignedCheckpoint:
        signed = _stored_checkpoint(uow.connection, "", {})
        if signed is None:
            raise _no_checkpoint()
        return cast(SignedCheckpoint, signed)

    return uow.read(body)


def checkpoint_at(uow: UnitOfWork, size: int) -> SignedCheckpoint | None:
    def body() -> SignedCheckpoint | None:
        return cast(
            "SignedCheckpoint | None", _stored_checkpoint(uow.connection, "size = :s", {"s": size})
        )

    return uow.read(body)


def make_checkpoint(uow: UnitOfWork, signer: Signer | HistoryLog) -> SignedCheckpoint:
    """Integrate what is queued, then sign a checkpoint of the whole tree (or return the one
    already signed for this size). A size is never signed with two roots, and nothing is
    signed with a key that is not the log's current key (`log_key_mismatch`)."""
    log = signer if isinstance(signer, HistoryLog) else HistoryLog(signer)
    signer = log.signer
    uow.read(lambda: check_log_identity(uow.connection, log.signer, log.salt_key))
    integrate(uow)

    def body() -> SignedCheckpoint:
        conn = uow.connection
        _lock(conn)
        check_log_identity(conn, log.signer, log.salt_key)
        size = tree_size(conn)
        root = _hashes([(0, size)], node_reader(conn))[0] if size else merkle.EMPTY_ROOT
        existing = conn.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.size == size)).first()
        if existing is not None:
            if bytes(existing.root) != root:
                raise MyKeyError(
                    "checkpoint_conflict",
                    ErrorKind.CONFLICT,
                    f"A checkpoint of size {size} was signed with another root: the stored"
                    " tree changed. Run `mykey audit verify`.",
                    f"サイズ {size} のチェックポイントは別のルートで署名済みです。"
                    "`mykey audit verify` を実行してください。",
                )
            return _row_checkpoint(existing)
        checkpoint = Checkpoint(signer.name, size, root)
        note = sign_checkpoint(checkpoint, signer)
        now = uow.now()
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(CHECKPOINTS).values(size=size, root=root, note=note, created_at=now)
                )
        except IntegrityError:  # another process signed this size first: read theirs
            raise RetryTransaction from None
        return SignedCheckpoint(checkpoint, note, now)

    return uow.run(body)


def verify_latest(uow: UnitOfWork, signer: Signer) -> Checkpoint:
    return open_checkpoint(latest_checkpoint(uow).note, signer.verifier())


# ---------------------------------------------------------------------------------------------
# reading: entries and proofs


@dataclass(frozen=True)
class Entry:
    index: int
    kind: str
    record_id: str
    leaf: bytes

    @property
    def leaf_hash(self) -> bytes:
        return merkle.leaf_hash(self.leaf)


@dataclass(frozen=True)
class InclusionProof:
    entry: Entry
    tree_size: int
    root: bytes
    path: list[bytes]


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    first_root: bytes
    second_root: bytes
    path: list[bytes]


def _invalid(message: str, message_ja: str, code: str = "invalid_log_range") -> MyKeyError:
    return MyKeyError(code, ErrorKind.INVALID, message, message_ja)


def entries(uow: UnitOfWork, *, start: int, end: int) -> list[Entry]:
    """Entries [start, end) of the integrated log (at most 1,000)."""
    if start < 0 or end <= start or end - start > 1000:
        raise _invalid(
            "Ask for 1 to 1,000 entries: 0 <= start < end <= start + 1000.",
            "1〜1,000 件の範囲を指定してください (0 <= start < end <= start + 1000)。",
        )

    return uow.read(lambda: checked_entries(uow.connection, start, end))


def entry_damaged(index: int, why: str) -> MyKeyError:
    """An entry whose stored leaf is not the one the log signed (a tampered row)."""
    return MyKeyError(
        "log_entry_damaged",
        ErrorKind.CONFLICT,
        f"Entry {index} of the log is damaged in the database ({why}): it is not served"
        " until the operator restores it (`mykey audit verify`, `mykey audit restore --from"
        " WITNESS`).",
        f"履歴ログの項目 {index} がデータベース上で損なわれています。運用者が復元するまで"
        "提供できません（mykey audit verify、mykey audit restore --from 証人）。",
        details={"index": index, "reason": why},
    )


def tree_damaged(why: str) -> MyKeyError:
    """A proof needs a stored subtree hash that is missing or not a hash (a tampered row)."""
    return MyKeyError(
        "log_tree_damaged",
        ErrorKind.CONFLICT,
        f"The log's stored tree is damaged in the database ({why}): the operator must restore"
        " it (`mykey audit verify`, `mykey audit restore --from WITNESS`).",
        "履歴ログの木がデータベース上で損なわれています。運用者が復元する必要があります"
        "（mykey audit verify、mykey audit restore --from 証人）。",
        details={"reason": why},
    )


def checked_entries(conn: Connection, start: int, end: int) -> list[Entry]:
    """The integrated entries [start, end), read as stored. Each one served is a row of its
    types whose leaf hashes to the level-0 subtree hash the log stored when it numbered it
    (what its checkpoints sign); the first entry in the range that is not — a leaf changed,
    deleted, moved or of the wrong type, its subtree hash gone — is named
    (`log_entry_damaged`), never a crash and never a leaf the signed tree does not hold."""
    from mykey.history.rows import integers, reader  # rows imports nothing of the log

    end = min(end, tree_size(conn))
    if end <= start:
        return []
    span = f"{integers(conn, 'idx')} AND idx >= :start AND idx < :end"
    leaves: dict[int, Any] = {}
    for row in reader(conn, LEAVES, ("idx", "kind", "record_id", "leaf")).select(
        span, {"start": start, "end": end}
    ):
        leaves.setdefault(cast(int, row.get("idx")), []).append(row)
    nodes: dict[int, Any] = {}
    for row in reader(conn, NODES).select(f"level = 0 AND {span}", {"start": start, "end": end}):
        nodes[cast(int, row.get("idx"))] = row.get("hash")
    out: list[Entry] = []
    for i in range(start, end):
        found = leaves.get(i, [])
        if len(found) != 1:
            raise entry_damaged(i, "no leaf at this index" if not found else "two leaves")
        row = found[0]
        if not row.ok:
            raise entry_damaged(i, str(row.bad[0]))
        entry = Entry(i, row.get("kind"), row.get("record_id"), row.get("leaf"))
        node = nodes.get(i)
        if not isinstance(node, bytes) or len(node) != merkle.HASH_SIZE:
            raise entry_damaged(i, "its stored subtree hash is missing or not a hash")
        if entry.leaf_hash != node:
            raise entry_damaged(i, "the leaf does not hash to the tree the log signed")
        out.append(entry)
    return out


def _hashes(ranges: list[merkle.Range], read: merkle.NodeReader) -> list[bytes]:
    try:
        return merkle.hashes_for(ranges, read)
    except merkle.ProofError as exc:
        raise tree_damaged(str(exc)) from None


def _size_or_latest(uow: UnitOfWork, size: int | None) -> int:
    if size is not None:
        return size
    return latest_checkpoint(uow).checkpoint.size


def _check_size(conn: Connection, size: int) -> None:
    if size < 0 or size > tree_size(conn):
        raise _invalid(
            f"The log has no tree of size {size} yet.",
            f"サイズ {size} の木はまだありません。",
            "unknown_tree_size",
        )


def index_of(uow: UnitOfWork, kind: str, record_id: str) -> int:
    def body() -> int:
        conn = uow.connection
        column: Any = LEAVES.c.idx
        if conn.dialect.name == "sqlite":  # any value in any column: only an integer is one
            column = case((func.typeof(LEAVES.c.idx) == "integer", LEAVES.c.idx), else_=-1)
        idx = conn.execute(
            select(column).where(LEAVES.c.kind == kind, LEAVES.c.record_id == record_id)
        ).first()
        if idx is not None and idx[0] == -1:
            raise tree_damaged(f"the leaf of {kind} {record_id} has no usable index")
        if idx is None:
            raise MyKeyError(
                "not_in_log",
                ErrorKind.NOT_FOUND,
                f"No {kind} {record_id} in the history log.",
                "その記録は履歴ログにありません。",
            )
        if idx[0] is None:
            raise MyKeyError(
                "not_integrated_yet",
                ErrorKind.CONFLICT,
                "The record is queued for the log but not yet numbered; ask again shortly.",
                "記録は履歴ログへの登録待ちです。しばらくしてから再度お試しください。",
            )
        return int(idx[0])

    return uow.read(body)


def inclusion(uow: UnitOfWork, *, index: int, size: int | None = None) -> InclusionProof:
    tree = _size_or_latest(uow, size)

    def body() -> InclusionProof:
        conn = uow.connection
        _check_size(conn, tree)
        if not 0 <= index < tree:
            raise _invalid(
                f"Entry {index} is not in the tree of size {tree}.",
                f"項目 {index} はサイズ {tree} の木に含まれません。",
                "not_in_tree",
            )
        (entry,) = checked_entries(conn, index, index + 1)
        read = node_reader(conn)
        ranges = merkle.inclusion_ranges(index, tree)
        hashes = _hashes([*ranges, (0, tree)], read)
        return InclusionProof(entry, tree, hashes[-1], hashes[:-1])

    return uow.read(body)


def consistency(uow: UnitOfWork, *, first: int, second: int | None = None) -> ConsistencyProof:
    second_size = _size_or_latest(uow, second)

    def body() -> ConsistencyProof:
        conn = uow.connection
        _check_size(conn, second_size)
        if not 0 < first <= second_size:
            raise _invalid(
                "A consistency proof needs 0 < first <= second.",
                "整合性証明には 0 < first <= second が必要です。",
            )
        read = node_reader(conn)
        ranges = merkle.consistency_ranges(first, second_size)
        hashes = _hashes([*ranges, (0, first), (0, second_size)], read)
        return ConsistencyProof(first, second_size, hashes[-2], hashes[-1], hashes[:-2])

    return uow.read(body)


# ---------------------------------------------------------------------------------------------
# background checkpoints while serving


class CheckpointJob:
    """Integrate and sign a checkpoint every `seconds` (when the tree grew), in a daemon
    thread. A round refused (say, the key was rotated under a running server) is logged once
    per reason and signs nothing."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        signer: Signer | HistoryLog,
        *,
        seconds: float,
    ) -> None:
        self.uow_factory = uow_factory
        self.log = signer if isinstance(signer, HistoryLog) else HistoryLog(signer)
        self.signer = self.log.signer
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_refusal = ""

    def run_once(self) -> SignedCheckpoint:
        return make_checkpoint(self.uow_factory(), self.log)

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.run_once()
                self._last_refusal = ""
            except MyKeyError as exc:
                if exc.message != self._last_refusal:
                    logger.error("no checkpoint signed: %s (%s)", exc.message, exc.code)
                    self._last_refusal = exc.message
            except Exception as exc:  # a bad round must not end the thread
                if is_unavailable(exc):  # an outage: one line, the next round tries again
                    logger.warning(
                        "no checkpoint: database unavailable (%s)", unavailable_summary(exc)
                    )
                elif str(exc) != self._last_refusal:  # once per reason, not every round
                    logger.exception("checkpoint round failed")
                    self._last_refusal = str(exc)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mykey-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------
# rotating the key


@dataclass(frozen=True)
class KeyRotated:
    rotation: Rotation
    index: int  # the rotation's entry in the log
    handoff: SignedCheckpoint  # the last checkpoint under the previous key; it commits to it
    resumed: bool  # the rotation was recorded before; this finished it


def rotate_key(uow: UnitOfWork, log: HistoryLog, new: Signer) -> KeyRotated:
    """Record in the log that its signing key changes from `log.signer` (the current key) to
    `new`, and sign with the current key the checkpoint that commits to that record (the
    handoff). From then on only `new` signs; the salt key stays the log's."""
    if new.name != log.signer.name:
        raise _rotation_refused(
            f"The new key must keep the log's name {log.signer.name!r} (its origin), not"
            f" {new.name!r}: make it with `mykey log new-key {log.signer.name}`.",
            f"新しい鍵はログの名前 {log.signer.name!r} (origin) のままにしてください。",
        )
    if new.public_key == log.signer.public_key:
        raise _rotation_refused("The new key is the current key.", "新しい鍵が現在の鍵と同じです。")

    def body() -> tuple[Rotation, bool]:
        conn = uow.connection
        _lock(conn)
        history = key_history(conn)
        pending = history.pending
        if pending is not None and not history.problems:
            if pending.new_key != new.verifier().vkey():
                raise _rotation_refused(
                    f"A rotation to {short(pending.new_key)} is recorded and not finished:"
                    " finish it with that key first.",
                    f"{short(pending.new_key)} への鍵の交代が未完了です。先にその鍵で完了して"
                    "ください。",
                )
            if pending.old_key == log.signer.verifier().vkey():
                return pending, True
        check_log_identity(conn, log.signer, log.salt_key)  # the current key, now
        number = len(history.steps) + 1
        rotation = Rotation.signed(number, log.signer, new, salt_key_id(log.salt_key), uow.now())
        # the leaf first: its own check must not see a rotation without its leaf
        log.append(conn, "key_rotation", rotation.payload())
        conn.execute(insert(ROTATIONS).values(rotation.payload()))
        return rotation, False

    rotation, resumed = uow.run(body)
    handoff = make_checkpoint(uow, log)
    index = index_of(uow, "key_rotation", str(rotation.number))
    return KeyRotated(rotation, index, handoff, resumed)


def _rotation_refused(message: str, message_ja: str) -> MyKeyError:
    return MyKeyError("key_rotation_refused", ErrorKind.REFUSED, message, message_ja)
