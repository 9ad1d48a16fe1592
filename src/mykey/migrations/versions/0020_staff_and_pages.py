"""Staff accounts, their login failures, browser sessions of the web pages (with their CSRF
token), and the online-shop picks of Point Navi (issue #8, R9.5).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_accounts",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("municipality", sa.String(length=6), nullable=True),
        sa.Column("partner_id", sa.String(length=32), nullable=True),
        sa.Column("shop_id", sa.String(length=16), nullable=True),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("disabled_at", AT, nullable=True),
        sa.PrimaryKeyConstraint("username", name="pk_staff_accounts"),
    )
    op.create_table(
        "staff_login_failures",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("at", AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_login_failures"),
    )
    op.create_index("ix_staff_login_failures_username", "staff_login_failures", ["username", "at"])
    op.create_index("ix_staff_login_failures_client", "staff_login_failures", ["client", "at"])
    op.create_table(
        "page_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("staff_username", sa.String(length=64), nullable=True),
        sa.Column("resident_session", sa.String(length=64), nullable=True),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("expires_at", AT, nullable=False),
        sa.Column("ended_at", AT, nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_username"],
            ["staff_accounts.username"],
            name="fk_page_sessions_staff_username_staff_accounts",
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_page_sessions"),
    )
    op.create_table(
        "municipality_picks",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("shop", sa.String(length=200), nullable=False),
        sa.Column("price_yen", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.String(length=400), nullable=True),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", AT, nullable=False),
        sa.PrimaryKeyConstraint("code", "position", name="pk_municipality_picks"),
    )


def downgrade() -> None:
    op.drop_table("municipality_picks")
    op.drop_table("page_sessions")
    op.drop_index("ix_staff_login_failures_client", table_name="staff_login_failures")
    op.drop_index("ix_staff_login_failures_username", table_name="staff_login_failures")
    op.drop_table("staff_login_failures")
    op.drop_table("staff_accounts")
