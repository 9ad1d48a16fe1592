"""The history's tables: queued and integrated leaves, stored subtree hashes, checkpoints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from mykey.db import Base, UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class HistoryLeaf(Base):
    """A leaf, written in the transaction of its record (`idx` NULL: queued), then given its
    place in the tree by the integrator (`idx` set once, in integration order)."""

    __tablename__ = "history_leaves"
    __table_args__ = (
        Index("uq_history_leaves_record", "kind", "record_id", unique=True),
        Index("uq_history_leaves_idx", "idx", unique=True),
        Index(
            "ix_history_leaves_queued",
            "id",
            postgresql_where=text("idx IS NULL"),
            sqlite_where=text("idx IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idx: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(64))
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())


class HistoryNode(Base):
    """The hash of a complete subtree: 2^level leaves from index << level (level 0: leaves)."""

    __tablename__ = "history_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class HistoryCheckpoint(Base):
    """Every checkpoint the log signed; a size is never signed twice (primary key)."""

    __tablename__ = "history_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class HistoryKeyRotation(Base):
    """The log's signing key changed (`mykey log rotate-key`): a record of the log itself, so
    its leaf is witnessed; signed by the previous and by the new key. The salt key does not
    change (its id says which it is)."""

    __tablename__ = "history_key_rotations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)  # 1, 2, …
    old_key: Mapped[str] = mapped_column(String(300))  # verifier keys (name+id+key)
    new_key: Mapped[str] = mapped_column(String(300))
    salt_key_id: Mapped[str] = mapped_column(String(64))
    old_signature: Mapped[str] = mapped_column(String(100))  # base64 Ed25519
    new_signature: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- part 2: cosignatures and restores (the log), a witness's copy (the witness) ------------


class HistoryCosignature(Base):
    """A witness's cosignature (C2SP tlog-cosignature) of a checkpoint the log signed."""

    __tablename__ = "history_cosignatures"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(String(200), primary_key=True)
    line: Mapped[str] = mapped_column(Text)  # the signature line, "— name base64\n"
    cosigned_at: Mapped[int] = mapped_column(BigInteger)  # the cosignature's timestamp
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class HistoryRestore(Base):
    """One row put back from a witness's copy by `mykey audit restore` (the audit trail)."""

    __tablename__ = "history_restores"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    restored_at: Mapped[datetime] = mapped_column(UTCDateTime())
    witness: Mapped[str] = mapped_column(String(500))  # the witness's URL and key name
    checkpoint_size: Mapped[int] = mapped_column(BigInteger)
    target: Mapped[str] = mapped_column(String(16))  # record · leaf · node · checkpoint
    idx: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str | None] = mapped_column(String(16))
    record_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[str] = mapped_column(Text)  # JSON of what was there ("null": missing)
    after: Mapped[str] = mapped_column(Text)  # JSON of what was put back


class WitnessLog(Base):
    """A witness's state for a log it follows: the latest checkpoint it cosigned."""

    __tablename__ = "witness_logs"

    origin: Mapped[str] = mapped_column(String(200), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)  # the log's note with this witness's cosignature
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WitnessEntry(Base):
    """A witness's copy of one entry: the leaf, and the record bytes, salt and row it commits
    to (served to witnesses only; docs/history.md, "privacy")."""

    __tablename__ = "witness_entries"
    __table_args__ = (
        # the key history in a witness's copy, read every round
        Index(
            "ix_witness_entries_rotations",
            "origin",
            "idx",
            postgresql_where=text("kind = 'key_rotation'"),
            sqlite_where=text("kind = 'key_rotation'"),
        ),
        # each new entry's record is looked up: a log numbering a record twice is refused
        Index("ix_witness_entries_record", "origin", "kind", "record_id"),
    )

    origin: Mapped[str] = mapped_column(String(200), primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(64))
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    record: Mapped[bytes | None] = mapped_column(LargeBinary)
    salt: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    row: Mapped[str | None] = mapped_column(Text)  # JSON of the record's database row


class WitnessNode(Base):
    """A witness's stored subtree hashes (as `history_nodes`), for proofs from its copy."""

    __tablename__ = "witness_nodes"

    origin: Mapped[str] = mapped_column(String(200), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class WitnessCheckpoint(Base):
    """Every checkpoint a witness cosigned (the log's note with the cosignature)."""

    __tablename__ = "witness_checkpoints"

    origin: Mapped[str] = mapped_column(String(200), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    cosigned_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WitnessAlarm(Base):
    """A split view or an inconsistent checkpoint, with both signed checkpoints as evidence."""

    __tablename__ = "witness_alarms"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(200))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    problem: Mapped[str] = mapped_column(String(32))  # split_view · inconsistent
    detail: Mapped[str] = mapped_column(Text)
    cosigned: Mapped[str] = mapped_column(Text)  # the checkpoint this witness had cosigned
    conflicting: Mapped[str] = mapped_column(Text)  # the validly signed one that conflicts
