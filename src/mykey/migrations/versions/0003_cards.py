"""Cards: single-use challenges, failed proof attempts, revocations (issue #3).

Challenge uses and proof attempts are append-only, as the ledger's transfers are.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 13:52:43.702345
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mykey.migrations import append_only

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APPEND_ONLY = ("card_challenge_uses", "card_proof_attempts")


def upgrade() -> None:

    op.create_table(
        "card_challenges",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("nonce", sa.LargeBinary(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_challenges")),
    )
    op.create_table(
        "card_proof_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("challenge_id", sa.String(length=36), nullable=True),
        sa.Column("card_key", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_proof_attempts")),
    )
    with op.batch_alter_table("card_proof_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_card_proof_attempts_card_key", ["card_key", "id"], unique=False)

    op.create_table(
        "card_revocations",
        sa.Column("card_key", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("card_key", name=op.f("pk_card_revocations")),
    )
    op.create_table(
        "card_challenge_uses",
        sa.Column("challenge_id", sa.String(length=36), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["challenge_id"],
            ["card_challenges.id"],
            name=op.f("fk_card_challenge_uses_challenge_id_card_challenges"),
        ),
        sa.PrimaryKeyConstraint("challenge_id", name=op.f("pk_card_challenge_uses")),
    )
    append_only.protect(*APPEND_ONLY)


def downgrade() -> None:
    append_only.unprotect(*APPEND_ONLY)

    op.drop_table("card_challenge_uses")
    op.drop_table("card_revocations")
    with op.batch_alter_table("card_proof_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_card_proof_attempts_card_key")

    op.drop_table("card_proof_attempts")
    op.drop_table("card_challenges")
