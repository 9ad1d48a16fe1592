"""Payout bank accounts of shops and paying accounts of municipalities, for Zengin transfer
files (issue #6, R7.2). Append-only: a change is a new row.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mykey.migrations.append_only import protect, unprotect

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLES = ("shop_payout_accounts", "municipality_bank_accounts")


def _bank_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("bank_code", sa.String(length=4), nullable=False),
        sa.Column("bank_name", sa.String(length=15), nullable=False),
        sa.Column("branch_code", sa.String(length=3), nullable=False),
        sa.Column("branch_name", sa.String(length=15), nullable=False),
        sa.Column("deposit_type", sa.Integer(), nullable=False),
        sa.Column("account_number", sa.String(length=7), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "shop_payout_accounts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("shop_id", sa.String(length=16), nullable=False),
        *_bank_columns(),
        sa.Column("holder_name", sa.String(length=30), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_shop_payout_accounts_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_payout_accounts")),
    )
    op.create_index("ix_shop_payout_accounts_shop_id_id", "shop_payout_accounts", ["shop_id", "id"])
    op.create_table(
        "municipality_bank_accounts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("municipality", sa.String(length=6), nullable=False),
        sa.Column("requester_code", sa.String(length=10), nullable=False),
        sa.Column("requester_name", sa.String(length=40), nullable=False),
        *_bank_columns(),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["municipality"],
            ["municipalities.code"],
            name=op.f("fk_municipality_bank_accounts_municipality_municipalities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_municipality_bank_accounts")),
    )
    op.create_index(
        "ix_municipality_bank_accounts_municipality_id",
        "municipality_bank_accounts",
        ["municipality", "id"],
    )
    protect(*TABLES)


def downgrade() -> None:
    unprotect(*TABLES)
    op.drop_index(
        "ix_municipality_bank_accounts_municipality_id", table_name="municipality_bank_accounts"
    )
    op.drop_table("municipality_bank_accounts")
    op.drop_index("ix_shop_payout_accounts_shop_id_id", table_name="shop_payout_accounts")
    op.drop_table("shop_payout_accounts")
