"""Builders: make state through the real use cases, never by writing rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import count
from typing import cast

from sqlalchemy import Table

from mykey import ledger
from mykey.db import UnitOfWork, insert_many
from mykey.ledger import Account, AccountKind, LotTerms

FY_END = date(2027, 3, 31)
_keys = count(1)


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}"


@dataclass
class Town:
    code: str
    budget: Account
    partner: Account
    shop: Account
    other_shop: Account


def town(uow: UnitOfWork, code: str = "131164", name: str = "豊島区ポイント") -> Town:
    ledger.open_ledger(uow, code=code, name=name)
    return Town(
        code,
        ledger.open_account(uow, ledger=code, kind=AccountKind.BUDGET, owner=code),
        ledger.open_account(uow, ledger=code, kind=AccountKind.PARTNER, owner="jal"),
        ledger.open_account(uow, ledger=code, kind=AccountKind.SHOP, owner="shop-1"),
        ledger.open_account(uow, ledger=code, kind=AccountKind.SHOP, owner="shop-2"),
    )


def wallet(uow: UnitOfWork, t: Town, resident: str = "MY123456") -> Account:
    return ledger.open_account(uow, ledger=t.code, kind=AccountKind.WALLET, owner=resident)


def grant(
    uow: UnitOfWork,
    t: Town,
    w: Account,
    amount: int,
    *,
    expires_on: date = FY_END,
    funding: str = "budget",
) -> ledger.Receipt:
    source = t.partner if funding == "partner" else t.budget
    return ledger.transfer(
        uow,
        debit=source.id,
        credit=w.id,
        amount=amount,
        kind="grant",
        actor="staff:test",
        key=key("grant"),
        lot=LotTerms(funding, expires_on),
    )


def spend(uow: UnitOfWork, t: Town, w: Account, amount: int, **kw: object) -> ledger.Receipt:
    return ledger.transfer(
        uow,
        debit=w.id,
        credit=t.shop.id,
        amount=amount,
        kind="spend",
        actor=str(kw.get("actor", "terminal:T1")),
        key=str(kw.get("key", key("spend"))),
    )


def residents_in_bulk(uow: UnitOfWork, ids: Sequence[str]) -> None:
    """MyKey IDs for a bulk grant of tens of thousands, written as rows: the one place a builder
    writes rows itself, because `create_mykey_id` hashes a password with argon2 per ID (hours
    for 80,000). They share one real hash of PASSWORD_FOR_BULK."""
    from mykey.identity.models import Resident
    from mykey.identity.residents import _hasher

    shared = _hasher.hash(PASSWORD_FOR_BULK)
    with uow:
        now = uow.now()
        insert_many(
            uow.connection,
            cast(Table, Resident.__table__),
            [dict(mykey_id=m, password_hash=shared, created_at=now) for m in ids],
        )
        uow.commit()


PASSWORD_FOR_BULK = "bulk residents 2026"
