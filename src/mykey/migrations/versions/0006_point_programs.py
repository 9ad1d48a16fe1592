"""Point programs and their grant rules (issue #4).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 14:26:04.066431
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "point_programs",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("point_name", sa.String(length=100), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("validity", sa.Text(), nullable=False),
        sa.Column("usable_at", sa.Text(), nullable=False),
        sa.Column("premium_permille", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_point_programs")),
    )
    op.create_table(
        "grant_rules",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("activity", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["code"], ["point_programs.code"], name=op.f("fk_grant_rules_code_point_programs")
        ),
        sa.PrimaryKeyConstraint("code", "activity", name=op.f("pk_grant_rules")),
    )


def downgrade() -> None:

    op.drop_table("grant_rules")
    op.drop_table("point_programs")
