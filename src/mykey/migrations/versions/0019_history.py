"""The tamper-evident history (R8): leaves, subtree hashes, checkpoints.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mykey.migrations.append_only import protect, unprotect

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "history_leaves",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_leaves")),
    )
    op.create_index(
        "uq_history_leaves_record", "history_leaves", ["kind", "record_id"], unique=True
    )
    op.create_index("uq_history_leaves_idx", "history_leaves", ["idx"], unique=True)
    op.create_index(
        "ix_history_leaves_queued",
        "history_leaves",
        ["id"],
        postgresql_where=sa.text("idx IS NULL"),
        sqlite_where=sa.text("idx IS NULL"),
    )
    op.create_table(
        "history_nodes",
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_history_nodes")),
    )
    op.create_table(
        "history_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_history_checkpoints")),
    )
    # Subtree hashes and signed checkpoints are never changed or removed once written.
    protect("history_nodes", "history_checkpoints")


def downgrade() -> None:
    unprotect("history_nodes", "history_checkpoints")
    op.drop_table("history_checkpoints")
    op.drop_table("history_nodes")
    op.drop_index("ix_history_leaves_queued", table_name="history_leaves")
    op.drop_index("uq_history_leaves_idx", table_name="history_leaves")
    op.drop_index("uq_history_leaves_record", table_name="history_leaves")
    op.drop_table("history_leaves")
