"""Bulk grant jobs and their refused rows (issue #4).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grant_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("client_key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grant_jobs")),
        sa.UniqueConstraint("actor", "client_key", name=op.f("uq_grant_jobs_actor_client_key")),
    )
    op.create_index(op.f("ix_grant_jobs_code"), "grant_jobs", ["code"])
    op.create_table(
        "grant_job_refusals",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("mykey_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("message_ja", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["grant_jobs.id"], name=op.f("fk_grant_job_refusals_job_id_grant_jobs")
        ),
        sa.PrimaryKeyConstraint("job_id", "line", name=op.f("pk_grant_job_refusals")),
    )


def downgrade() -> None:
    op.drop_table("grant_job_refusals")
    op.drop_index(op.f("ix_grant_jobs_code"), table_name="grant_jobs")
    op.drop_table("grant_jobs")
