"""Settlement tables: closed months, per-ledger close markers, statements and their day lines;
and the bank accounts money moves between.

Statement rows are written once by `statements.close_month` and never changed (triggers refuse
UPDATE and DELETE, as on the ledger's own tables): a closed month is never changed. The bank
account tables are append-only too: a change is a new row, the newest row applies, and the old
rows stay for audit.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
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


class ShopPayoutAccount(Base):
    """A version of a shop's payout account (振込先口座); kana names in half-width form."""

    __tablename__ = "shop_payout_accounts"
    __table_args__ = (Index("ix_shop_payout_accounts_shop_id_id", "shop_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(String(16), ForeignKey("shops.id"))
    bank_code: Mapped[str] = mapped_column(String(4))
    bank_name: Mapped[str] = mapped_column(String(15))
    branch_code: Mapped[str] = mapped_column(String(3))
    branch_name: Mapped[str] = mapped_column(String(15))
    deposit_type: Mapped[int] = mapped_column(Integer)  # 1 普通, 2 当座, 4 貯蓄, 9 その他
    account_number: Mapped[str] = mapped_column(String(7))
    holder_name: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))


class MunicipalityBankAccount(Base):
    """A version of a municipality's paying account (振込依頼人) with its bank's requester
    code (委託者コード)."""

    __tablename__ = "municipality_bank_accounts"
    __table_args__ = (Index("ix_municipality_bank_accounts_municipality_id", "municipality", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    municipality: Mapped[str] = mapped_column(String(6), ForeignKey("municipalities.code"))
    requester_code: Mapped[str] = mapped_column(String(10))
    requester_name: Mapped[str] = mapped_column(String(40))
    bank_code: Mapped[str] = mapped_column(String(4))
    bank_name: Mapped[str] = mapped_column(String(15))
    branch_code: Mapped[str] = mapped_column(String(3))
    branch_name: Mapped[str] = mapped_column(String(15))
    deposit_type: Mapped[int] = mapped_column(Integer)  # 1 普通, 2 当座, 9 その他
    account_number: Mapped[str] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
