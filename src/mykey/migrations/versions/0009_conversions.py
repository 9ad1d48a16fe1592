"""Partners and agreements, conversions, premium budgets, reserved points (issue #4, R5, R3.3).

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mykey.migrations.append_only import protect, unprotect

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

APPEND_ONLY = ("partner_agreements", "conversions", "reserved_assignments")


def upgrade() -> None:
    with op.batch_alter_table("point_programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("premium_budget", sa.BigInteger(), nullable=True))
    op.create_table(
        "partners",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("methods", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partners")),
    )
    op.create_table(
        "partner_agreements",
        sa.Column("partner", sa.String(length=32), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("rate_units", sa.BigInteger(), nullable=False),
        sa.Column("rate_points", sa.BigInteger(), nullable=False),
        sa.Column("minimum", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("daily_limit", sa.BigInteger(), nullable=True),
        sa.Column("partner_daily_limit", sa.BigInteger(), nullable=True),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner"], ["partners.id"], name=op.f("fk_partner_agreements_partner_partners")
        ),
        sa.PrimaryKeyConstraint("partner", "effective_from", name=op.f("pk_partner_agreements")),
    )
    op.create_table(
        "partner_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("partner", sa.String(length=32), nullable=False),
        sa.Column("secret_box", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_partner_keys_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["partner"], ["partners.id"], name=op.f("fk_partner_keys_partner_partners")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_partner_keys")),
    )
    op.create_table(
        "partner_signatures",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "signature", name=op.f("pk_partner_signatures")),
    )
    op.create_table(
        "conversions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("client_key", sa.String(length=128), nullable=False),
        sa.Column("partner", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("service_id", sa.String(length=128), nullable=True),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("premium", sa.BigInteger(), nullable=False),
        sa.Column("municipality", sa.String(length=6), nullable=True),
        sa.Column("agreement_from", sa.Date(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("premium_transfer_id", sa.Uuid(), nullable=True),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner"], ["partners.id"], name=op.f("fk_conversions_partner_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversions")),
        sa.UniqueConstraint("actor", "client_key", name=op.f("uq_conversions_actor_client_key")),
    )
    op.create_index("ix_conversions_partner_created_at", "conversions", ["partner", "created_at"])
    op.create_index("ix_conversions_mykey_id", "conversions", ["mykey_id"])
    op.create_table(
        "conversion_daily_uses",
        sa.Column("partner", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("partner", "scope", "day", name=op.f("pk_conversion_daily_uses")),
    )
    op.create_table(
        "premium_uses",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("granted", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("code", "fiscal_year", name=op.f("pk_premium_uses")),
    )
    op.create_table(
        "resident_point_settings",
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("default_municipality", sa.String(length=6), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mykey_id"],
            ["residents.mykey_id"],
            name=op.f("fk_resident_point_settings_mykey_id_residents"),
        ),
        sa.PrimaryKeyConstraint("mykey_id", name=op.f("pk_resident_point_settings")),
    )
    op.create_table(
        "reserved_assignments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("assignment_id", sa.Uuid(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("client_key", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("partner", sa.String(length=32), nullable=False),
        sa.Column("municipality", sa.String(length=6), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("premium", sa.BigInteger(), nullable=False),
        sa.Column("out_transfer_id", sa.Uuid(), nullable=False),
        sa.Column("in_transfer_id", sa.Uuid(), nullable=False),
        sa.Column("premium_transfer_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reserved_assignments")),
        sa.UniqueConstraint(
            "actor", "client_key", "seq", name=op.f("uq_reserved_assignments_actor_client_key_seq")
        ),
    )
    op.create_index("ix_reserved_assignments_mykey_id", "reserved_assignments", ["mykey_id"])
    protect(*APPEND_ONLY)


def downgrade() -> None:
    unprotect(*APPEND_ONLY)
    op.drop_index("ix_reserved_assignments_mykey_id", table_name="reserved_assignments")
    op.drop_table("reserved_assignments")
    op.drop_table("resident_point_settings")
    op.drop_table("premium_uses")
    op.drop_table("conversion_daily_uses")
    op.drop_index("ix_conversions_mykey_id", table_name="conversions")
    op.drop_index("ix_conversions_partner_created_at", table_name="conversions")
    op.drop_table("conversions")
    op.drop_table("partner_signatures")
    op.drop_table("partner_keys")
    op.drop_table("partner_agreements")
    op.drop_table("partners")
    with op.batch_alter_table("point_programs", schema=None) as batch_op:
        batch_op.drop_column("premium_budget")
