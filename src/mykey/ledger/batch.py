"""Many credits from one account in one transaction: bulk grants to tens of thousands of wallets.

`transfer` costs a handful of statements a call; a town hall granting 80,000 residents at once
would wait minutes. `credit_many` writes the same rows (transfers, lots, counters, history
leaves) a chunk at a time with multi-row statements, so the whole file is one transaction that
takes seconds: every credit lands, or none does.

It is for credits only: the debit account is unguarded (a budget: nothing to check, no lots to
take), and every credit account is in the debit account's ledger. The caller makes the batch
idempotent as a whole (a bulk grant job has its own key); each transfer's id derives from the
batch id and its position, so the same batch can never be written twice.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date
from typing import Any, cast
from uuid import UUID, uuid5

from psycopg import errors as psycopg_errors
from sqlalchemy import Connection, Table, bindparam, update
from sqlalchemy.exc import IntegrityError

from mykey.db import (
    RetryTransaction,
    UnitOfWork,
    execute_plain_many,
    insert_arrays,
    insert_many,
    select_by_keys,
    tokyo_date,
)
from mykey.ledger import errors
from mykey.ledger.accounts import STRIPES, AccountKind
from mykey.ledger.idempotency import NAMESPACE, validate_actor
from mykey.ledger.models import AccountRow, LotRow, TransferRow
from mykey.ledger.transfers import (
    MAX_METADATA,
    LotTerms,
    Receipt,
    _accounts,
    _amount,
    _check_lot_shape,
    _kind,
    _leaf_payload,
    _metadata,
    _stripe_upsert,
)

A = cast(Table, AccountRow.__table__)
T = cast(Table, TransferRow.__table__)
L = cast(Table, LotRow.__table__)
CHUNK = 2000

ADD_CREDITS = (
    update(A)
    .where(A.c.id == bindparam("p_id"))
    .values(credits_posted=A.c.credits_posted + bindparam("p_amount"))
)

ADD_CREDITS_PG = (
    "UPDATE ledger_accounts AS a SET credits_posted = a.credits_posted + v.amount"
    " FROM unnest(%(ids)b::bigint[], %(amounts)b::bigint[]) AS v(id, amount) WHERE a.id = v.id"
)


@dataclass(frozen=True)
class Credit:
    """One credit of a batch: `owner`'s account of the batch's kind gets `amount` points."""

    owner: str
    amount: int
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class BatchReport:
    batch_id: UUID
    transfers: int
    points: int
    accounts_opened: int


def _chunks(items: Sequence[Credit], size: int) -> Iterator[tuple[int, Sequence[Credit]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def transfer_id(batch_id: UUID, position: int) -> UUID:
    """The id of the batch's transfer at `position` (0-based)."""
    return uuid5(NAMESPACE, f"batch\x1f{batch_id}\x1f{position}")


def _ids_of(conn: Connection, ledger: str, kind: AccountKind, owners: Sequence[str]) -> list[Any]:
    return select_by_keys(
        conn, A.c.owner, owners, [A.c.owner, A.c.id], A.c.ledger == ledger, A.c.kind == kind.value
    )


# Opening at least this many accounts at once refreshes PostgreSQL's statistics of the table:
# a never-analysed table makes its foreign-key checks' cached plans walk a whole ledger per row.
ANALYZE_AFTER = 1000


def open_accounts(
    uow: UnitOfWork,
    *,
    ledger: str,
    kind: AccountKind,
    owners: Sequence[str],
    credits: Mapping[str, int] | None = None,
) -> tuple[dict[str, int], set[str]]:
    """The ids of these owners' accounts of one kind in one ledger, opening the missing ones
    with multi-row inserts. Returns the ids and the owners whose accounts were opened now,
    each with `credits[owner]` already posted to its credits (a bulk credit writes no update
    of an account it has just made). Call inside a unit of work (it is a step of a larger use
    case). On PostgreSQL, opening `ANALYZE_AFTER` or more analyses the table in the
    transaction, so the plans of what follows see its size (issue #15)."""
    conn = uow.connection
    found: dict[str, int] = {}
    wanted = list(dict.fromkeys(owners))
    for start in range(0, len(wanted), CHUNK):
        part = wanted[start : start + CHUNK]
        rows = _ids_of(conn, ledger, kind, part)
        found.update({r.owner: int(r.id) for r in rows})
    missing = [o for o in wanted if o not in found]
    given = credits or {}
    if missing:
        now = uow.now()
        try:
            for start in range(0, len(missing), CHUNK):
                part = missing[start : start + CHUNK]
                insert_many(
                    conn,
                    A,
                    [
                        dict(
                            ledger=ledger,
                            kind=kind.value,
                            owner=owner,
                            guarded=kind.guarded,
                            debits_posted=0,
                            credits_posted=given.get(owner, 0),
                            debits_pending=0,
                            credits_pending=0,
                            created_at=now,
                        )
                        for owner in part
                    ],
                )
                rows = _ids_of(conn, ledger, kind, part)
                found.update({r.owner: int(r.id) for r in rows})
        except IntegrityError as exc:  # someone opened one of them at the same moment
            raise RetryTransaction from exc
        if conn.dialect.name == "postgresql" and len(missing) >= ANALYZE_AFTER:
            conn.exec_driver_sql("ANALYZE ledger_accounts")
    return found, set(missing)


# the budget's stripe of a chunk, in pipeline mode (`_stripe_upsert`, written out)
DEBIT_STRIPE_PG = (
    "INSERT INTO ledger_account_stripes AS s"
    " (account_id, stripe, debits_posted, credits_posted, debits_pending, credits_pending)"
    " VALUES (%s, %s, %s, 0, 0, 0) ON CONFLICT (account_id, stripe)"
    " DO UPDATE SET debits_posted = s.debits_posted + EXCLUDED.debits_posted"
)
SYNC_EVERY = 5


def _write_chunk(
    conn: Connection,
    transfers: list[dict[str, Any]],
    lots: list[dict[str, Any]],
    older: Mapping[int, int],
    debit: int,
    stripe: int,
    total: int,
) -> None:
    """A chunk's rows, statement by statement: its transfers and lots, the credits of the
    accounts that were there before the batch, the debit on the budget's stripe."""
    try:
        insert_many(conn, T, transfers)
    except IntegrityError as exc:  # the same batch, committed by a twin run
        raise RetryTransaction from exc
    if lots:
        insert_many(conn, L, lots)
    if older and conn.dialect.name == "postgresql":
        conn.exec_driver_sql(ADD_CREDITS_PG, {"ids": list(older), "amounts": list(older.values())})
    elif older:
        execute_plain_many(
            conn, ADD_CREDITS, [{"p_id": a, "p_amount": n} for a, n in older.items()]
        )
    conn.execute(
        _stripe_upsert(conn.dialect.name, ("debits_posted",)),
        {
            "p_id": debit,
            "p_stripe": stripe,
            "p_debits_posted": total,
            "p_credits_posted": 0,
            "p_debits_pending": 0,
            "p_credits_pending": 0,
        },
    )


def credit_many(
    uow: UnitOfWork,
    *,
    batch_id: UUID,
    debit: int,
    credit_kind: AccountKind,
    credits: Sequence[Credit],
    kind: str,
    actor: str,
    lot: LotTerms | None = None,
    progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """Credit every `credits[i].owner`'s account of `credit_kind` (opened if need be) from the
    unguarded account `debit`, as one transfer each, in the caller's transaction.

    `progress(n)` is called after each chunk with the number of credits written so far (sent,
    on PostgreSQL to new accounts: see below); it must not use the database."""
    kind = _kind(kind)
    validate_actor(actor)
    _check_lot_shape(lot)
    amounts = [_amount(c.amount) for c in credits]
    metas = [json.dumps(c.metadata, sort_keys=True, ensure_ascii=False) for c in credits]
    if any(len(m) > MAX_METADATA // 4 for m in metas):  # a character is at most 4 bytes
        for c in credits:
            _metadata(c.metadata)  # the same checks and refusal as a single transfer's
    conn = uow.connection
    source = _accounts(conn, debit)[debit]
    if source.guarded:
        raise errors.bad_field(
            "debit",
            "A batch is paid from an unguarded account (a budget), never from a wallet.",
            "一括の付与は予算口座から行います（ウォレットからはできません）。",
        )
    now = uow.now()
    today = tokyo_date(now)
    if credit_kind.has_lots != (lot is not None):
        raise errors.bad_field(
            "lot",
            "Credits to wallets need lot terms (funding, expiry); other credits none.",
            "ウォレットへの付与には財源と有効期限が必要です（他の口座には不要です）。",
        )
    if lot is not None and lot.expires_on < today:
        raise errors.lot_expired(lot.expires_on)
    totals: dict[str, int] = defaultdict(int)
    for c, amount in zip(credits, amounts, strict=True):
        totals[c.owner] += amount
    ids, opened = open_accounts(
        uow, ledger=source.ledger, kind=credit_kind, owners=list(totals), credits=totals
    )
    new = {ids[owner] for owner in opened}  # opened with their credits of this batch posted
    guarded = credit_kind.guarded
    expires: date | None = lot.expires_on if lot is not None else None
    written = 0
    available: dict[int, int] = dict.fromkeys(new, 0)  # a new account's, as the batch goes
    # Every account new (a grant to residents who had no wallet here yet): nothing is read
    # between the chunks, so on PostgreSQL they go in psycopg's pipeline mode, each chunk sent
    # while the next is made (the server's work and the client's overlap), synced every
    # SYNC_EVERY chunks so that `progress` stays close to what the server has done.
    driver = conn.connection.driver_connection
    pipelined = conn.dialect.name == "postgresql" and len(new) == len(set(ids.values()))
    if pipelined:
        uow.log.ready(conn)  # what the log reads, read before the pipeline
    pipeline = driver.pipeline() if pipelined and driver is not None else nullcontext()
    try:
        with pipeline as pipe:
            for n, (start, part) in enumerate(_chunks(credits, CHUNK)):
                account_ids = [ids[c.owner] for c in part]
                if guarded and not pipelined:
                    rows = select_by_keys(
                        conn,
                        A.c.id,
                        list({a for a in account_ids if a not in new}),
                        [A.c.id, A.c.credits_posted - A.c.debits_posted - A.c.debits_pending],
                    )
                    available.update({int(r[0]): int(r[1]) for r in rows})
                transfers: list[dict[str, Any]] = []
                lots: list[dict[str, Any]] = []
                added: dict[int, int] = defaultdict(int)
                for offset, account_id in enumerate(account_ids):
                    position = start + offset
                    tid = transfer_id(batch_id, position)
                    amount = amounts[position]
                    after: int | None = None
                    if guarded:
                        available[account_id] += amount
                        after = available[account_id]
                    added[account_id] += amount
                    transfers.append(
                        dict(
                            id=tid,
                            ledger=source.ledger,
                            kind=kind,
                            phase="single",
                            debit_account_id=debit,
                            credit_account_id=account_id,
                            amount=amount,
                            pending_id=None,
                            reverses_id=None,
                            expires_at=None,
                            actor=actor,
                            client_key=None,
                            request_hash=None,
                            metadata=metas[position],
                            debit_balance=None,
                            credit_balance=after,
                            created_at=now,
                        )
                    )
                    if expires is not None:
                        lots.append(
                            dict(
                                ledger=source.ledger,
                                account_id=account_id,
                                transfer_id=tid,
                                funding=cast(LotTerms, lot).funding,
                                source_account_id=debit,
                                expires_on=expires,
                                original=amount,
                                remaining=amount,
                                created_at=now,
                            )
                        )
                stripe = (batch_id.int + start) % STRIPES
                older = {a: k for a, k in added.items() if a not in new}  # there before
                if pipe is not None:
                    assert driver is not None
                    assert not older
                    for table, made in ((T, transfers), (L, lots)):
                        if made:
                            driver.execute(*insert_arrays(conn, table, made))
                    driver.execute(DEBIT_STRIPE_PG, (debit, stripe, sum(added.values())))
                else:
                    _write_chunk(conn, transfers, lots, older, debit, stripe, sum(added.values()))
                uow.log.append_many(
                    conn,
                    [
                        (
                            "transfer",
                            _leaf_payload(
                                Receipt(
                                    transfer_id=row["id"],
                                    ledger=source.ledger,
                                    kind=kind,
                                    phase="single",
                                    debit_account_id=debit,
                                    credit_account_id=row["credit_account_id"],
                                    amount=row["amount"],
                                    actor=actor,
                                    created_at=now,
                                )
                            ),
                        )
                        for row in transfers
                    ],
                )
                if pipe is not None and (n + 1) % SYNC_EVERY == 0:
                    pipe.sync()
                written += len(part)
                if progress is not None:
                    progress(written)
    except psycopg_errors.UniqueViolation as exc:  # the same batch, committed by a twin run
        raise RetryTransaction from exc
    return BatchReport(batch_id, len(credits), sum(amounts), len(opened))


__all__ = ["BatchReport", "Credit", "credit_many", "open_accounts", "transfer_id"]
