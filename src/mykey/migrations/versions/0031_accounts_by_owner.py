"""A resident's accounts by owner (issue #15, found by `make bench-scale`).

My Page's points and history, receipts and reserved points look up a resident's wallets by
owner and kind in every ledger at once; the only key on owners led with the ledger
(`ledger, kind, owner`), so that look-up read every account: 45 ms a page at 1,000,000
wallets, growing with the country. An index on `(owner, kind)` makes it a few index pages.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ledger_accounts_owner_kind", "ledger_accounts", ["owner", "kind"])


def downgrade() -> None:
    op.drop_index("ix_ledger_accounts_owner_kind", table_name="ledger_accounts")
