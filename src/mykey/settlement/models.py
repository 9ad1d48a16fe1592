"""Settlement tables: closed months, per-ledger close markers, statements and their day lines.

Rows are written once by `statements.close_month` and never changed (triggers refuse UPDATE
and DELETE, as on the ledger's own tables): a closed month is never changed.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from mykey.db import Base, UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class SettlementMonth(Base):
    """A month closed for every ledger (written last, after every ledger's marker)."""

    __tablename__ = "settlement_months"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM, Tokyo
    ledgers: Mapped[int] = mapped_column(Integer)
    statements: Mapped[int] = mapped_column(Integer)
    closed_by: Mapped[str] = mapped_column(String(128))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SettlementLedgerClose(Base):
    """One ledger of a month closed (a close stopped half way resumes after the last one)."""

    __tablename__ = "settlement_ledger_closes"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    ledger: Mapped[str] = mapped_column(String(16), primary_key=True)
    statements: Mapped[int] = mapped_column(Integer)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Statement(Base):
    """What one party is owed or owes for one month in one municipality's points.

    `credits` and `debits` are the month's movements of the party's ledger account (the
    settlement transfers themselves excluded); `amount` is the yen in the statement's own
    direction (see docs/settlement.md); `payable` what changes hands with this party.
    """

    __tablename__ = "settlement_statements"
    __table_args__ = (
        UniqueConstraint("month", "municipality", "party_kind", "party_id"),
        Index("ix_settlement_statements_party", "party_kind", "party_id", "month"),
        Index("ix_settlement_statements_municipality", "municipality", "month"),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    municipality: Mapped[str] = mapped_column(String(16))
    party_kind: Mapped[str] = mapped_column(String(32))
    party_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(BigId)
    credits: Mapped[int] = mapped_column(BigInteger)
    debits: Mapped[int] = mapped_column(BigInteger)
    transfers: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    via_association: Mapped[int] = mapped_column(BigInteger)
    payable: Mapped[int] = mapped_column(BigInteger)
    first_seq: Mapped[int | None] = mapped_column(BigInteger)
    last_seq: Mapped[int | None] = mapped_column(BigInteger)
    settlement_account_id: Mapped[int | None] = mapped_column(BigId)
    transfer_id: Mapped[UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StatementDay(Base):
    """A statement's movements on one Tokyo day."""

    __tablename__ = "settlement_statement_days"

    statement_id: Mapped[UUID] = mapped_column(
        Uuid, ForeignKey("settlement_statements.id"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    credits: Mapped[int] = mapped_column(BigInteger)
    debits: Mapped[int] = mapped_column(BigInteger)
    transfers: Mapped[int] = mapped_column(Integer)
