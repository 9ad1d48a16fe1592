"""Correction cases with two-person approval, their ledger legs and claims (issue #4).

Revision ID: 0010
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('proposed', 'approved')"


def upgrade() -> None:
    op.create_table(
        "correction_cases",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("municipality", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("transfer_id", sa.String(length=36), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("wrong_mykey_id", sa.String(length=8), nullable=False),
        sa.Column("right_mykey_id", sa.String(length=8), nullable=True),
        sa.Column("reason_code", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("proposed_by", sa.String(length=128), nullable=False),
        sa.Column("proposal_key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("moved", sa.BigInteger(), nullable=False),
        sa.Column("funded", sa.BigInteger(), nullable=False),
        sa.Column("claimed", sa.BigInteger(), nullable=False),
        sa.Column("budget_returned", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correction_cases")),
        sa.UniqueConstraint(
            "proposed_by",
            "proposal_key",
            name=op.f("uq_correction_cases_proposed_by_proposal_key"),
        ),
    )
    op.create_index(
        "uq_correction_cases_active_transfer",
        "correction_cases",
        ["transfer_id"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
    op.create_index(
        "ix_correction_cases_municipality",
        "correction_cases",
        ["municipality", "proposed_at"],
    )
    op.create_table(
        "correction_legs",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("leg", sa.String(length=16), nullable=False),
        sa.Column("transfer_id", sa.String(length=36), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["correction_cases.id"],
            name=op.f("fk_correction_legs_case_id_correction_cases"),
        ),
        sa.PrimaryKeyConstraint("case_id", "leg", name=op.f("pk_correction_legs")),
    )
    op.create_table(
        "correction_claims",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("municipality", sa.String(length=6), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["correction_cases.id"],
            name=op.f("fk_correction_claims_case_id_correction_cases"),
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_correction_claims")),
    )


def downgrade() -> None:
    op.drop_table("correction_claims")
    op.drop_table("correction_legs")
    op.drop_index("ix_correction_cases_municipality", table_name="correction_cases")
    op.drop_index("uq_correction_cases_active_transfer", table_name="correction_cases")
    op.drop_table("correction_cases")
