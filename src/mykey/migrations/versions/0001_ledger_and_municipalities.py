"""The ledger (ledgers, accounts, stripes, transfers, rejections, lots) and municipalities.

Transfers, lot uses and rejections are append-only: triggers refuse UPDATE and DELETE on
both engines, so a mistake can only be undone by a reversing transfer.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 12:37:48.568993
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mykey.migrations import append_only

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("ledger_transfers", "ledger_lot_uses", "ledger_rejections")


def upgrade() -> None:

    op.create_table(
        "ledger_ledgers",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_ledger_ledgers")),
    )
    op.create_table(
        "ledger_rejections",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("client_key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_rejections")),
        sa.UniqueConstraint(
            "actor", "client_key", name=op.f("uq_ledger_rejections_actor_client_key")
        ),
    )
    op.create_table(
        "municipalities",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("prefecture_code", sa.String(length=2), nullable=False),
        sa.Column("prefecture", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kana", sa.String(length=128), nullable=False),
        sa.Column("lat", sa.String(length=24), nullable=True),
        sa.Column("lng", sa.String(length=24), nullable=True),
        sa.Column("url", sa.String(length=400), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_municipalities")),
    )
    with op.batch_alter_table("municipalities", schema=None) as batch_op:
        batch_op.create_index(
            "ix_municipalities_prefecture", ["prefecture_code", "code"], unique=False
        )

    op.create_table(
        "ledger_accounts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ledger", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("guarded", sa.Boolean(), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "NOT guarded OR debits_posted + debits_pending <= credits_posted",
            name=op.f("ck_ledger_accounts_guard"),
        ),
        sa.CheckConstraint(
            "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0"
            " AND credits_pending >= 0",
            name=op.f("ck_ledger_accounts_counters"),
        ),
        sa.ForeignKeyConstraint(
            ["ledger"],
            ["ledger_ledgers.code"],
            name=op.f("fk_ledger_accounts_ledger_ledger_ledgers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("id", "ledger", name=op.f("uq_ledger_accounts_id_ledger")),
        sa.UniqueConstraint(
            "ledger", "kind", "owner", name=op.f("uq_ledger_accounts_ledger_kind_owner")
        ),
    )
    op.create_table(
        "ledger_account_stripes",
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("stripe", sa.SmallInteger(), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_account_stripes_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", "stripe", name=op.f("pk_ledger_account_stripes")),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ledger", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=False),
        sa.Column(
            "debit_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "credit_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("pending_id", sa.Uuid(), nullable=True),
        sa.Column("reverses_id", sa.Uuid(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("client_key", sa.String(length=128), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("debit_balance", sa.BigInteger(), nullable=True),
        sa.Column("credit_balance", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(phase = 'pending') = (expires_at IS NOT NULL)",
            name=op.f("ck_ledger_transfers_timeout"),
        ),
        sa.CheckConstraint(
            "(phase IN ('post', 'void')) = (pending_id IS NOT NULL)",
            name=op.f("ck_ledger_transfers_resolves"),
        ),
        sa.CheckConstraint(
            "phase IN ('single', 'pending', 'post', 'void')", name=op.f("ck_ledger_transfers_phase")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_transfers_amount_positive")),
        sa.CheckConstraint(
            "debit_account_id <> credit_account_id", name=op.f("ck_ledger_transfers_two_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id", "ledger"],
            ["ledger_accounts.id", "ledger_accounts.ledger"],
            name=op.f("fk_ledger_transfers_credit_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["debit_account_id", "ledger"],
            ["ledger_accounts.id", "ledger_accounts.ledger"],
            name=op.f("fk_ledger_transfers_debit_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["pending_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_ledger_transfers_pending_id_ledger_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_ledger_transfers_reverses_id_ledger_transfers"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_transfers")),
        sa.UniqueConstraint(
            "actor", "client_key", name=op.f("uq_ledger_transfers_actor_client_key")
        ),
        sa.UniqueConstraint("id", name=op.f("uq_ledger_transfers_id")),
        sa.UniqueConstraint("pending_id", name=op.f("uq_ledger_transfers_pending_id")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_ledger_transfers_reverses_id")),
    )
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_transfers_credit", ["credit_account_id", "seq"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_transfers_debit", ["debit_account_id", "seq"], unique=False
        )

    op.create_table(
        "ledger_lots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ledger", sa.String(length=16), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("funding", sa.String(length=32), nullable=False),
        sa.Column(
            "source_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("original", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("original > 0", name=op.f("ck_ledger_lots_original_positive")),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= original", name=op.f("ck_ledger_lots_remaining")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_lots_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_ledger_lots_transfer_id_ledger_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_lots")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_ledger_lots_transfer_id")),
    )
    with op.batch_alter_table("ledger_lots", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_lots_expiry", ["expires_on"], unique=False)
        batch_op.create_index(
            "ix_ledger_lots_fifo", ["account_id", "expires_on", "id"], unique=False
        )

    op.create_table(
        "ledger_lot_uses",
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("lot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["ledger_lots.id"], name=op.f("fk_ledger_lot_uses_lot_id_ledger_lots")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_ledger_lot_uses_transfer_id_ledger_transfers"),
        ),
        sa.PrimaryKeyConstraint("transfer_id", "lot_id", name=op.f("pk_ledger_lot_uses")),
    )

    append_only.create_function()
    append_only.protect(*APPEND_ONLY)


def downgrade() -> None:
    append_only.unprotect(*APPEND_ONLY)

    op.drop_table("ledger_lot_uses")
    with op.batch_alter_table("ledger_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_lots_fifo")
        batch_op.drop_index("ix_ledger_lots_expiry")

    op.drop_table("ledger_lots")
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transfers_debit")
        batch_op.drop_index("ix_ledger_transfers_credit")

    op.drop_table("ledger_transfers")
    op.drop_table("ledger_account_stripes")
    op.drop_table("ledger_accounts")
    with op.batch_alter_table("municipalities", schema=None) as batch_op:
        batch_op.drop_index("ix_municipalities_prefecture")

    op.drop_table("municipalities")
    op.drop_table("ledger_rejections")
    op.drop_table("ledger_ledgers")
    append_only.drop_function()
