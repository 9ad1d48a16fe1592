"""The job queue (issue #16): jobs, periodic schedules, and the files bulk grants run on.

Bulk grants ran in a thread of the web process that received them, with their progress in its
memory; the daily work ran in the serving process. Now a request enqueues a job in its own
transaction, any worker (`mykey worker`, or the serving process on SQLite) runs it, and its
progress and result are in the database. A bulk grant's file is kept with the job, because the
worker that runs it is not the process that received it.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(120)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("phase", sa.String(20)),
        sa.Column("done", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("result", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_jobs_due", "jobs", ["status", "run_after"])
    op.create_table(
        "job_schedules",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_job", sa.String(36)),
    )
    op.create_table(
        "grant_job_files",
        sa.Column("job_id", sa.String(36), sa.ForeignKey("grant_jobs.id"), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("grant_job_files")
    op.drop_table("job_schedules")
    op.drop_index("ix_jobs_due", table_name="jobs")
    op.drop_table("jobs")
