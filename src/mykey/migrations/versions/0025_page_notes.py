"""Page session notes: what a page shows after a form (post/redirect/get), kept server-side
for a short while and never in the URL (issue #13).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("page_sessions") as batch:
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("page_sessions") as batch:
        batch.drop_column("notes")
