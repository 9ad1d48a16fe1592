"""Ranking prizes as vouchers (R4.5, issue #13 item 3): an award's prize vouchers and where
they are valid; vouchers name their award, and a prize voucher has no issuing shop.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ranking_award_prizes",
        sa.Column("award_id", sa.String(length=36), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("face_value", sa.BigInteger(), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=False),
        sa.Column("street_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["award_id"],
            ["ranking_awards.id"],
            name=op.f("fk_ranking_award_prizes_award_id_ranking_awards"),
        ),
        sa.PrimaryKeyConstraint("award_id", name=op.f("pk_ranking_award_prizes")),
    )
    op.create_table(
        "ranking_award_shops",
        sa.Column("award_id", sa.String(length=36), nullable=False),
        sa.Column("shop_id", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["award_id"],
            ["ranking_awards.id"],
            name=op.f("fk_ranking_award_shops_award_id_ranking_awards"),
        ),
        sa.PrimaryKeyConstraint("award_id", "shop_id", name=op.f("pk_ranking_award_shops")),
    )
    with op.batch_alter_table("vouchers") as batch:
        batch.alter_column("issuer_shop_id", existing_type=sa.String(length=16), nullable=True)
        batch.add_column(sa.Column("award_id", sa.String(length=36), nullable=True))
        batch.create_index("uq_vouchers_award_winner", ["award_id", "mykey_id", "seq"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("vouchers") as batch:
        batch.drop_index("uq_vouchers_award_winner")
        batch.drop_column("award_id")
    # the older schema has no voucher without an issuing shop: keep the rows, mark them
    op.execute("UPDATE vouchers SET issuer_shop_id = '' WHERE issuer_shop_id IS NULL")
    with op.batch_alter_table("vouchers") as batch:
        batch.alter_column("issuer_shop_id", existing_type=sa.String(length=16), nullable=False)
    op.drop_table("ranking_award_shops")
    op.drop_table("ranking_award_prizes")
