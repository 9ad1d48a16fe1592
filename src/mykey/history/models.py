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
