"""Point vouchers (ポイント券) and Tenri's receipt vouchers (issue #5).

Revision ID: 0015
Revises: 0013
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vouchers",
        sa.Column("number", sa.String(length=13), nullable=False),
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("program", sa.String(length=16), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=True),
        sa.Column("wallet_account_id", sa.BigInteger(), nullable=True),
        sa.Column("issue_transfer_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("face_value", sa.BigInteger(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("issuer_shop_id", sa.String(length=16), nullable=False),
        sa.Column("shop_id", sa.String(length=16), nullable=True),
        sa.Column("street_id", sa.String(length=32), nullable=True),
        sa.Column("receipt_shop_id", sa.String(length=16), nullable=True),
        sa.Column("receipt_ref", sa.String(length=64), nullable=True),
        sa.Column("receipt_yen", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("redeemed_shop_id", sa.String(length=16), nullable=True),
        sa.Column("closing_transfer_id", sa.Uuid(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prints", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_vouchers")),
        sa.UniqueConstraint("receipt_shop_id", "receipt_ref", name="uq_vouchers_receipt"),
    )
    op.create_index("ix_vouchers_status_valid_until", "vouchers", ["status", "valid_until"])
    op.create_index("ix_vouchers_issue_transfer", "vouchers", ["issue_transfer_id"])


def downgrade() -> None:
    op.drop_index("ix_vouchers_issue_transfer", table_name="vouchers")
    op.drop_index("ix_vouchers_status_valid_until", table_name="vouchers")
    op.drop_table("vouchers")
