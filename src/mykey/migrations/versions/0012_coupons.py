"""Coupon codes (R5.2 methods 2-1 paper, 2-2 e-mail, 2-3 URL).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupon_batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("partner", sa.String(length=32), nullable=False),
        sa.Column("delivery", sa.String(length=8), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("client_key", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner"], ["partners.id"], name=op.f("fk_coupon_batches_partner_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_batches")),
        sa.UniqueConstraint("actor", "client_key", name=op.f("uq_coupon_batches_actor_client_key")),
    )
    op.create_index(op.f("ix_coupon_batches_partner"), "coupon_batches", ["partner"], unique=False)
    op.create_table(
        "coupons",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("code_box", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("redeemed_actor", sa.String(length=128), nullable=True),
        sa.Column("redeem_key", sa.String(length=128), nullable=True),
        sa.Column("conversion_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["coupon_batches.id"], name=op.f("fk_coupons_batch_id_coupon_batches")
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_coupons")),
        sa.UniqueConstraint("batch_id", "serial", name=op.f("uq_coupons_batch_id_serial")),
        sa.UniqueConstraint(
            "redeemed_actor", "redeem_key", name=op.f("uq_coupons_redeemed_actor_redeem_key")
        ),
    )
    op.create_table(
        "coupon_failures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_failures")),
    )
    op.create_index(
        "ix_coupon_failures_mykey_id_at", "coupon_failures", ["mykey_id", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_coupon_failures_mykey_id_at", table_name="coupon_failures")
    op.drop_table("coupon_failures")
    op.drop_table("coupons")
    op.drop_index(op.f("ix_coupon_batches_partner"), table_name="coupon_batches")
    op.drop_table("coupon_batches")
