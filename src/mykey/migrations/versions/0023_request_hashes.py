"""One idempotency everywhere (issue #13, item 7): the hash of the whole request is stored with
the outcome of every keyed write whose table did not keep one (reserved-point assignments,
coupon orders, coupon redemptions), so that a key reused for another request is refused
instead of replaying the first answer. Rows made before this revision keep NULL: a retry of
one of them is answered `idempotency_key_reused` (nothing happens twice).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

COLUMNS = (
    ("reserved_assignments", "request_hash"),
    ("coupon_batches", "request_hash"),
    ("coupons", "redeem_hash"),
)


def upgrade() -> None:
    for table, column in COLUMNS:
        op.add_column(table, sa.Column(column, sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table, column in reversed(COLUMNS):
        # ALTER TABLE … DROP COLUMN on both engines (SQLite 3.35+): a batch copy of the table
        # would lose its append-only triggers.
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
