"""Grant limits per person and period, and program budgets per fiscal year (issue #4).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("point_programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("annual_budget", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("grant_rules", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("limit", sa.String(length=8), nullable=False, server_default="none")
        )
    op.create_table(
        "grant_limit_uses",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("activity", sa.String(length=32), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=80), nullable=False),
        sa.Column("transfer_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint(
            "code", "activity", "mykey_id", "period", name=op.f("pk_grant_limit_uses")
        ),
    )
    op.create_table(
        "program_budget_uses",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("granted", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("code", "fiscal_year", name=op.f("pk_program_budget_uses")),
    )


def downgrade() -> None:
    op.drop_table("program_budget_uses")
    op.drop_table("grant_limit_uses")
    with op.batch_alter_table("grant_rules", schema=None) as batch_op:
        batch_op.drop_column("limit")
    with op.batch_alter_table("point_programs", schema=None) as batch_op:
        batch_op.drop_column("annual_budget")
