"""Monthly settlement statements (issue #6): closed months, statements, their day lines.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mykey.migrations.append_only import protect, unprotect

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TABLES = (
    "settlement_months",
    "settlement_ledger_closes",
    "settlement_statements",
    "settlement_statement_days",
)


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "settlement_months",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("ledgers", sa.Integer(), nullable=False),
        sa.Column("statements", sa.Integer(), nullable=False),
        sa.Column("closed_by", sa.String(length=128), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_settlement_months")),
    )
    op.create_table(
        "settlement_ledger_closes",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("ledger", sa.String(length=16), nullable=False),
        sa.Column("statements", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("month", "ledger", name=op.f("pk_settlement_ledger_closes")),
    )
    op.create_table(
        "settlement_statements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("municipality", sa.String(length=16), nullable=False),
        sa.Column("party_kind", sa.String(length=32), nullable=False),
        sa.Column("party_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", big_id, nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("debits", sa.BigInteger(), nullable=False),
        sa.Column("transfers", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("via_association", sa.BigInteger(), nullable=False),
        sa.Column("payable", sa.BigInteger(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=True),
        sa.Column("settlement_account_id", big_id, nullable=True),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_statements")),
        sa.UniqueConstraint(
            "month",
            "municipality",
            "party_kind",
            "party_id",
            name="uq_settlement_statements_month_municipality_party_kind_party_id",
        ),
    )
    op.create_index(
        "ix_settlement_statements_party",
        "settlement_statements",
        ["party_kind", "party_id", "month"],
    )
    op.create_index(
        "ix_settlement_statements_municipality", "settlement_statements", ["municipality", "month"]
    )
    op.create_table(
        "settlement_statement_days",
        sa.Column("statement_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("debits", sa.BigInteger(), nullable=False),
        sa.Column("transfers", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["settlement_statements.id"],
            name="fk_settlement_statement_days_statement_id_settlement_statements",
        ),
        sa.PrimaryKeyConstraint("statement_id", "day", name=op.f("pk_settlement_statement_days")),
    )
    protect(*TABLES)


def downgrade() -> None:
    unprotect(*TABLES)
    op.drop_table("settlement_statement_days")
    op.drop_index("ix_settlement_statements_municipality", table_name="settlement_statements")
    op.drop_index("ix_settlement_statements_party", table_name="settlement_statements")
    op.drop_table("settlement_statements")
    op.drop_table("settlement_ledger_closes")
    op.drop_table("settlement_months")
