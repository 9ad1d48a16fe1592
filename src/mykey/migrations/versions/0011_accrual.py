"""Accumulating programs (R4.3) and rankings (R4.5) (issue #4).

Revision ID: 0011
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("point_programs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "accrual_default", sa.String(length=8), nullable=False, server_default="donation"
            )
        )
    with op.batch_alter_table("grant_rules", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("accrues", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index(
        "ix_ledger_transfers_ledger_kind_created",
        "ledger_transfers",
        ["ledger", "kind", "created_at"],
    )
    op.create_table(
        "accruals",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", "fiscal_year", "mykey_id", name=op.f("pk_accruals")),
        sa.UniqueConstraint("account_id", name=op.f("uq_accruals_account_id")),
    )
    op.create_table(
        "accrual_choices",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("choice", sa.String(length=8), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", "mykey_id", name=op.f("pk_accrual_choices")),
    )
    op.create_table(
        "accrual_closings",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("transfer_id", sa.String(length=36), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_by", sa.String(length=128), nullable=True),
        sa.Column("paid_reference", sa.String(length=100), nullable=True),
        sa.Column("paid_transfer_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint(
            "code", "fiscal_year", "mykey_id", name=op.f("pk_accrual_closings")
        ),
    )
    op.create_table(
        "ranking_awards",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("activity", sa.String(length=32), nullable=True),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=False),
        sa.Column("top", sa.Integer(), nullable=False),
        sa.Column("minimum", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ranking_awards")),
    )
    op.create_table(
        "ranking_award_entries",
        sa.Column("award_id", sa.String(length=36), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("earned", sa.BigInteger(), nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["award_id"],
            ["ranking_awards.id"],
            name=op.f("fk_ranking_award_entries_award_id_ranking_awards"),
        ),
        sa.PrimaryKeyConstraint("award_id", "rank", name=op.f("pk_ranking_award_entries")),
    )


def downgrade() -> None:
    op.drop_table("ranking_award_entries")
    op.drop_table("ranking_awards")
    op.drop_table("accrual_closings")
    op.drop_table("accrual_choices")
    op.drop_table("accruals")
    op.drop_index("ix_ledger_transfers_ledger_kind_created", table_name="ledger_transfers")
    with op.batch_alter_table("grant_rules", schema=None) as batch_op:
        batch_op.drop_column("accrues")
    with op.batch_alter_table("point_programs", schema=None) as batch_op:
        batch_op.drop_column("accrual_default")
