"""Witnesses (R8.2, R8.3): cosignatures and restores at the log; a witness's copy and alarms.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mykey.migrations.append_only import protect, unprotect

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TZ = sa.DateTime(timezone=True)
APPEND_ONLY = (
    "history_cosignatures",
    "history_restores",
    "witness_entries",
    "witness_nodes",
    "witness_checkpoints",
    "witness_alarms",
)


def upgrade() -> None:
    op.create_table(
        "history_cosignatures",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("witness", sa.String(length=200), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("cosigned_at", sa.BigInteger(), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("size", "witness", name=op.f("pk_history_cosignatures")),
    )
    op.create_table(
        "history_restores",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("restored_at", TZ, nullable=False),
        sa.Column("witness", sa.String(length=500), nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("record_id", sa.String(length=64), nullable=True),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("after", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_restores")),
    )
    op.create_table(
        "witness_logs",
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("origin", name=op.f("pk_witness_logs")),
    )
    op.create_table(
        "witness_entries",
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=True),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=True),
        sa.Column("row", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("origin", "idx", name=op.f("pk_witness_entries")),
    )
    op.create_table(
        "witness_nodes",
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("origin", "level", "idx", name=op.f("pk_witness_nodes")),
    )
    op.create_table(
        "witness_checkpoints",
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("cosigned_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("origin", "size", name=op.f("pk_witness_checkpoints")),
    )
    op.create_table(
        "witness_alarms",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("raised_at", TZ, nullable=False),
        sa.Column("problem", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("cosigned", sa.Text(), nullable=False),
        sa.Column("conflicting", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_witness_alarms")),
    )
    # Cosignatures, restores, a witness's copy, its cosigned checkpoints and its alarms are
    # evidence: never changed or removed (witness_logs holds the moving state).
    protect(*APPEND_ONLY)


def downgrade() -> None:
    unprotect(*APPEND_ONLY)
    for table in (
        "witness_alarms",
        "witness_checkpoints",
        "witness_nodes",
        "witness_entries",
        "witness_logs",
        "history_restores",
        "history_cosignatures",
    ):
        op.drop_table(table)
