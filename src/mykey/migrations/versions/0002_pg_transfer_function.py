"""PostgreSQL: the whole `ledger.transfer` in one round trip (a PL/pgSQL function).

Measured in research/anchors-ledger.md §5.3: the same work sent as seven statements ran at
about two thirds of pgbench's TPC-B, as one call at parity. The function does exactly what the
Python path in `mykey.ledger.transfers` does (which SQLite uses): replay a known key, check the
accounts, the guarded debit, the lots (earliest expiry first), the credit (guarded row or
stripe), the transfer row, the lot uses and the new lot. It returns a JSON status; refusals
are turned into typed errors (and stored for replay) by the caller. The same tests run on both.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FUNCTION = r"""
CREATE OR REPLACE FUNCTION mykey_transfer(
  p_id uuid, p_actor text, p_key text, p_hash text, p_debit bigint, p_credit bigint,
  p_amount bigint, p_kind text, p_meta text, p_funding text, p_expires date, p_today date,
  p_now timestamptz, p_stripe smallint
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  d record;
  c record;
  prior record;
  lot record;
  v_debit_after bigint;
  v_credit_after bigint;
  v_need bigint := p_amount;
  v_ids bigint[] := '{}';
  v_takes bigint[] := '{}';
  v_open bigint := 0;
  v_new_lot bigint;
BEGIN
  IF p_key IS NOT NULL THEN
    SELECT id, request_hash INTO prior FROM ledger_transfers
     WHERE actor = p_actor AND client_key = p_key;
    IF FOUND THEN
      IF prior.request_hash IS DISTINCT FROM p_hash THEN
        RETURN jsonb_build_object('status', 'key_reused');
      END IF;
      RETURN jsonb_build_object('status', 'replay', 'id', prior.id);
    END IF;
    SELECT error, request_hash INTO prior FROM ledger_rejections
     WHERE actor = p_actor AND client_key = p_key;
    IF FOUND THEN
      IF prior.request_hash IS DISTINCT FROM p_hash THEN
        RETURN jsonb_build_object('status', 'key_reused');
      END IF;
      RETURN jsonb_build_object('status', 'replay_rejected', 'error', prior.error);
    END IF;
  END IF;

  IF p_debit = p_credit THEN
    RETURN jsonb_build_object('status', 'same_account');
  END IF;
  SELECT id, ledger, kind, guarded INTO d FROM ledger_accounts WHERE id = p_debit;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('status', 'unknown_account', 'account', p_debit);
  END IF;
  SELECT id, ledger, kind, guarded INTO c FROM ledger_accounts WHERE id = p_credit;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('status', 'unknown_account', 'account', p_credit);
  END IF;
  IF d.ledger <> c.ledger THEN
    RETURN jsonb_build_object('status', 'mixed_ledgers', 'debit_ledger', d.ledger,
                              'credit_ledger', c.ledger);
  END IF;
  IF c.kind = 'wallet' AND p_funding IS NULL THEN
    RETURN jsonb_build_object('status', 'lot_terms_required', 'account', p_credit);
  END IF;
  IF c.kind <> 'wallet' AND p_funding IS NOT NULL THEN
    RETURN jsonb_build_object('status', 'lot_not_applicable', 'account', p_credit,
                              'kind', c.kind);
  END IF;
  IF c.kind = 'wallet' AND p_expires < p_today THEN
    RETURN jsonb_build_object('status', 'lot_expired', 'expires_on', p_expires);
  END IF;

  -- the guarded debit: one conditional UPDATE, which also locks the wallet row
  IF d.guarded THEN
    UPDATE ledger_accounts SET debits_posted = debits_posted + p_amount
     WHERE id = p_debit AND credits_posted - debits_posted - debits_pending >= p_amount
    RETURNING credits_posted - debits_posted - debits_pending INTO v_debit_after;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('status', 'insufficient', 'account', p_debit, 'available',
        (SELECT credits_posted - debits_posted - debits_pending FROM ledger_accounts
          WHERE id = p_debit));
    END IF;
  ELSE
    INSERT INTO ledger_account_stripes AS s
      (account_id, stripe, debits_posted, credits_posted, debits_pending, credits_pending)
    VALUES (p_debit, p_stripe, p_amount, 0, 0, 0)
    ON CONFLICT (account_id, stripe)
    DO UPDATE SET debits_posted = s.debits_posted + EXCLUDED.debits_posted;
  END IF;

  -- lots: earliest expiry first, unexpired only (the wallet row lock serialises this)
  IF d.kind = 'wallet' THEN
    FOR lot IN SELECT id, remaining FROM ledger_lots
                WHERE account_id = p_debit AND remaining > 0 AND expires_on >= p_today
                ORDER BY expires_on, id
    LOOP
      EXIT WHEN v_need <= 0;
      v_ids := v_ids || lot.id;
      v_takes := v_takes || LEAST(lot.remaining, v_need);
      v_open := v_open + lot.remaining;
      v_need := v_need - LEAST(lot.remaining, v_need);
    END LOOP;
    IF v_need > 0 THEN
      -- expired points not yet swept count in the balance but cannot be spent
      UPDATE ledger_accounts SET debits_posted = debits_posted - p_amount WHERE id = p_debit;
      RETURN jsonb_build_object('status', 'insufficient', 'account', p_debit,
                                'available', v_open);
    END IF;
    UPDATE ledger_lots l SET remaining = l.remaining - t.take
      FROM unnest(v_ids, v_takes) AS t(id, take) WHERE l.id = t.id;
  END IF;

  IF c.guarded THEN
    UPDATE ledger_accounts SET credits_posted = credits_posted + p_amount WHERE id = p_credit
    RETURNING credits_posted - debits_posted - debits_pending INTO v_credit_after;
  ELSE
    INSERT INTO ledger_account_stripes AS s
      (account_id, stripe, debits_posted, credits_posted, debits_pending, credits_pending)
    VALUES (p_credit, p_stripe, 0, p_amount, 0, 0)
    ON CONFLICT (account_id, stripe)
    DO UPDATE SET credits_posted = s.credits_posted + EXCLUDED.credits_posted;
  END IF;

  INSERT INTO ledger_transfers
    (id, ledger, kind, phase, debit_account_id, credit_account_id, amount, actor, client_key,
     request_hash, metadata, debit_balance, credit_balance, created_at)
  VALUES
    (p_id, d.ledger, p_kind, 'single', p_debit, p_credit, p_amount, p_actor, p_key, p_hash,
     p_meta, v_debit_after, v_credit_after, p_now);

  IF cardinality(v_ids) > 0 THEN
    INSERT INTO ledger_lot_uses (transfer_id, lot_id, amount)
    SELECT p_id, t.id, t.take FROM unnest(v_ids, v_takes) AS t(id, take);
  END IF;
  IF c.kind = 'wallet' THEN
    INSERT INTO ledger_lots
      (ledger, account_id, transfer_id, funding, source_account_id, expires_on, original,
       remaining, created_at)
    VALUES (c.ledger, p_credit, p_id, p_funding, p_debit, p_expires, p_amount, p_amount, p_now)
    RETURNING id INTO v_new_lot;
  END IF;

  RETURN jsonb_build_object(
    'status', 'ok', 'ledger', d.ledger, 'debit_balance', v_debit_after,
    'credit_balance', v_credit_after, 'lot_id', v_new_lot,
    'lot_ids', to_jsonb(v_ids), 'takes', to_jsonb(v_takes));
END $$
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS mykey_transfer(uuid, text, text, text, bigint, bigint,"
            " bigint, text, text, text, date, date, timestamptz, smallint)"
        )
