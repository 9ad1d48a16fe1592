"""Renewed cards replace older ones (issue #13, item 9): `card_replacements`.

A card is replaced when a newer card is linked to the same MyKey ID; from then (plus the grace
period, `MYKEY_REPLACED_CARD_GRACE_HOURS`) it is refused everywhere. Cards already linked before
this migration are replaced the same way: each card by the next card its MyKey ID linked, at
the time that card was linked. Append-only.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

from mykey.migrations import append_only

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

APPEND_ONLY = ("card_replacements",)


def upgrade() -> None:
    table = op.create_table(
        "card_replacements",
        sa.Column("card_key", sa.String(length=64), nullable=False),
        sa.Column("replaced_by", sa.String(length=64), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_key"],
            ["resident_cards.card_key"],
            name=op.f("fk_card_replacements_card_key_resident_cards"),
        ),
        sa.ForeignKeyConstraint(
            ["replaced_by"],
            ["resident_cards.card_key"],
            name=op.f("fk_card_replacements_replaced_by_resident_cards"),
        ),
        sa.PrimaryKeyConstraint("card_key", name=op.f("pk_card_replacements")),
    )
    cards = sa.table(
        "resident_cards",
        sa.column("card_key", sa.String()),
        sa.column("mykey_id", sa.String()),
        sa.column("linked_at", sa.DateTime(timezone=True)),
    )
    rows = op.get_bind().execute(sa.select(cards.c.mykey_id, cards.c.card_key, cards.c.linked_at))
    by_id: dict[str, list[tuple[datetime, str]]] = {}
    for mykey_id, card_key, linked_at in rows:
        by_id.setdefault(mykey_id, []).append((linked_at, card_key))
    replaced: list[dict[str, object]] = []
    for linked in by_id.values():
        for at, card_key in linked:
            later = [(t, k) for t, k in linked if t > at]  # the next card linked after it
            if later:
                replaced_at, replaced_by = min(later)
                replaced.append(
                    {"card_key": card_key, "replaced_by": replaced_by, "replaced_at": replaced_at}
                )
    if replaced:
        op.bulk_insert(table, replaced)
    append_only.protect(*APPEND_ONLY)


def downgrade() -> None:
    append_only.unprotect(*APPEND_ONLY)
    op.drop_table("card_replacements")
