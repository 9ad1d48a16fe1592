"""Gift certificates (商品券, R6.5): programmes per municipality; vouchers name theirs.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gift_programs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("denomination", sa.BigInteger(), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=False),
        sa.Column("street_id", sa.String(length=32), nullable=True),
        sa.Column("max_sheets", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["code"], ["point_programs.code"], name=op.f("fk_gift_programs_code_point_programs")
        ),
        sa.ForeignKeyConstraint(
            ["street_id"],
            ["shopping_streets.id"],
            name=op.f("fk_gift_programs_street_id_shopping_streets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_programs")),
    )
    op.create_index("ix_gift_programs_code", "gift_programs", ["code"])
    with op.batch_alter_table("vouchers") as batch:
        batch.add_column(sa.Column("gift_program_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vouchers") as batch:
        batch.drop_column("gift_program_id")
    op.drop_index("ix_gift_programs_code", table_name="gift_programs")
    op.drop_table("gift_programs")
