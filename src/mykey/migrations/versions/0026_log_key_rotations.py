"""The log's key history (issue #13): a rotation of the signing key is a record of the log.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mykey.migrations.append_only import protect, unprotect

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "history_key_rotations",
        sa.Column("id", BigId, autoincrement=False, nullable=False),
        sa.Column("old_key", sa.String(length=300), nullable=False),
        sa.Column("new_key", sa.String(length=300), nullable=False),
        sa.Column("salt_key_id", sa.String(length=64), nullable=False),
        sa.Column("old_signature", sa.String(length=100), nullable=False),
        sa.Column("new_signature", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_key_rotations")),
    )
    protect("history_key_rotations")
    # A witness reads the log's key history from its copy every round.
    op.create_index(
        "ix_witness_entries_rotations",
        "witness_entries",
        ["origin", "idx"],
        postgresql_where=sa.text("kind = 'key_rotation'"),
        sqlite_where=sa.text("kind = 'key_rotation'"),
    )


def downgrade() -> None:
    op.drop_index("ix_witness_entries_rotations", table_name="witness_entries")
    unprotect("history_key_rotations")
    op.drop_table("history_key_rotations")
