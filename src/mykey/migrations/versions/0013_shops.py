"""Shops and facilities, shopping streets, counter payments (R6, issue #5 part A).

Revision ID: 0013
Revises: 0011
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shopping_streets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("municipality", sa.String(length=6), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shopping_streets")),
    )
    op.create_table(
        "shops",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("municipality", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("street_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["id"], ["providers.id"], name=op.f("fk_shops_id_providers")),
        sa.ForeignKeyConstraint(
            ["street_id"], ["shopping_streets.id"], name=op.f("fk_shops_street_id_shopping_streets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shops")),
    )
    op.create_table(
        "shop_accepts",
        sa.Column("shop_id", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_shop_accepts_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("shop_id", "code", name=op.f("pk_shop_accepts")),
    )
    op.create_table(
        "shop_payments",
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("shop_id", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("wallet_account_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("receipt_ref", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_shop_payments_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("transfer_id", name=op.f("pk_shop_payments")),
    )
    op.create_index("ix_shop_payments_shop_created", "shop_payments", ["shop_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_shop_payments_shop_created", table_name="shop_payments")
    op.drop_table("shop_payments")
    op.drop_table("shop_accepts")
    op.drop_table("shops")
    op.drop_table("shopping_streets")
