"""A witness finds an entry by its record (issue #13 review): it refuses a log that numbers
one record twice, so it looks up every new entry's record in its copy.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not unique: a copy made before this check may already hold a record twice; the witness
    # refuses to add another, and the restore reports it.
    op.create_index("ix_witness_entries_record", "witness_entries", ["origin", "kind", "record_id"])


def downgrade() -> None:
    op.drop_index("ix_witness_entries_record", table_name="witness_entries")
