"""One card, many services (issue #3): keys, zones, providers, links, service IDs, usage.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 14:01:46.246077
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mykey.migrations import append_only

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "mykey_usage",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("provider_id", sa.String(length=16), nullable=True),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mykey_usage")),
    )
    with op.batch_alter_table("mykey_usage", schema=None) as batch_op:
        batch_op.create_index("ix_mykey_usage_mykey_id", ["mykey_id", "id"], unique=False)

    op.create_table(
        "zones",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zones")),
    )
    op.create_table(
        "providers",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("municipality", sa.String(length=6), nullable=False),
        sa.Column("zone_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"], name=op.f("fk_providers_zone_id_zones")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
    )
    op.create_table(
        "service_ids",
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mykey_id"], ["residents.mykey_id"], name=op.f("fk_service_ids_mykey_id_residents")
        ),
        sa.PrimaryKeyConstraint("service", "external_id", name=op.f("pk_service_ids")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("provider_id", sa.String(length=16), nullable=True),
        sa.Column("municipality", sa.String(length=6), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_api_keys_provider_id_providers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_table(
        "provider_links",
        sa.Column("mykey_id", sa.String(length=8), nullable=False),
        sa.Column("provider_id", sa.String(length=16), nullable=False),
        sa.Column("user_number", sa.String(length=32), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("linked_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["mykey_id"], ["residents.mykey_id"], name=op.f("fk_provider_links_mykey_id_residents")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_provider_links_provider_id_providers")
        ),
        sa.PrimaryKeyConstraint("mykey_id", "provider_id", name=op.f("pk_provider_links")),
    )
    with op.batch_alter_table("provider_links", schema=None) as batch_op:
        batch_op.create_index(
            "uq_provider_links_number", ["provider_id", "user_number"], unique=True
        )
    append_only.protect("mykey_usage")


def downgrade() -> None:
    append_only.unprotect("mykey_usage")

    with op.batch_alter_table("provider_links", schema=None) as batch_op:
        batch_op.drop_index("uq_provider_links_number")

    op.drop_table("provider_links")
    op.drop_table("api_keys")
    op.drop_table("service_ids")
    op.drop_table("providers")
    op.drop_table("zones")
    with op.batch_alter_table("mykey_usage", schema=None) as batch_op:
        batch_op.drop_index("ix_mykey_usage_mykey_id")

    op.drop_table("mykey_usage")
