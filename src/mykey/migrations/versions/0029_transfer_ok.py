"""PostgreSQL: `mykey_transfer_ok`, so that a transfer sent with its COMMIT commits only if made.

A counter payment (issue #14) sends its one write statement and `COMMIT` in one round trip
(`db.send_together`). `mykey_transfer` answers a refusal (not enough points, a replayed key)
with a JSON status, which would let that COMMIT keep what the statement wrote beside the
transfer (the card challenge's use). The statement therefore passes the transfer's status
through this function, which raises unless the transfer was made: the statement fails, the
transaction is aborted and the COMMIT does nothing. The error's detail is the status with
the statement's own value (`{"status": …, …, "value": …}`), read back by
`ledger.transfers`.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

FUNCTION = r"""
CREATE OR REPLACE FUNCTION mykey_transfer_ok(p_result jsonb, p_value jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  IF p_result ->> 'status' IS DISTINCT FROM 'ok' THEN
    RAISE EXCEPTION 'mykey_transfer_refused'
      USING DETAIL = (p_result || jsonb_build_object('value', p_value))::text;
  END IF;
  RETURN p_result;
END $$
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS mykey_transfer_ok(jsonb, jsonb)")
