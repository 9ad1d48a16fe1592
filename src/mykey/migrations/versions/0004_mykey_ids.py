"""MyKey IDs (issue #3): residents, their cards, sessions, failed logins.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 13:58:29.502691
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "login_failures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("mykey_id", sa.String(length=16), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index("ix_login_failures_client", ["client", "at"], unique=False)
        batch_op.create_index("ix_login_failures_mykey_id", ["mykey_id", "at"], unique=False)

    op.create_table(
        "residents",
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mykey_id", name=op.f("pk_residents")),
    )
    op.create_table(
        "resident_cards",
        sa.Column("card_key", sa.String(length=64), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mykey_id"], ["residents.mykey_id"], name=op.f("fk_resident_cards_mykey_id_residents")
        ),
        sa.PrimaryKeyConstraint("card_key", name=op.f("pk_resident_cards")),
    )
    with op.batch_alter_table("resident_cards", schema=None) as batch_op:
        batch_op.create_index("ix_resident_cards_mykey_id", ["mykey_id"], unique=False)

    op.create_table(
        "resident_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["mykey_id"],
            ["residents.mykey_id"],
            name=op.f("fk_resident_sessions_mykey_id_residents"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_resident_sessions")),
    )
    with op.batch_alter_table("resident_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_resident_sessions_mykey_id", ["mykey_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("resident_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_resident_sessions_mykey_id")

    op.drop_table("resident_sessions")
    with op.batch_alter_table("resident_cards", schema=None) as batch_op:
        batch_op.drop_index("ix_resident_cards_mykey_id")

    op.drop_table("resident_cards")
    op.drop_table("residents")
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failures_mykey_id")
        batch_op.drop_index("ix_login_failures_client")

    op.drop_table("login_failures")
