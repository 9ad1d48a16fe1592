"""Moving points: transfers, two-phase transfers, reversals and expiry.

Every verb here is a use case on its own (it commits when called outside a transaction) and a
step of a larger one (called inside `with uow:`, it commits with its caller). Each write path:

1. validate (bad input is a typed error and writes nothing);
2. replay a known idempotency key (same request: the first result; other request: an error);
3. the guarded debit: one conditional UPDATE of the wallet row, which also locks it, so two
   writers on one wallet are serialised and neither can overdraw it;
4. lots: the debit takes the earliest-expiring lots (or exactly the lots a reversal or expiry
   names); a shortfall (expired points not yet swept) undoes the debit and refuses;
5. the credit: a guarded account's row, or one stripe of an unguarded (hot) account;
6. the transfer row, the lot uses, the new lot, the history leaf.

A refusal with a key is stored, so that a retry gets the same refusal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, cast
from uuid import UUID, uuid4

from psycopg import errors as psycopg_errors
from sqlalchemy import (
    Connection,
    CursorResult,
    Insert,
    Row,
    Table,
    Update,
    and_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mykey.db import RetryTransaction, UnitOfWork, send_together, tokyo_date
from mykey.errors import ErrorKind, MyKeyError, invalid
from mykey.ledger import errors, idempotency
from mykey.ledger.accounts import STRIPES, Account, AccountKind
from mykey.ledger.lots import restore_lifo, take_fifo
from mykey.ledger.models import AccountRow, AccountStripeRow, LotRow, LotUseRow, TransferRow

KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")
FUNDING = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_TIMEOUT = timedelta(days=30)
MAX_METADATA = 4096
SYSTEM_EXPIRY = "system:expiry"
SYSTEM_TIMEOUT = "system:timeout"

A = cast(Table, AccountRow.__table__)
S = cast(Table, AccountStripeRow.__table__)
T = cast(Table, TransferRow.__table__)
L = cast(Table, LotRow.__table__)
U = cast(Table, LotUseRow.__table__)


@dataclass(frozen=True)
class LotTerms:
    """Where credited points come from, and the last day they may be used (Tokyo time)."""

    funding: str
    expires_on: date


@dataclass(frozen=True, order=True)
class LotUse:
    lot_id: int
    amount: int  # taken (positive) or put back (negative)


@dataclass(frozen=True)
class Receipt:
    """What a transfer did. `replayed` is true when a known key returned the first result."""

    transfer_id: UUID
    ledger: str
    kind: str
    phase: str
    debit_account_id: int
    credit_account_id: int
    amount: int
    actor: str
    created_at: datetime
    debit_balance: int | None = None  # available after, for a guarded debit account
    credit_balance: int | None = None  # available after, for a guarded credit account
    lot_id: int | None = None  # the lot this transfer created
    lots_used: tuple[LotUse, ...] = ()
    pending_id: UUID | None = None
    reverses_id: UUID | None = None
    expires_at: datetime | None = None
    client_key: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    replayed: bool = False
    alongside: Any = None  # the value `Alongside.value` read, when the transfer was made with it


@dataclass(frozen=True)
class Alongside:
    """Rows a use case writes in the transfer's own statement, on PostgreSQL (one round trip
    for the transfer, its history leaf and the use case's rows: `transfer(…, alongside=…)`).

    `ctes` are data-modifying common table expressions, `name AS (INSERT … SELECT … FROM
    made)`: `made` has one row if the transfer was made and none otherwise (a replay, a
    refusal), so they write only with it. Their parameters, in `params`, are named
    `%(a_…)s` (the transfer's own are not). `leaves` are history records (kind, payload) to
    append with the transfer's own leaf, only with it too. `value` is a scalar SQL expression
    returned in `Receipt.alongside`; it reads the database as it was before the statement.
    `ledger` is the transfer's ledger and `at` its moment, both known beforehand (its leaf is
    made before the call).

    `gate`, a data-modifying CTE named `gate` that comes before the transfer (e.g. `gate AS
    (INSERT … ON CONFLICT DO NOTHING RETURNING 1)`, the use of a card challenge): the transfer
    is tried only if it yields a row; if not, nothing is done and `GateClosed` is raised.
    `commit`: the statement is sent with `COMMIT` in one round trip (`db.send_together`, in a
    unit of work run with `statement_begin=True`), and fails unless the transfer is made
    (`mykey_transfer_ok`, migration 0029), so the COMMIT keeps nothing of a refused one; a
    refusal is then raised as `RefusedInStatement`, not stored under the key (the caller
    keeps it, after the rollback, as `points.counter.run_keyed` does)."""

    ledger: str
    at: datetime
    ctes: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    leaves: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    value: str = "NULL"
    gate: str | None = None
    commit: bool = False


class GateClosed(Exception):  # noqa: N818 -- a signal to the caller, not an error a user sees
    """The `Alongside.gate` of a transfer yielded no row: nothing was done."""


class RefusedInStatement(Exception):  # noqa: N818 -- carries the refusal and the value read
    """A transfer sent with its COMMIT (`Alongside.commit`) was refused; the transaction is
    aborted. `error` is the refusal, `value` what `Alongside.value` read."""

    def __init__(self, error: MyKeyError, value: Any) -> None:
        super().__init__(error.code)
        self.error = error
        self.value = value


@dataclass(frozen=True)
class ExpiryReport:
    lots: int
    points: int


# ---------------------------------------------------------------------------------------------
# validation


def _amount(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.bad_amount(value)
    if not 1 <= value <= errors.MAX_AMOUNT:
        raise errors.bad_amount(value)
    return value


def _kind(value: object) -> str:
    if not isinstance(value, str) or not KIND.fullmatch(value):
        raise errors.bad_field(
            "kind",
            "A transfer kind is a short lower-case name such as grant or spend.",
            "取引種別は grant や spend のような小文字の短い名前で指定してください。",
        )
    return value


def _metadata(value: Mapping[str, Any] | None) -> dict[str, Any]:
    data = dict(value or {})
    try:
        text = json.dumps(data, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        text = ""
    if not text or len(text.encode()) > MAX_METADATA or not all(isinstance(k, str) for k in data):
        raise errors.bad_field(
            "metadata",
            f"Metadata is a JSON object of at most {MAX_METADATA} bytes.",
            f"付帯情報は {MAX_METADATA} バイト以内の JSON オブジェクトで指定してください。",
        )
    return data


def _check_lot_shape(lot: LotTerms | None) -> None:
    if lot is None:
        return
    if not isinstance(lot.funding, str) or not FUNDING.fullmatch(lot.funding):
        raise errors.bad_field(
            "funding",
            "A funding source is a short lower-case name such as budget or partner.",
            "財源は budget や partner のような小文字の短い名前で指定してください。",
        )
    if not isinstance(lot.expires_on, date) or isinstance(lot.expires_on, datetime):
        raise errors.bad_field(
            "expires_on", "The expiry must be a date.", "有効期限は日付で指定してください。"
        )


def _lot_terms(lot: LotTerms | None, credit: Account, today: date) -> LotTerms | None:
    if not credit.kind.has_lots:
        if lot is not None:
            raise errors.lot_not_applicable(credit.id, credit.kind.value)
        return None
    if lot is None:
        raise errors.lot_terms_required(credit.id)
    if lot.expires_on < today:
        raise errors.lot_expired(lot.expires_on)
    return lot


def _transfer_id(value: object) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise errors.unknown_transfer(value) from None


# ---------------------------------------------------------------------------------------------
# reading rows


def _check_ids(*ids: object) -> None:
    for account_id in ids:
        if isinstance(account_id, bool) or not isinstance(account_id, int):
            raise errors.unknown_account(account_id)


def _accounts(conn: Connection, *ids: int) -> dict[int, Account]:
    _check_ids(*ids)
    rows = conn.execute(SELECT_ACCOUNTS, {"p_ids": list(ids)}).all()
    found = {r.id: Account(r.id, r.ledger, AccountKind(r.kind), r.owner) for r in rows}
    for account_id in ids:
        if account_id not in found:
            raise errors.unknown_account(account_id)
    return found


def _pair(conn: Connection, debit: int, credit: int) -> tuple[Account, Account]:
    if debit == credit:
        raise errors.same_account()
    found = _accounts(conn, debit, credit)
    if found[debit].ledger != found[credit].ledger:
        raise errors.mixed_ledgers(found[debit].ledger, found[credit].ledger)
    return found[debit], found[credit]


def _transfer_row(s: Session, transfer_id: UUID, *, lock: bool = False) -> Row[Any]:
    """A stored transfer. `lock` serialises those who would resolve or reverse it (a row lock
    on PostgreSQL; SQLite has one writer at a time anyway), so the loser sees the winner."""
    stmt = select(T).where(T.c.id == transfer_id)
    row = s.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise errors.unknown_transfer(transfer_id)
    return row


def _lot_uses(s: Session, *transfer_ids: UUID) -> list[tuple[int, int]]:
    """Net (lot, amount) taken by these transfers, in the order the lots were first taken."""
    rows = s.execute(
        select(U.c.lot_id, func.sum(U.c.amount))
        .where(U.c.transfer_id.in_(transfer_ids))
        .group_by(U.c.lot_id)
        .order_by(U.c.lot_id)
    ).all()
    lots = s.execute(select(L.c.id, L.c.expires_on).where(L.c.id.in_([r[0] for r in rows]))).all()
    order = {lot_id: (expires_on, lot_id) for lot_id, expires_on in lots}
    net = [(int(r[0]), int(r[1])) for r in rows if int(r[1]) != 0]
    return sorted(net, key=lambda item: order[item[0]])


def receipt_of(s: Session, row: Row[Any], *, replayed: bool = False) -> Receipt:
    """Rebuild the receipt of a stored transfer (a replay answers exactly as the first time)."""
    uses = s.execute(
        select(U.c.lot_id, U.c.amount).where(U.c.transfer_id == row.id).order_by(U.c.lot_id)
    ).all()
    lot_id = s.execute(select(L.c.id).where(L.c.transfer_id == row.id)).scalar()
    return Receipt(
        transfer_id=row.id,
        ledger=row.ledger,
        kind=row.kind,
        phase=row.phase,
        debit_account_id=row.debit_account_id,
        credit_account_id=row.credit_account_id,
        amount=row.amount,
        actor=row.actor,
        created_at=row.created_at,
        debit_balance=row.debit_balance,
        credit_balance=row.credit_balance,
        lot_id=lot_id,
        lots_used=tuple(LotUse(u.lot_id, u.amount) for u in uses),
        pending_id=row.pending_id,
        reverses_id=row.reverses_id,
        expires_at=row.expires_at,
        client_key=row.client_key,
        metadata=json.loads(row.metadata),
        replayed=replayed,
    )


# ---------------------------------------------------------------------------------------------
# writing rows


def _stripe(seed: UUID) -> int:
    return seed.int % STRIPES


AVAILABLE = A.c.credits_posted - A.c.debits_posted - A.c.debits_pending
COUNTERS = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")

# Statements of the hot path are built once: building SQLAlchemy expressions costs more than
# running them on SQLite.
SELECT_AVAILABLE = select(AVAILABLE).where(A.c.id == bindparam("p_id"))
SELECT_ACCOUNTS = select(A.c.id, A.c.ledger, A.c.kind, A.c.owner).where(
    A.c.id.in_(bindparam("p_ids", expanding=True))
)
FIRST_LOTS = (
    select(L.c.id, L.c.remaining, L.c.expires_on)
    .where(
        L.c.account_id == bindparam("p_account"),
        L.c.remaining > 0,
        L.c.expires_on >= bindparam("p_today"),
    )
    .order_by(L.c.expires_on, L.c.id)
    .limit(32)
)
NEXT_LOTS = FIRST_LOTS.where(
    (L.c.expires_on > bindparam("p_after_day"))
    | and_(L.c.expires_on == bindparam("p_after_day"), L.c.id > bindparam("p_after_id"))
)
TAKE_FROM_LOT = (
    update(L)
    .where(L.c.id == bindparam("p_lot"), L.c.remaining >= bindparam("p_take"))
    .values(remaining=L.c.remaining - bindparam("p_take"))
)
GIVE_TO_LOT = (
    update(L)
    .where(L.c.id == bindparam("p_lot"))
    .values(remaining=L.c.remaining + bindparam("p_give"))
)
INSERT_TRANSFER = insert(T)
INSERT_LOT_USES = insert(U)
INSERT_LOT = insert(L).returning(L.c.id)


@lru_cache(maxsize=64)
def _row_update(names: tuple[str, ...], guarded: bool) -> Update:
    stmt = (
        update(A)
        .where(A.c.id == bindparam("p_id"))
        .values({name: A.c[name] + bindparam(f"p_{name}") for name in names})
        .returning(AVAILABLE)
    )
    return stmt.where(bindparam("p_guard") <= AVAILABLE) if guarded else stmt


@lru_cache(maxsize=64)
def _stripe_upsert(dialect: str, names: tuple[str, ...]) -> Insert:
    ins = (postgresql.insert(S) if dialect == "postgresql" else sqlite.insert(S)).values(
        account_id=bindparam("p_id"),
        stripe=bindparam("p_stripe"),
        **{name: bindparam(f"p_{name}") for name in COUNTERS},
    )
    return ins.on_conflict_do_update(
        index_elements=[S.c.account_id, S.c.stripe],
        set_={name: S.c[name] + ins.excluded[name] for name in names},
    )


def _available(conn: Connection, account_id: int) -> int:
    return int(conn.execute(SELECT_AVAILABLE, {"p_id": account_id}).scalar_one())


def _apply_side(
    conn: Connection, account: Account, deltas: Mapping[str, int], *, guard: int, stripe: int
) -> int | None:
    """Add `deltas` to the account's counters. A guarded account's row is updated only if its
    available points cover `guard` (and the update locks it); an unguarded account's stripe is
    upserted. Returns the guarded account's available points after, or None."""
    names = tuple(sorted(deltas))
    params: dict[str, Any] = {"p_id": account.id, **{f"p_{k}": v for k, v in deltas.items()}}
    if account.guarded:
        params["p_guard"] = guard
        after = conn.execute(_row_update(names, guard > 0), params).scalar()
        if after is None:
            raise errors.insufficient(account.id, _available(conn, account.id), guard)
        return int(after)
    params["p_stripe"] = stripe
    for name in COUNTERS:
        params.setdefault(f"p_{name}", 0)
    conn.execute(_stripe_upsert(conn.dialect.name, names), params)
    return None


def _undo_side(
    conn: Connection, account: Account, deltas: Mapping[str, int], *, stripe: int
) -> None:
    _apply_side(conn, account, {k: -v for k, v in deltas.items()}, guard=0, stripe=stripe)


def _open_lots(
    conn: Connection, account_id: int, today: date, amount: int
) -> list[tuple[int, int]]:
    """The unexpired lots of a wallet in the order a debit takes them, enough for `amount`."""
    taken: list[tuple[int, int]] = []
    covered = 0
    params: dict[str, Any] = {"p_account": account_id, "p_today": today}
    stmt = FIRST_LOTS
    while covered < amount:
        rows = conn.execute(stmt, params).all()
        if not rows:
            break
        for r in rows:
            taken.append((int(r.id), int(r.remaining)))
            covered += int(r.remaining)
        params["p_after_day"], params["p_after_id"] = rows[-1].expires_on, int(rows[-1].id)
        stmt = NEXT_LOTS
    return taken


@dataclass
class _Plan:
    """What one transfer does to the accounts and lots."""

    tid: UUID
    debit: Account
    credit: Account
    amount: int
    kind: str
    phase: str
    actor: str
    key: str | None
    digest: str | None
    meta: dict[str, Any]
    debit_deltas: dict[str, int]
    credit_deltas: dict[str, int]
    guard: int
    stripe: int
    consume_fifo: bool = False
    consume: list[tuple[int, int]] = field(default_factory=list)  # exact (lot, take)
    restore: list[tuple[int, int]] = field(default_factory=list)  # (lot, give back)
    create_lot: LotTerms | None = None
    pending_id: UUID | None = None
    reverses_id: UUID | None = None
    expires_at: datetime | None = None


def _execute(uow: UnitOfWork, plan: _Plan) -> Receipt:
    conn = uow.connection
    now = uow.now()
    debit_balance = _apply_side(
        conn, plan.debit, plan.debit_deltas, guard=plan.guard, stripe=plan.stripe
    )
    takes = list(plan.consume)
    if plan.consume_fifo:
        open_lots = _open_lots(conn, plan.debit.id, tokyo_date(now), plan.amount)
        takes = take_fifo(open_lots, plan.amount)
        if sum(t for _, t in takes) < plan.amount:
            # Expired points not yet swept still count in the balance, but cannot be spent.
            _undo_side(conn, plan.debit, plan.debit_deltas, stripe=plan.stripe)
            raise errors.insufficient(plan.debit.id, sum(r for _, r in open_lots), plan.amount)
    for done, (taken_lot, take) in enumerate(takes):
        result = conn.execute(TAKE_FROM_LOT, {"p_lot": taken_lot, "p_take": take})
        if not cast(CursorResult[Any], result).rowcount:
            # A named lot (a reversal's or an expiry's) no longer holds what it must give.
            left = conn.execute(select(L.c.remaining).where(L.c.id == taken_lot)).scalar_one()
            for lot, given in takes[:done]:
                conn.execute(GIVE_TO_LOT, {"p_lot": lot, "p_give": given})
            _undo_side(conn, plan.debit, plan.debit_deltas, stripe=plan.stripe)
            raise errors.insufficient(plan.debit.id, int(left), take)
    credit_balance = _apply_side(conn, plan.credit, plan.credit_deltas, guard=0, stripe=plan.stripe)
    meta_text = json.dumps(plan.meta, sort_keys=True, ensure_ascii=False)
    try:
        conn.execute(
            INSERT_TRANSFER,
            dict(
                id=plan.tid,
                ledger=plan.debit.ledger,
                kind=plan.kind,
                phase=plan.phase,
                debit_account_id=plan.debit.id,
                credit_account_id=plan.credit.id,
                amount=plan.amount,
                pending_id=plan.pending_id,
                reverses_id=plan.reverses_id,
                expires_at=plan.expires_at,
                actor=plan.actor,
                client_key=plan.key,
                request_hash=plan.digest,
                metadata=meta_text,
                debit_balance=debit_balance,
                credit_balance=credit_balance,
                created_at=now,
            ),
        )
    except IntegrityError as exc:
        # Another request with this key, or resolving this pending, or reversing this transfer,
        # committed first: run the whole use case again, and it will see what that one did.
        raise RetryTransaction from exc
    uses = takes + [(lot, -give) for lot, give in plan.restore]
    for lot, give in plan.restore:
        conn.execute(GIVE_TO_LOT, {"p_lot": lot, "p_give": give})
    if uses:
        conn.execute(
            INSERT_LOT_USES,
            [{"transfer_id": plan.tid, "lot_id": lot, "amount": amt} for lot, amt in uses],
        )
    new_lot: int | None = None
    if plan.create_lot is not None:
        new_lot = conn.execute(
            INSERT_LOT,
            dict(
                ledger=plan.credit.ledger,
                account_id=plan.credit.id,
                transfer_id=plan.tid,
                funding=plan.create_lot.funding,
                source_account_id=plan.debit.id,
                expires_on=plan.create_lot.expires_on,
                original=plan.amount,
                remaining=plan.amount,
                created_at=now,
            ),
        ).scalar_one()
    receipt = Receipt(
        transfer_id=plan.tid,
        ledger=plan.debit.ledger,
        kind=plan.kind,
        phase=plan.phase,
        debit_account_id=plan.debit.id,
        credit_account_id=plan.credit.id,
        amount=plan.amount,
        actor=plan.actor,
        created_at=now,
        debit_balance=debit_balance,
        credit_balance=credit_balance,
        lot_id=new_lot,
        lots_used=tuple(LotUse(lot, amt) for lot, amt in sorted(uses)),
        pending_id=plan.pending_id,
        reverses_id=plan.reverses_id,
        expires_at=plan.expires_at,
        client_key=plan.key,
        metadata=plan.meta,
    )
    _log(uow, receipt)
    return receipt


def _leaf_payload(receipt: Receipt) -> dict[str, Any]:
    return {
        "id": str(receipt.transfer_id),
        "ledger": receipt.ledger,
        "kind": receipt.kind,
        "phase": receipt.phase,
        "debit": receipt.debit_account_id,
        "credit": receipt.credit_account_id,
        "amount": receipt.amount,
        "actor": receipt.actor,
        "at": receipt.created_at.isoformat(),
        "pending_id": str(receipt.pending_id) if receipt.pending_id else None,
        "reverses_id": str(receipt.reverses_id) if receipt.reverses_id else None,
    }


def _log(uow: UnitOfWork, receipt: Receipt) -> None:
    """The history leaf of a committed transfer, written in the same transaction."""
    uow.log.append(uow.connection, "transfer", _leaf_payload(receipt))


PG_MADE = (
    "WITH {gate}t AS MATERIALIZED ({call}{gate_from}),"
    " made AS MATERIALIZED (SELECT 1 AS one FROM t WHERE (t.r ->> 'status') = 'ok'),"
    " leaves AS (INSERT INTO history_leaves (kind, record_id, leaf, queued_at)"
    " SELECT l.kind, l.record_id, l.leaf, l.queued_at FROM made,"
    " unnest(%(l_kinds)s::text[], %(l_ids)s::text[], %(l_leaves)s::bytea[],"
    " %(l_at)s::timestamptz[]) AS l(kind, record_id, leaf, queued_at))"
    "{ctes} SELECT {result}, x.v FROM t, (SELECT {value} AS v) AS x"
)
# with its COMMIT: the statement fails unless the transfer was made (migration 0029)
PG_MADE_COMMIT_RESULT = "mykey_transfer_ok(t.r, to_jsonb(x.v))"


def _with_alongside(
    uow: UnitOfWork, alongside: Alongside, *, call: str, own: Receipt
) -> tuple[str, dict[str, Any]]:
    """The statement of a ledger call (`call`, one `SELECT mykey_…(…)`) with `alongside`, and
    the parameters it adds; `own` is the receipt the call will make, for its history leaf."""
    records = [("transfer", _leaf_payload(own)), *alongside.leaves]
    rows = [uow.log.leaf_row(uow.connection, k, p) for k, p in records]
    kept = [r for r in rows if r is not None]
    sql = PG_MADE.format(
        gate=f"{alongside.gate}, " if alongside.gate else "",
        call=call + " AS r",
        gate_from=" FROM gate" if alongside.gate else "",
        ctes="".join(f", {cte}" for cte in alongside.ctes),
        result=PG_MADE_COMMIT_RESULT if alongside.commit else "t.r",
        value=alongside.value,
    )
    extra: dict[str, Any] = {
        "l_kinds": [r[0] for r in kept],
        "l_ids": [r[1] for r in kept],
        "l_leaves": [r[2] for r in kept],
        "l_at": [r[3] for r in kept],
        **alongside.params,
    }
    return sql, extra


def _call(
    uow: UnitOfWork,
    sql: str,
    params: Mapping[str, Any],
    alongside: Alongside | None,
    *,
    debit: int,
    credit: int,
    amount: int,
) -> tuple[dict[str, Any], Any]:
    """Run a ledger function's statement (on the driver's own cursor: on the hot path
    SQLAlchemy's result machinery costs more client CPU than the call itself; it still runs in
    the unit of work's transaction), with its COMMIT if `alongside` says so. Returns the
    function's JSON status and the value `alongside` read."""
    driver = uow.connection.connection.driver_connection
    assert driver is not None
    try:
        if alongside is not None and alongside.commit:
            rows = send_together(uow, [(sql, params)], commit=True)[0]
            row = rows[0] if rows else None
        else:
            row = driver.execute(sql, params).fetchone()
    except psycopg_errors.UniqueViolation as exc:  # a twin with this key committed first
        raise RetryTransaction from exc
    except psycopg_errors.RaiseException as exc:
        if exc.diag.message_primary != "mykey_transfer_refused" or not exc.diag.message_detail:
            raise
        refused_with = json.loads(exc.diag.message_detail)  # aborted: the COMMIT did nothing
        raise _refused_in_statement(refused_with, debit, credit, amount) from None
    if row is None:  # the gate yielded no row: nothing was done
        raise GateClosed
    return row[0], (row[1] if alongside is not None else None)


def _refuse(
    uow: UnitOfWork, actor: str, key: str | None, digest: str | None, error: MyKeyError
) -> Receipt | MyKeyError:
    """A refusal: store it under its key (so a retry replays it), unless a twin request with
    the same key committed a transfer in the meantime, which is then the answer."""
    if key is None or error.kind is not ErrorKind.REFUSED:
        raise error
    assert digest is not None
    again = idempotency.lookup(uow.connection, actor, key, digest)
    if isinstance(again, UUID):
        return _replay(uow, again)
    idempotency.record_rejection(uow.session, actor, key, digest, error, uow.now())
    return error


def _replay(uow: UnitOfWork, transfer_id: UUID) -> Receipt:
    s = uow.session
    return receipt_of(s, s.execute(select(T).where(T.c.id == transfer_id)).one(), replayed=True)


def _keyed(
    uow: UnitOfWork,
    *,
    verb: str,
    actor: str,
    key: str | None,
    fields: Mapping[str, Any],
    make_plan: Callable[[UUID, str | None], _Plan],
    in_one_call: Callable[[UUID, str | None], Receipt | MyKeyError] | None = None,
    request_digest: str | None = None,
    key_looked_up: bool = False,
) -> Receipt:
    """Run one write with the idempotency protocol, as its own transaction or inside one.

    `in_one_call`, where given, does the whole write (key lookup included) in the database.
    `request_digest`, where given, is the hash of the use case's whole request that this
    transfer carries out (a grant, a conversion, an online order): it is stored under the key
    instead of the hash of the transfer's own fields (see `idempotency.keyed_write`)."""
    idempotency.validate_actor(actor)
    if key is not None:
        idempotency.validate_key(key)
    digest = None
    if key is not None:
        digest = request_digest or idempotency.request_hash(verb, fields)

    def body() -> Receipt | MyKeyError:
        if in_one_call is not None:
            tid = idempotency.derive_id(actor, key) if key is not None else uuid4()
            return in_one_call(tid, digest)
        if key is not None and not key_looked_up:
            assert digest is not None
            found = idempotency.lookup(uow.connection, actor, key, digest)
            if isinstance(found, MyKeyError):
                return found
            if found is not None:
                return _replay(uow, found)
        tid = idempotency.derive_id(actor, key) if key is not None else uuid4()
        try:
            return _execute(uow, make_plan(tid, digest))
        except MyKeyError as error:
            return _refuse(uow, actor, key, digest, error)

    outcome = uow.run(body)
    if isinstance(outcome, MyKeyError):
        raise outcome
    return outcome


# ---------------------------------------------------------------------------------------------
# request hashes: what a keyed request is, for the idempotency check


def _transfer_fields(
    debit: object,
    credit: object,
    amount: int,
    kind: str,
    lot: LotTerms | None,
    meta: Mapping[str, Any],
    from_lot: int | None,
) -> dict[str, Any]:
    fields = {
        "debit": debit,
        "credit": credit,
        "amount": amount,
        "kind": kind,
        "lot": [lot.funding, lot.expires_on.isoformat()] if lot else None,
        "metadata": dict(meta),
    }
    if from_lot is not None:
        fields["from_lot"] = from_lot
    return fields


def transfer_request_hash(
    *,
    debit: int | None,
    credit: int | None,
    amount: int,
    kind: str,
    lot: LotTerms | None = None,
    metadata: Mapping[str, Any] | None = None,
    from_lot: int | None = None,
) -> str:
    """The request hash `transfer` stores with these arguments: a use case looks its key up
    with it (`idempotency.lookup`) before doing anything else, e.g. before checking a card
    proof, and stores its own refusal under it. An account that does not exist yet is None."""
    fields = _transfer_fields(debit, credit, amount, kind, lot, metadata or {}, from_lot)
    return idempotency.request_hash("transfer", fields)


def _reverse_fields(transfer_id: UUID, reason: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"transfer_id": str(transfer_id), "reason": reason}
    if extra:
        fields["metadata"] = dict(extra)
    return fields


def reverse_request_hash(
    *, transfer_id: UUID, reason: str, metadata: Mapping[str, Any] | None = None
) -> str:
    """The request hash `reverse` stores with these arguments (see `transfer_request_hash`)."""
    return idempotency.request_hash("reverse", _reverse_fields(transfer_id, reason, metadata or {}))


# ---------------------------------------------------------------------------------------------
# the verbs


def transfer(
    uow: UnitOfWork,
    *,
    debit: int,
    credit: int,
    amount: int,
    kind: str,
    actor: str,
    key: str | None = None,
    lot: LotTerms | None = None,
    metadata: Mapping[str, Any] | None = None,
    from_lot: int | None = None,
    request_digest: str | None = None,
    alongside: Alongside | None = None,
    key_looked_up: bool = False,
) -> Receipt:
    """Move `amount` points from `debit` to `credit` now.

    A credit to a wallet makes a lot (`lot`: funding source and expiry); a debit from a wallet
    takes its earliest-expiring lots, or exactly the lot `from_lot` names (a correction moving
    what is left of one credit). Refused with `insufficient_points` if a guarded account would
    go below zero, or if the named lot holds less than `amount`. `alongside` (PostgreSQL only):
    the use case's rows, written in the same statement (see `Alongside`). `key_looked_up`:
    the caller looked this key up with this request's hash in this very transaction and found
    nothing (on SQLite the writer's lock holds from BEGIN IMMEDIATE, so nothing can have used
    the key since): the Python path does not look again. PostgreSQL's function always does.
    """
    amount = _amount(amount)
    kind = _kind(kind)
    meta = _metadata(metadata)
    _check_lot_shape(lot)
    if from_lot is not None and (isinstance(from_lot, bool) or not isinstance(from_lot, int)):
        raise errors.bad_field(
            "from_lot", "A lot is named by its number.", "ロットは番号で指定してください。"
        )
    fields = _transfer_fields(debit, credit, amount, kind, lot, meta, from_lot)
    in_one_call: Callable[[UUID, str | None], Receipt | MyKeyError] | None = None
    if alongside is not None and (uow.dialect != "postgresql" or from_lot is not None):
        raise ValueError("alongside is for a transfer in one call, on PostgreSQL")
    if uow.dialect == "postgresql" and from_lot is None:
        _check_ids(debit, credit)

        def in_one_call(tid: UUID, digest: str | None) -> Receipt | MyKeyError:
            return _transfer_in_one_call(
                uow,
                tid=tid,
                digest=digest,
                debit=debit,
                credit=credit,
                amount=amount,
                kind=kind,
                actor=actor,
                key=key,
                lot=lot,
                meta=meta,
                alongside=alongside,
            )

    def make_plan(tid: UUID, digest: str | None) -> _Plan:
        d, c = _pair(uow.connection, debit, credit)
        terms = _lot_terms(lot, c, tokyo_date(uow.now()))
        if from_lot is not None:
            owner = uow.connection.execute(
                select(L.c.account_id).where(L.c.id == from_lot)
            ).scalar()
            if owner is None or int(owner) != d.id:
                raise errors.bad_field(
                    "from_lot",
                    f"Lot {from_lot} is not a lot of account {d.id}.",
                    f"ロット {from_lot} は口座 {d.id} のロットではありません。",
                )
        return _Plan(
            tid=tid,
            debit=d,
            credit=c,
            amount=amount,
            kind=kind,
            phase="single",
            actor=actor,
            key=key,
            digest=digest,
            meta=meta,
            debit_deltas={"debits_posted": amount},
            credit_deltas={"credits_posted": amount},
            guard=amount,
            stripe=_stripe(tid),
            consume_fifo=d.kind.has_lots and from_lot is None,
            consume=[(from_lot, amount)] if from_lot is not None else [],
            create_lot=terms,
        )

    return _keyed(
        uow,
        verb="transfer",
        actor=actor,
        key=key,
        fields=fields,
        make_plan=make_plan,
        in_one_call=in_one_call,
        request_digest=request_digest,
        key_looked_up=key_looked_up,
    )


PG_TRANSFER = (
    "SELECT mykey_transfer(%(id)s, %(actor)s, %(key)s, %(hash)s, %(debit)s, %(credit)s,"
    " %(amount)s, %(kind)s, %(meta)s, %(funding)s, %(expires)s, %(today)s, %(now)s, %(stripe)s)"
)


def _transfer_in_one_call(
    uow: UnitOfWork,
    *,
    tid: UUID,
    digest: str | None,
    debit: int,
    credit: int,
    amount: int,
    kind: str,
    actor: str,
    key: str | None,
    lot: LotTerms | None,
    meta: dict[str, Any],
    alongside: Alongside | None = None,
) -> Receipt | MyKeyError:
    """`transfer` on PostgreSQL: the same steps in one round trip (migration 0002); with
    `alongside`, its leaf and the use case's rows in the same round trip."""
    now = alongside.at if alongside is not None else uow.now()
    params: dict[str, Any] = {
        "id": tid,
        "actor": actor,
        "key": key,
        "hash": digest,
        "debit": debit,
        "credit": credit,
        "amount": amount,
        "kind": kind,
        "meta": json.dumps(meta, sort_keys=True, ensure_ascii=False),
        "funding": lot.funding if lot else None,
        "expires": lot.expires_on if lot else None,
        "today": tokyo_date(now),
        "now": now,
        "stripe": _stripe(tid),
    }
    sql = PG_TRANSFER
    if alongside is not None:
        own = Receipt(tid, alongside.ledger, kind, "single", debit, credit, amount, actor, now)
        sql, extra = _with_alongside(uow, alongside, call=PG_TRANSFER, own=own)
        params.update(extra)
    result, value = _call(uow, sql, params, alongside, debit=debit, credit=credit, amount=amount)
    status = result["status"]
    if status == "ok":
        takes = zip(result["lot_ids"], result["takes"], strict=True)
        receipt = Receipt(
            transfer_id=tid,
            ledger=result["ledger"],
            kind=kind,
            phase="single",
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            actor=actor,
            created_at=now,
            debit_balance=result["debit_balance"],
            credit_balance=result["credit_balance"],
            lot_id=result["lot_id"],
            lots_used=tuple(sorted(LotUse(int(i), int(t)) for i, t in takes)),
            client_key=key,
            metadata=meta,
            alongside=value,
        )
        if alongside is None:
            _log(uow, receipt)
        elif receipt.ledger != alongside.ledger:  # pragma: no cover -- the caller's mistake
            raise ValueError("the transfer's ledger is not the one its leaf was made for")
        return receipt
    return _not_made(uow, result, actor, key, digest, debit=debit, credit=credit, amount=amount)


def _not_made(
    uow: UnitOfWork,
    result: Mapping[str, Any],
    actor: str,
    key: str | None,
    digest: str | None,
    *,
    debit: int,
    credit: int,
    amount: int,
) -> Receipt | MyKeyError:
    """What a ledger function's status other than `ok` answers: the first result of a known
    key, or a refusal (stored under the key, as the Python path stores it), or an error."""
    status = result["status"]
    if status == "replay":
        return _replay(uow, UUID(result["id"]))
    if status == "replay_rejected":
        stored = MyKeyError.from_dict(json.loads(result["error"]))
        stored.details["replayed"] = True
        return stored
    if status == "insufficient":
        refusal = errors.insufficient(
            int(result.get("account", debit)), int(result["available"]), amount
        )
        return _refuse(uow, actor, key, digest, refusal)
    error = _status_error(result, credit)
    if status in REVERSAL_REFUSALS:
        return _refuse(uow, actor, key, digest, error)
    raise error


def _refused_in_statement(
    result: dict[str, Any], debit: int, credit: int, amount: int
) -> RefusedInStatement | RetryTransaction:
    """A transfer sent with its COMMIT and refused (`Alongside.commit`): the refusal, or, if a
    twin with the same key made the transfer first, a retry (which will find it)."""
    status, value = result["status"], result.get("value")
    if status == "replay":
        return RetryTransaction()
    if status == "replay_rejected":
        stored = MyKeyError.from_dict(json.loads(result["error"]))
        stored.details["replayed"] = True
        return RefusedInStatement(stored, value)
    if status == "insufficient":
        return RefusedInStatement(
            errors.insufficient(debit, int(result["available"]), amount), value
        )
    return RefusedInStatement(_status_error(result, credit), value)


REVERSAL_REFUSALS = frozenset(
    {"not_reversible_pending", "not_reversible_reversal", "already_reversed"}
)


def _status_error(result: Mapping[str, Any], credit: int) -> MyKeyError:
    transfer = result.get("transfer")
    return {
        "unknown_transfer": lambda: errors.unknown_transfer(transfer),
        "not_reversible_pending": lambda: errors.not_reversible(
            transfer,
            "a pending transfer is voided, not reversed.",
            "保留中の取引は取消（void）で扱います。",
        ),
        "not_reversible_reversal": lambda: errors.not_reversible(
            transfer, "it is itself a reversal.", "取消の取引そのものは取り消せません。"
        ),
        "already_reversed": lambda: errors.already_reversed(transfer),
        "key_reused": lambda: errors.key_reused(),
        "same_account": lambda: errors.same_account(),
        "unknown_account": lambda: errors.unknown_account(result.get("account")),
        "mixed_ledgers": lambda: errors.mixed_ledgers(
            str(result.get("debit_ledger")), str(result.get("credit_ledger"))
        ),
        "lot_terms_required": lambda: errors.lot_terms_required(credit),
        "lot_not_applicable": lambda: errors.lot_not_applicable(credit, str(result.get("kind"))),
        "lot_expired": lambda: errors.lot_expired(result.get("expires_on")),
    }[result["status"]]()


def pending(
    uow: UnitOfWork,
    *,
    debit: int,
    credit: int,
    amount: int,
    kind: str,
    actor: str,
    timeout: timedelta,
    key: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    request_digest: str | None = None,
) -> Receipt:
    """Hold `amount` points for a later `post` or `void` (an online order, say).

    The held points leave the wallet's available balance at once (their lots are taken now);
    if neither post nor void comes before `timeout`, the hold can no longer be posted and
    `void_expired` gives the points back.
    """
    amount = _amount(amount)
    kind = _kind(kind)
    meta = _metadata(metadata)
    if not isinstance(timeout, timedelta) or not timedelta(seconds=1) <= timeout <= MAX_TIMEOUT:
        raise errors.bad_field(
            "timeout",
            "A pending transfer times out after 1 second to 30 days.",
            "保留の期限は 1 秒から 30 日までで指定してください。",
        )
    fields = {
        "debit": debit,
        "credit": credit,
        "amount": amount,
        "kind": kind,
        "timeout": timeout.total_seconds(),
        "metadata": meta,
    }

    def make_plan(tid: UUID, digest: str | None) -> _Plan:
        d, c = _pair(uow.connection, debit, credit)
        if c.kind.has_lots:
            raise errors.bad_field(
                "credit",
                "Points can be held only on their way out of a wallet, not into one.",
                "保留取引の入金先にウォレットは指定できません。",
            )
        return _Plan(
            tid=tid,
            debit=d,
            credit=c,
            amount=amount,
            kind=kind,
            phase="pending",
            actor=actor,
            key=key,
            digest=digest,
            meta=meta,
            debit_deltas={"debits_pending": amount},
            credit_deltas={"credits_pending": amount},
            guard=amount,
            stripe=_stripe(tid),
            consume_fifo=d.kind.has_lots,
            expires_at=uow.now() + timeout,
        )

    return _keyed(
        uow,
        verb="pending",
        actor=actor,
        key=key,
        fields=fields,
        make_plan=make_plan,
        request_digest=request_digest,
    )


def _resolution(
    uow: UnitOfWork,
    pending_id: UUID,
    *,
    amount: int | None,
    actor: str,
    key: str | None,
    digest: str | None,
    tid: UUID,
    void: bool,
) -> _Plan:
    s = uow.session
    p = _transfer_row(s, pending_id, lock=True)
    if p.phase != "pending":
        raise errors.not_pending(pending_id)
    if s.execute(select(T.c.id).where(T.c.pending_id == pending_id)).first() is not None:
        raise errors.already_resolved(pending_id)
    if not void and uow.now() >= p.expires_at:
        raise errors.pending_expired(pending_id)
    held = int(p.amount)
    posted = 0 if void else (held if amount is None else amount)
    if posted > held:
        raise errors.post_exceeds(pending_id, held, posted)
    found = _accounts(uow.connection, p.debit_account_id, p.credit_account_id)
    d, c = found[p.debit_account_id], found[p.credit_account_id]
    restore: list[tuple[int, int]] = []
    if d.kind.has_lots and held - posted > 0:
        restore = restore_lifo(_lot_uses(s, pending_id), held - posted)
    debit_deltas = {"debits_pending": -held}
    credit_deltas = {"credits_pending": -held}
    if posted:
        debit_deltas["debits_posted"] = posted
        credit_deltas["credits_posted"] = posted
    return _Plan(
        tid=tid,
        debit=d,
        credit=c,
        amount=held if void else posted,
        kind=str(p.kind),
        phase="void" if void else "post",
        actor=actor,
        key=key,
        digest=digest,
        meta=json.loads(p.metadata),
        debit_deltas=debit_deltas,
        credit_deltas=credit_deltas,
        guard=0,
        stripe=_stripe(pending_id),
        restore=restore,
        pending_id=pending_id,
    )


def post(
    uow: UnitOfWork,
    *,
    pending_id: UUID | str,
    actor: str,
    key: str | None = None,
    amount: int | None = None,
    request_digest: str | None = None,
) -> Receipt:
    """Complete a pending transfer, for all of it or less (the rest goes back to the wallet)."""
    pid = _transfer_id(pending_id)
    if amount is not None:
        amount = _amount(amount)
    fields = {"pending_id": str(pid), "amount": amount}

    def make_plan(tid: UUID, digest: str | None) -> _Plan:
        return _resolution(
            uow, pid, amount=amount, actor=actor, key=key, digest=digest, tid=tid, void=False
        )

    return _keyed(
        uow,
        verb="post",
        actor=actor,
        key=key,
        fields=fields,
        make_plan=make_plan,
        request_digest=request_digest,
    )


def void(
    uow: UnitOfWork,
    *,
    pending_id: UUID | str,
    actor: str,
    key: str | None = None,
    request_digest: str | None = None,
) -> Receipt:
    """Cancel a pending transfer: the held points go back to the lots they came from."""
    pid = _transfer_id(pending_id)
    fields = {"pending_id": str(pid)}

    def make_plan(tid: UUID, digest: str | None) -> _Plan:
        return _resolution(
            uow, pid, amount=None, actor=actor, key=key, digest=digest, tid=tid, void=True
        )

    return _keyed(
        uow,
        verb="void",
        actor=actor,
        key=key,
        fields=fields,
        make_plan=make_plan,
        request_digest=request_digest,
    )


def reverse(
    uow: UnitOfWork,
    *,
    transfer_id: UUID | str,
    actor: str,
    reason: str,
    key: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    request_digest: str | None = None,
    alongside: Alongside | None = None,
    reversing: Reversing | None = None,
    key_looked_up: bool = False,
) -> Receipt:
    """Undo a transfer with a new, opposite one (nothing is ever edited or deleted).

    Points taken from a wallet go back to the very lots they came from; points credited to a
    wallet are taken back from the lot that credit made, and the reversal is refused if they
    have been spent. A transfer is reversed at most once. `metadata` is kept with the reason
    (a correction cites its case there).

    On PostgreSQL one call (`mykey_reverse`, migration 0030) after one read of the transfer
    reversed, or, given `reversing` (that transfer as the caller read it), the call alone, and
    then `alongside` may come with it (see `Alongside`; `transfer`'s other arguments too).
    """
    extra = _metadata(metadata)
    tid_in = _transfer_id(transfer_id)
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise errors.bad_field(
            "reason", "A reversal needs a reason.", "取消には理由の記入が必要です。"
        )
    fields = _reverse_fields(tid_in, reason, extra)
    in_one_call: Callable[[UUID, str | None], Receipt | MyKeyError] | None = None
    if alongside is not None and (uow.dialect != "postgresql" or reversing is None):
        raise ValueError("alongside is for a reversal in one call, on PostgreSQL")
    if uow.dialect == "postgresql":

        def in_one_call(tid: UUID, digest: str | None) -> Receipt | MyKeyError:
            return _reverse_in_one_call(
                uow,
                tid=tid,
                digest=digest,
                of=tid_in,
                actor=actor,
                key=key,
                reason=reason,
                extra=extra,
                alongside=alongside,
                reversing=reversing,
            )

    def make_plan(tid: UUID, digest: str | None) -> _Plan:
        s = uow.session
        t = _transfer_row(s, tid_in, lock=True)
        if t.phase not in ("single", "post"):
            raise errors.not_reversible(
                tid_in,
                "a pending transfer is voided, not reversed.",
                "保留中の取引は取消（void）で扱います。",
            )
        if t.reverses_id is not None:
            raise errors.not_reversible(
                tid_in, "it is itself a reversal.", "取消の取引そのものは取り消せません。"
            )
        if s.execute(select(T.c.id).where(T.c.reverses_id == tid_in)).first() is not None:
            raise errors.already_reversed(tid_in)
        found = _accounts(uow.connection, t.debit_account_id, t.credit_account_id)
        back_from, back_to = found[t.credit_account_id], found[t.debit_account_id]
        amount = int(t.amount)
        consume: list[tuple[int, int]] = []
        if back_from.kind.has_lots:
            lot = s.execute(select(L.c.id).where(L.c.transfer_id == tid_in)).scalar()
            if lot is None:  # pragma: no cover -- every credit to a wallet makes a lot
                raise errors.not_reversible(tid_in, "its lot is missing.", "ロットがありません。")
            consume = [(int(lot), amount)]
        restore: list[tuple[int, int]] = []
        if back_to.kind.has_lots:
            ids = [tid_in] + ([t.pending_id] if t.pending_id is not None else [])
            restore = _lot_uses(s, *ids)
            assert sum(give for _, give in restore) == amount, "lot uses must add up"
        return _Plan(
            tid=tid,
            debit=back_from,
            credit=back_to,
            amount=amount,
            kind="reverse",
            phase="single",
            actor=actor,
            key=key,
            digest=digest,
            meta=_reversal_meta(extra, reason, t.kind),
            debit_deltas={"debits_posted": amount},
            credit_deltas={"credits_posted": amount},
            guard=amount,
            stripe=_stripe(tid),
            consume=consume,
            restore=restore,
            reverses_id=tid_in,
        )

    return _keyed(
        uow,
        verb="reverse",
        actor=actor,
        key=key,
        fields=fields,
        make_plan=make_plan,
        in_one_call=in_one_call,
        request_digest=request_digest,
        key_looked_up=key_looked_up,
    )


def _reversal_meta(extra: Mapping[str, Any], reason: str, kind: str) -> dict[str, Any]:
    return {**extra, "reason": reason, "reverses_kind": kind}


@dataclass(frozen=True)
class Reversing:
    """The transfer a reversal undoes, as read in the reversal's transaction (a transfer
    never changes): the reversal's leaf is made before the call that writes it."""

    ledger: str
    kind: str
    debit: int
    credit: int
    amount: int


PG_REVERSE = (
    "SELECT mykey_reverse(%(id)s, %(actor)s, %(key)s, %(hash)s, %(of)s, %(meta)s, %(now)s,"
    " %(stripe)s)"
)


def _reverse_in_one_call(
    uow: UnitOfWork,
    *,
    tid: UUID,
    digest: str | None,
    of: UUID,
    actor: str,
    key: str | None,
    reason: str,
    extra: Mapping[str, Any],
    alongside: Alongside | None,
    reversing: Reversing | None,
) -> Receipt | MyKeyError:
    """`reverse` on PostgreSQL: the same steps in one call (migration 0030)."""
    now = alongside.at if alongside is not None else uow.now()
    if reversing is None:
        row = uow.connection.execute(
            select(
                T.c.ledger, T.c.kind, T.c.debit_account_id, T.c.credit_account_id, T.c.amount
            ).where(T.c.id == of)
        ).first()
        if row is None:
            raise errors.unknown_transfer(of)
        reversing = Reversing(*row)
    meta = _reversal_meta(extra, reason, reversing.kind)
    back_from, back_to, amount = reversing.credit, reversing.debit, reversing.amount
    params: dict[str, Any] = {
        "id": tid,
        "actor": actor,
        "key": key,
        "hash": digest,
        "of": of,
        "meta": json.dumps(meta, sort_keys=True, ensure_ascii=False),
        "now": now,
        "stripe": _stripe(tid),
    }
    sql = PG_REVERSE
    if alongside is not None:
        own = Receipt(
            tid, reversing.ledger, "reverse", "single", back_from, back_to, amount, actor, now,
            reverses_id=of,
        )  # fmt: skip
        sql, more = _with_alongside(uow, alongside, call=PG_REVERSE, own=own)
        params.update(more)
    result, value = _call(
        uow, sql, params, alongside, debit=back_from, credit=back_to, amount=amount
    )
    if result["status"] != "ok":
        return _not_made(
            uow, result, actor, key, digest, debit=back_from, credit=back_to, amount=amount
        )
    uses = zip(result["lot_ids"], result["takes"], strict=True)
    receipt = Receipt(
        transfer_id=tid,
        ledger=result["ledger"],
        kind="reverse",
        phase="single",
        debit_account_id=int(result["debit"]),
        credit_account_id=int(result["credit"]),
        amount=int(result["amount"]),
        actor=actor,
        created_at=now,
        debit_balance=result["debit_balance"],
        credit_balance=result["credit_balance"],
        lots_used=tuple(sorted(LotUse(int(i), int(t)) for i, t in uses)),
        reverses_id=of,
        client_key=key,
        metadata=meta,
        alongside=value,
    )
    if alongside is None:
        _log(uow, receipt)
    return receipt


def get_transfer(uow: UnitOfWork, transfer_id: UUID | str) -> Receipt:
    """A stored transfer, as its receipt (with the lot it made, if it credited a wallet)."""
    tid = _transfer_id(transfer_id)
    return uow.read(lambda: receipt_of(uow.session, _transfer_row(uow.session, tid)))


def reversal_of(uow: UnitOfWork, transfer_id: UUID | str) -> UUID | None:
    """The id of the transfer that reversed this one, if any."""
    tid = _transfer_id(transfer_id)
    return uow.read(
        lambda: uow.session.execute(select(T.c.id).where(T.c.reverses_id == tid)).scalar()
    )


def _expire_one(uow: UnitOfWork, lot_id: int, expired_account: Account) -> Receipt | None:
    s = uow.session
    lot = s.execute(select(L).where(L.c.id == lot_id)).one()
    if lot.remaining <= 0:
        return None
    wallet = _accounts(uow.connection, int(lot.account_id))[int(lot.account_id)]
    amount = int(lot.remaining)
    # A lot can lapse more than once: a refund may put points back into a lapsed lot. Its
    # count of uses only grows (uses are append-only), so it tells the expiries apart, and a
    # re-run of the same sweep over the same state derives the same key.
    uses = s.execute(select(func.count()).select_from(U).where(U.c.lot_id == lot_id)).scalar_one()
    key = f"lot-{lot_id}-{uses}"
    fields = {"lot": lot_id, "amount": amount}

    def make_plan(tid: UUID, digest: str | None) -> _Plan:
        return _Plan(
            tid=tid,
            debit=wallet,
            credit=expired_account,
            amount=amount,
            kind="expire",
            phase="single",
            actor=SYSTEM_EXPIRY,
            key=key,
            digest=digest,
            meta={"lot": lot_id, "funding": lot.funding, "expires_on": lot.expires_on.isoformat()},
            debit_deltas={"debits_posted": amount},
            credit_deltas={"credits_posted": amount},
            guard=amount,
            stripe=_stripe(tid),
            consume=[(lot_id, amount)],
        )

    return _keyed(
        uow, verb="expire", actor=SYSTEM_EXPIRY, key=key, fields=fields, make_plan=make_plan
    )


def as_of_day(uow: UnitOfWork, as_of: object, *, why: str, why_ja: str) -> date:
    """`as_of` as the Tokyo day a daily job runs as of: a date, today or earlier by the unit of
    work's clock. A day to come is refused (`as_of_in_future`, saying `why`): run early, a job
    would take from residents what is still theirs to use on the days between."""
    if isinstance(as_of, datetime) or not isinstance(as_of, date):
        raise errors.bad_field(
            "as_of", "as_of is a date (YYYY-MM-DD).", "基準日は日付で指定してください。"
        )
    today = tokyo_date(uow.now())
    if as_of > today:
        raise invalid(
            "as_of_in_future",
            f"This cannot run as of {as_of}, a day to come (today is {today} in Tokyo): {why}",
            f"{as_of} はまだ来ていない日のため、その日付では実行できません（東京の今日は"
            f" {today}）。{why_ja}",
            as_of=as_of.isoformat(),
            today=today.isoformat(),
        )
    return as_of


def expire_lots(
    uow: UnitOfWork,
    *,
    as_of: date,
    ledger: str | None = None,
    batch: int = 500,
    progress: Callable[[int], None] | None = None,
) -> ExpiryReport:
    """Move what is left of every lot whose last day is before `as_of` to the ledger's
    `expired` account. Safe to run again (each lot's expiry has its own derived key); runs in
    batches, each its own transaction, and reports progress per lot. `as_of` is today or
    earlier (`as_of_day`): a lot is spendable through its last day."""
    from mykey.ledger.accounts import open_account

    as_of = as_of_day(
        uow,
        as_of,
        why="points are spendable through their last day.",
        why_ja="ポイントは有効期限の日まで使えます。",
    )
    lots = points = 0
    while True:

        def one_batch() -> list[Receipt]:
            stmt = (
                select(L.c.id, L.c.ledger)
                .where(L.c.expires_on < as_of, L.c.remaining > 0)
                .order_by(L.c.id)
                .limit(batch)
            )
            if ledger is not None:
                stmt = stmt.where(L.c.ledger == ledger)
            done: list[Receipt] = []
            for lot_id, lot_ledger in uow.session.execute(stmt).all():
                sink = open_account(
                    uow, ledger=lot_ledger, kind=AccountKind.EXPIRED, owner="expired"
                )
                receipt = _expire_one(uow, int(lot_id), sink)
                if receipt is not None and not receipt.replayed:
                    done.append(receipt)
            return done

        receipts = uow.run(one_batch)
        if not receipts:
            return ExpiryReport(lots, points)
        lots += len(receipts)
        points += sum(r.amount for r in receipts)
        if progress is not None:
            progress(len(receipts))
        if uow.in_transaction:  # inside a caller's transaction: one pass sees everything
            return ExpiryReport(lots, points)


def void_expired(uow: UnitOfWork, *, now: datetime | None = None) -> int:
    """Void every pending transfer whose timeout has passed; returns how many."""
    resolved = T.alias("resolved")

    def body() -> list[UUID]:
        moment = now or uow.now()
        rows = uow.session.execute(
            select(T.c.id)
            .outerjoin(resolved, resolved.c.pending_id == T.c.id)
            .where(T.c.phase == "pending", T.c.expires_at <= moment, resolved.c.id.is_(None))
            .order_by(T.c.seq)
        ).all()
        for (pid,) in rows:
            void(uow, pending_id=pid, actor=SYSTEM_TIMEOUT, key=f"timeout-{pid}")
        return [r[0] for r in rows]

    return len(uow.run(body))
