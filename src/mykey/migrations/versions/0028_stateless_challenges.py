"""Stateless card challenges (issue #14): a challenge is a token signed by the server, no
longer a `card_challenges` row, so its single use (`card_challenge_uses`, keyed by the id inside
the token) no longer refers to that table. `card_challenges` stays, with what it holds, and is
no longer written.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

from mykey.migrations import append_only

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

TABLE = "card_challenge_uses"
FK = "fk_card_challenge_uses_challenge_id_card_challenges"


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.drop_constraint(FK, TABLE, type_="foreignkey")
        return
    # SQLite rebuilds the table: its append-only triggers go with it, and are put back.
    append_only.unprotect(TABLE)
    with op.batch_alter_table(TABLE, recreate="always") as batch:
        batch.drop_constraint(FK, type_="foreignkey")
    append_only.protect(TABLE)


def downgrade() -> None:
    # Only where every use names a `card_challenges` row (no stateless challenge used yet).
    if op.get_context().dialect.name == "postgresql":
        op.create_foreign_key(FK, TABLE, "card_challenges", ["challenge_id"], ["id"])
        return
    append_only.unprotect(TABLE)
    with op.batch_alter_table(TABLE, recreate="always") as batch:
        batch.create_foreign_key(FK, "card_challenges", ["challenge_id"], ["id"])
    append_only.protect(TABLE)
