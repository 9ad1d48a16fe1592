"""Reading the ledger: a wallet's lots and an account's history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Connection, Table, bindparam, func, or_, select

from mykey.db import UnitOfWork
from mykey.ledger import errors
from mykey.ledger.models import AccountRow, LotRow, TransferRow

A = cast(Table, AccountRow.__table__)
L = cast(Table, LotRow.__table__)
T = cast(Table, TransferRow.__table__)
MAX_PAGE = 500


@dataclass(frozen=True)
class LotView:
    id: int
    account_id: int
    funding: str
    source_account_id: int
    expires_on: date
    original: int
    remaining: int
    created_at: datetime


@dataclass(frozen=True)
class HistoryEntry:
    """One transfer as seen from one account: `change` is signed (+ in, - out)."""

    seq: int
    transfer_id: UUID
    kind: str
    phase: str
    amount: int
    change: int
    counterparty_account_id: int
    created_at: datetime
    actor: str
    pending_id: UUID | None
    reverses_id: UUID | None
    metadata: dict[str, Any] = field(default_factory=dict)
    ledger: str = ""


@dataclass(frozen=True)
class HistoryPage:
    entries: tuple[HistoryEntry, ...]
    next_before: int | None  # pass as `before` for the next (older) page


def _require_account(uow: UnitOfWork, account_id: int) -> None:
    if uow.session.get(AccountRow, account_id) is None:
        raise errors.unknown_account(account_id)


def wallet_lots(uow: UnitOfWork, account_id: int, *, include_used: bool = False) -> list[LotView]:
    """A wallet's lots in the order a debit takes them (earliest expiry first)."""

    def body() -> list[LotView]:
        _require_account(uow, account_id)
        stmt = select(L).where(L.c.account_id == account_id).order_by(L.c.expires_on, L.c.id)
        if not include_used:
            stmt = stmt.where(L.c.remaining > 0)
        return [
            LotView(
                r.id,
                r.account_id,
                r.funding,
                r.source_account_id,
                r.expires_on,
                r.original,
                r.remaining,
                r.created_at,
            )
            for r in uow.session.execute(stmt).all()
        ]

    return uow.read(body)


USABLE_BALANCE = select(func.coalesce(func.sum(L.c.remaining), 0)).where(
    L.c.account_id == bindparam("p_account"),
    L.c.remaining > 0,
    L.c.expires_on >= bindparam("p_today"),
)


USABLE_SQL = (
    "(SELECT coalesce(sum(remaining), 0) FROM ledger_lots WHERE account_id = {account}"
    " AND remaining > 0 AND expires_on >= {today})"
)


def usable_sql(account: str, today: str) -> str:
    """`USABLE_BALANCE` as a scalar SQL expression, for a statement written as SQL (a driver
    statement, `Alongside.value`): `account` and `today` are SQL written in the code (a
    parameter's placeholder, a column), never a value."""
    return USABLE_SQL.format(account=account, today=today)


def usable_balance(conn: Connection, account_id: int, today: date) -> int:
    """What a wallet can spend on `today`: the sum of its lots not past their last day, in
    one statement of the caller's transaction (the rows are not read into Python)."""
    return int(
        conn.execute(USABLE_BALANCE, {"p_account": account_id, "p_today": today}).scalar_one()
    )


def _signed(incoming: bool, row: Any) -> int:
    """How much this transfer changed the posted balance on our side."""
    if row.phase in ("pending", "void"):
        return 0
    amount = int(row.amount)
    return amount if incoming else -amount


def history(
    uow: UnitOfWork, account_id: int, *, limit: int = 50, before: int | None = None
) -> HistoryPage:
    """The account's transfers, newest first, `limit` at a time."""
    return history_of(uow, [account_id], limit=limit, before=before)


def history_of(
    uow: UnitOfWork, account_ids: Sequence[int], *, limit: int = 50, before: int | None = None
) -> HistoryPage:
    """The transfers of these accounts (a resident's wallets, say), newest first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise errors.bad_field(
            "limit",
            f"A page holds 1 to {MAX_PAGE} entries.",
            f"1 ページの件数は 1〜{MAX_PAGE} で指定してください。",
        )
    ids = list(account_ids)

    def body() -> HistoryPage:
        for account_id in ids:
            _require_account(uow, account_id)
        if not ids:
            return HistoryPage((), None)
        stmt = (
            select(T)
            .where(or_(T.c.debit_account_id.in_(ids), T.c.credit_account_id.in_(ids)))
            .order_by(T.c.seq.desc())
            .limit(limit + 1)
        )
        if before is not None:
            stmt = stmt.where(T.c.seq < before)
        rows = uow.session.execute(stmt).all()
        mine = set(ids)
        entries = tuple(
            HistoryEntry(
                seq=r.seq,
                transfer_id=r.id,
                kind=r.kind,
                phase=r.phase,
                amount=r.amount,
                change=_signed(r.credit_account_id in mine, r),
                counterparty_account_id=(
                    r.debit_account_id if r.credit_account_id in mine else r.credit_account_id
                ),
                created_at=r.created_at,
                actor=r.actor,
                pending_id=r.pending_id,
                reverses_id=r.reverses_id,
                metadata=json.loads(r.metadata),
                ledger=r.ledger,
            )
            for r in rows[:limit]
        )
        return HistoryPage(entries, entries[-1].seq if len(rows) > limit else None)

    return uow.read(body)


def accounts_of(uow: UnitOfWork, *, owner: str, kind: str) -> list[tuple[int, str]]:
    """(account id, ledger) of every account of this owner and kind, by ledger."""
    return uow.read(
        lambda: [
            (int(r.id), str(r.ledger))
            for r in uow.session.execute(
                select(A.c.id, A.c.ledger)
                .where(A.c.owner == owner, A.c.kind == kind)
                .order_by(A.c.ledger)
            )
        ]
    )
