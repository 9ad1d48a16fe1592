"""PostgreSQL: the whole `ledger.reverse` in one round trip (a PL/pgSQL function).

As `mykey_transfer` (migration 0002) does for a transfer, `mykey_reverse` does exactly what
the Python path in `mykey.ledger.transfers.reverse` does (which SQLite uses): replay a known
key, lock the transfer reversed, refuse a pending one, a reversal and one reversed already,
take the points back from the credited account (guarded: never below zero; a wallet: from
the lot that credit made, refused if it was spent), give them back to the debited account
(a wallet: into the very lots they came from, earliest expiry first), the reversal's row and
its lot uses. It returns a JSON status; refusals are turned into typed errors (and stored for
replay) by the caller. Its metadata text is made by the caller, which knows the kind of the
transfer it reverses. A counter's cancellation (issue #14) sends it with the payment's
guarded update, its history leaf and the COMMIT in one round trip.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

FUNCTION = r"""
CREATE OR REPLACE FUNCTION mykey_reverse(
  p_id uuid, p_actor text, p_key text, p_hash text, p_of uuid, p_meta text,
  p_now timestamptz, p_stripe smallint
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  t record;
  d record;
  c record;
  prior record;
  v_lot bigint;
  v_left bigint;
  v_debit_after bigint;
  v_credit_after bigint;
  v_ids bigint[] := '{}';
  v_gives bigint[] := '{}';
  v_back bigint[] := '{}';
  v_back_gives bigint[] := '{}';
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

  -- the transfer reversed, locked: who reverses it after us waits, then sees our reversal
  SELECT id, phase, kind, amount, debit_account_id, credit_account_id, pending_id, reverses_id
    INTO t FROM ledger_transfers WHERE id = p_of FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('status', 'unknown_transfer', 'transfer', p_of);
  END IF;
  IF t.phase NOT IN ('single', 'post') THEN
    RETURN jsonb_build_object('status', 'not_reversible_pending', 'transfer', p_of);
  END IF;
  IF t.reverses_id IS NOT NULL THEN
    RETURN jsonb_build_object('status', 'not_reversible_reversal', 'transfer', p_of);
  END IF;
  IF EXISTS (SELECT 1 FROM ledger_transfers WHERE reverses_id = p_of) THEN
    RETURN jsonb_build_object('status', 'already_reversed', 'transfer', p_of);
  END IF;
  -- back from the account credited, to the account debited
  SELECT id, ledger, kind, guarded INTO d FROM ledger_accounts WHERE id = t.credit_account_id;
  SELECT id, ledger, kind, guarded INTO c FROM ledger_accounts WHERE id = t.debit_account_id;

  IF d.guarded THEN
    UPDATE ledger_accounts SET debits_posted = debits_posted + t.amount
     WHERE id = d.id AND credits_posted - debits_posted - debits_pending >= t.amount
    RETURNING credits_posted - debits_posted - debits_pending INTO v_debit_after;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('status', 'insufficient', 'account', d.id, 'amount', t.amount,
        'available', (SELECT credits_posted - debits_posted - debits_pending
                        FROM ledger_accounts WHERE id = d.id));
    END IF;
  ELSE
    INSERT INTO ledger_account_stripes AS s
      (account_id, stripe, debits_posted, credits_posted, debits_pending, credits_pending)
    VALUES (d.id, p_stripe, t.amount, 0, 0, 0)
    ON CONFLICT (account_id, stripe)
    DO UPDATE SET debits_posted = s.debits_posted + EXCLUDED.debits_posted;
  END IF;

  -- a wallet credited gives the points back from the lot that credit made, if it still has them
  IF d.kind = 'wallet' THEN
    UPDATE ledger_lots SET remaining = remaining - t.amount
     WHERE transfer_id = p_of AND remaining >= t.amount
    RETURNING id INTO v_lot;
    IF NOT FOUND THEN
      SELECT id, remaining INTO v_lot, v_left FROM ledger_lots WHERE transfer_id = p_of;
      UPDATE ledger_accounts SET debits_posted = debits_posted - t.amount WHERE id = d.id;
      RETURN jsonb_build_object('status', 'insufficient', 'account', d.id, 'amount', t.amount,
                                'available', v_left);
    END IF;
    v_ids := ARRAY[v_lot];
    v_gives := ARRAY[t.amount];
  END IF;

  -- a wallet debited gets the points back into the lots they came from
  IF c.kind = 'wallet' THEN
    SELECT array_agg(u.lot_id ORDER BY l.expires_on, u.lot_id),
           array_agg(-u.net ORDER BY l.expires_on, u.lot_id)
      INTO v_back, v_back_gives
      FROM (SELECT lot_id, sum(amount) AS net FROM ledger_lot_uses
             WHERE transfer_id = p_of OR transfer_id = t.pending_id
             GROUP BY lot_id HAVING sum(amount) <> 0) AS u
      JOIN ledger_lots l ON l.id = u.lot_id;
    UPDATE ledger_lots l SET remaining = l.remaining - g.give
      FROM unnest(v_back, v_back_gives) AS g(id, give) WHERE l.id = g.id;
  END IF;

  IF c.guarded THEN
    UPDATE ledger_accounts SET credits_posted = credits_posted + t.amount WHERE id = c.id
    RETURNING credits_posted - debits_posted - debits_pending INTO v_credit_after;
  ELSE
    INSERT INTO ledger_account_stripes AS s
      (account_id, stripe, debits_posted, credits_posted, debits_pending, credits_pending)
    VALUES (c.id, p_stripe, 0, t.amount, 0, 0)
    ON CONFLICT (account_id, stripe)
    DO UPDATE SET credits_posted = s.credits_posted + EXCLUDED.credits_posted;
  END IF;

  INSERT INTO ledger_transfers
    (id, ledger, kind, phase, debit_account_id, credit_account_id, amount, reverses_id, actor,
     client_key, request_hash, metadata, debit_balance, credit_balance, created_at)
  VALUES
    (p_id, d.ledger, 'reverse', 'single', d.id, c.id, t.amount, p_of, p_actor, p_key, p_hash,
     p_meta, v_debit_after, v_credit_after, p_now);
  IF c.kind = 'wallet' THEN
    v_ids := v_ids || v_back;
    v_gives := v_gives || v_back_gives;
  END IF;
  IF cardinality(v_ids) > 0 THEN
    INSERT INTO ledger_lot_uses (transfer_id, lot_id, amount)
    SELECT p_id, g.id, g.give FROM unnest(v_ids, v_gives) AS g(id, give);
  END IF;

  RETURN jsonb_build_object(
    'status', 'ok', 'ledger', d.ledger, 'debit', d.id, 'credit', c.id, 'amount', t.amount,
    'kind', t.kind, 'debit_balance', v_debit_after, 'credit_balance', v_credit_after,
    'lot_ids', to_jsonb(v_ids), 'takes', to_jsonb(v_gives));
END $$
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS mykey_reverse(uuid, text, text, text, uuid, text,"
            " timestamptz, smallint)"
        )
