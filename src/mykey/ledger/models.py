"""The ledger's tables: ledgers, accounts (and their stripes), transfers, rejections, lots.

Shaped after TigerBeetle inside SQL (research/anchors-ledger.md §6): a transfer moves one
positive integer amount from one account to another of the same ledger; accounts carry
posted and pending debit and credit counters; guarded accounts (wallets) may never have
debits above credits, which a CHECK enforces as the last line of defence. Transfers, lot uses
and rejections are never updated or deleted (triggers in the migration).
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from mykey.db import Base, UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class LedgerRow(Base):
    __tablename__ = "ledger_ledgers"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccountRow(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("ledger", "kind", "owner"),
        UniqueConstraint("id", "ledger"),
        # a resident's wallets in every ledger (My Page, receipts): migration 0031
        Index("ix_ledger_accounts_owner_kind", "owner", "kind"),
        CheckConstraint(
            "NOT guarded OR debits_posted + debits_pending <= credits_posted", name="guard"
        ),
        CheckConstraint(
            "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0"
            " AND credits_pending >= 0",
            name="counters",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ledger: Mapped[str] = mapped_column(String(16), ForeignKey("ledger_ledgers.code"))
    kind: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(128))
    guarded: Mapped[bool] = mapped_column(Boolean)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccountStripeRow(Base):
    """Counters of an unguarded (possibly hot) account, spread over stripes.

    A municipality's budget or a big shop is hit by every grant or payment; updating one row
    would serialise them all. Unguarded accounts never need a check, so each transfer adds to
    one of N stripes chosen from its id, and a balance is the sum of the stripes.
    """

    __tablename__ = "ledger_account_stripes"

    account_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("ledger_accounts.id"), primary_key=True
    )
    stripe: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)


class TransferRow(Base):
    __tablename__ = "ledger_transfers"
    __table_args__ = (
        UniqueConstraint("actor", "client_key"),
        ForeignKeyConstraint(
            ["debit_account_id", "ledger"], ["ledger_accounts.id", "ledger_accounts.ledger"]
        ),
        ForeignKeyConstraint(
            ["credit_account_id", "ledger"], ["ledger_accounts.id", "ledger_accounts.ledger"]
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="two_accounts"),
        CheckConstraint("phase IN ('single', 'pending', 'post', 'void')", name="phase"),
        CheckConstraint("(phase = 'pending') = (expires_at IS NOT NULL)", name="timeout"),
        CheckConstraint("(phase IN ('post', 'void')) = (pending_id IS NOT NULL)", name="resolves"),
        Index("ix_ledger_transfers_debit", "debit_account_id", "seq"),
        Index("ix_ledger_transfers_credit", "credit_account_id", "seq"),
        # a town's grants (or any kind) over a period, for rankings
        Index("ix_ledger_transfers_ledger_kind_created", "ledger", "kind", "created_at"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[UUID] = mapped_column(Uuid, unique=True)
    ledger: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    phase: Mapped[str] = mapped_column(String(8))
    debit_account_id: Mapped[int] = mapped_column(BigId)
    credit_account_id: Mapped[int] = mapped_column(BigId)
    amount: Mapped[int] = mapped_column(BigInteger)
    # A post or void names its pending transfer; unique, so a pending resolves once.
    pending_id: Mapped[UUID | None] = mapped_column(
        Uuid, ForeignKey("ledger_transfers.id"), unique=True
    )
    # A reversal names what it reverses; unique, so nothing is reversed twice.
    reverses_id: Mapped[UUID | None] = mapped_column(
        Uuid, ForeignKey("ledger_transfers.id"), unique=True
    )
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    client_key: Mapped[str | None] = mapped_column(String(128))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    meta: Mapped[str] = mapped_column("metadata", Text, default="{}")
    debit_balance: Mapped[int | None] = mapped_column(BigInteger)
    credit_balance: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RejectionRow(Base):
    """A refused keyed request: a retry with the same key replays the refusal, never succeeds."""

    __tablename__ = "ledger_rejections"
    __table_args__ = (UniqueConstraint("actor", "client_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(128))
    client_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LotRow(Base):
    """Where a wallet's points came from (funding source) and when they expire."""

    __tablename__ = "ledger_lots"
    __table_args__ = (
        CheckConstraint("original > 0", name="original_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= original", name="remaining"),
        Index("ix_ledger_lots_fifo", "account_id", "expires_on", "id"),
        Index("ix_ledger_lots_expiry", "expires_on"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ledger: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"))
    transfer_id: Mapped[UUID] = mapped_column(Uuid, ForeignKey("ledger_transfers.id"), unique=True)
    funding: Mapped[str] = mapped_column(String(32))
    source_account_id: Mapped[int] = mapped_column(BigId)
    expires_on: Mapped[date] = mapped_column(Date)
    original: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LotUseRow(Base):
    """What one debit took from one lot (positive), or what a void or reversal put back."""

    __tablename__ = "ledger_lot_uses"

    transfer_id: Mapped[UUID] = mapped_column(
        Uuid, ForeignKey("ledger_transfers.id"), primary_key=True
    )
    lot_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_lots.id"), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)
