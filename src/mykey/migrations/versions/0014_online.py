"""Online payments: shops' signing keys, authorizations and captures, the operating share
(R6.6, R7.4; issue #5).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("point_programs") as batch:
        batch.add_column(
            sa.Column("online_fee_permille", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "online_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("shop_id", sa.String(length=16), nullable=False),
        sa.Column("secret_box", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_online_keys_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_online_keys_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_online_keys")),
    )
    op.create_table(
        "online_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("shop_id", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("wallet_account_id", sa.BigInteger(), nullable=False),
        sa.Column("order_ref", sa.String(length=64), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capture_id", sa.Uuid(), nullable=True),
        sa.Column("captured", sa.BigInteger(), nullable=False),
        sa.Column("fee_permille", sa.Integer(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("fee_returned", sa.BigInteger(), nullable=False),
        sa.Column("voided", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_online_orders_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_online_orders")),
        sa.UniqueConstraint("capture_id", name=op.f("uq_online_orders_capture_id")),
    )
    op.create_index(
        "ix_online_orders_shop_created", "online_orders", ["shop_id", "created_at"], unique=False
    )
    op.create_table(
        "online_refunds",
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("fee_back", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["online_orders.id"],
            name=op.f("fk_online_refunds_order_id_online_orders"),
        ),
        sa.PrimaryKeyConstraint("transfer_id", name=op.f("pk_online_refunds")),
    )
    op.create_index(
        op.f("ix_online_refunds_order_id"), "online_refunds", ["order_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_online_refunds_order_id"), table_name="online_refunds")
    op.drop_table("online_refunds")
    op.drop_index("ix_online_orders_shop_created", table_name="online_orders")
    op.drop_table("online_orders")
    op.drop_table("online_keys")
    with op.batch_alter_table("point_programs") as batch:
        batch.drop_column("online_fee_permille")
