"""Ledgers and accounts: opening them, finding them, reading balances."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.exc import IntegrityError

from mykey.db import RetryTransaction, UnitOfWork
from mykey.ledger import errors
from mykey.ledger.models import AccountRow, AccountStripeRow, LedgerRow

LEDGER_CODE = re.compile(r"[0-9]{6}|[a-z][a-z0-9_]{0,15}")
OWNER = re.compile(r"[^\s\x00-\x1f]{1,128}")
STRIPES = 16


class AccountKind(StrEnum):
    """Who an account belongs to; decides whether it is guarded and whether it has lots."""

    WALLET = "wallet"  # a resident's points in one ledger: guarded, made of lots
    BUDGET = "budget"  # a municipality's issuance: grants and premiums come from here
    PARTNER = "partner"  # a partner company: converted points it funds (and pays in yen)
    SHOP = "shop"  # a shop or facility: points taken there, owed to it in yen
    VOUCHER_FLOAT = "voucher_float"  # point vouchers issued and not yet redeemed: guarded
    EXPIRED = "expired"  # points that lapsed (breakage)
    SETTLEMENT = "settlement"  # settled in yen at month end
    ACCRUAL = "accrual"  # a resident's points accumulating over one fiscal year: guarded, no lots
    PAYOUT = "payout"  # yen owed to a resident for a closed accrual, until paid: guarded
    DONATION = "donation"  # accrued points a resident chose to donate

    @property
    def guarded(self) -> bool:
        """Debits may never exceed credits (no balance below zero)."""
        return self in GUARDED

    @property
    def has_lots(self) -> bool:
        return self is AccountKind.WALLET


GUARDED = frozenset(
    {AccountKind.WALLET, AccountKind.VOUCHER_FLOAT, AccountKind.ACCRUAL, AccountKind.PAYOUT}
)


@dataclass(frozen=True)
class Account:
    id: int
    ledger: str
    kind: AccountKind
    owner: str

    @property
    def guarded(self) -> bool:
        return self.kind.guarded


@dataclass(frozen=True)
class Balance:
    """An account's counters. `available` is what a guarded account may still spend."""

    account_id: int
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int

    @property
    def posted(self) -> int:
        """Credits minus debits: a wallet's points, or (negative) what a budget has issued."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending


@dataclass(frozen=True)
class Ledger:
    code: str
    name: str


def _check_ledger_code(code: object) -> str:
    if not isinstance(code, str) or not LEDGER_CODE.fullmatch(code):
        raise errors.bad_field(
            "ledger",
            "A ledger code is a 6-digit local government code or a short lower-case name.",
            "台帳コードは 6 桁の地方公共団体コード、または小文字の短い名前です。",
        )
    return code


def open_ledger(uow: UnitOfWork, *, code: str, name: str) -> Ledger:
    """Open a ledger (one currency: one municipality's points), or return the one there is."""
    _check_ledger_code(code)
    if not name or len(name) > 200:
        raise errors.bad_field("name", "A ledger needs a name.", "台帳には名前が必要です。")

    def body() -> Ledger:
        row = uow.session.get(LedgerRow, code)
        if row is None:
            uow.session.add(LedgerRow(code=code, name=name, created_at=uow.now()))
            try:
                uow.session.flush()
            except IntegrityError as exc:
                raise RetryTransaction from exc
            return Ledger(code, name)
        return Ledger(row.code, row.name)

    return uow.run(body)


def open_account(uow: UnitOfWork, *, ledger: str, kind: AccountKind | str, owner: str) -> Account:
    """Open the account of `owner` of this kind in this ledger, or return the one there is."""
    _check_ledger_code(ledger)
    try:
        kind = AccountKind(kind)
    except ValueError:
        raise errors.bad_field(
            "kind", f"Unknown account kind {kind!r}.", f"口座種別 {kind!r} は不明です。"
        ) from None
    if not isinstance(owner, str) or not OWNER.fullmatch(owner):
        raise errors.bad_field(
            "owner",
            "An account owner is 1 to 128 visible characters.",
            "口座の所有者は 1〜128 文字で指定してください。",
        )

    def body() -> Account:
        s = uow.session
        found = s.scalars(
            select(AccountRow).where(
                AccountRow.ledger == ledger,
                AccountRow.kind == kind.value,
                AccountRow.owner == owner,
            )
        ).first()
        if found is not None:
            return Account(found.id, found.ledger, kind, found.owner)
        if s.get(LedgerRow, ledger) is None:
            raise errors.unknown_ledger(ledger)
        row = AccountRow(
            ledger=ledger,
            kind=kind.value,
            owner=owner,
            guarded=kind.guarded,
            debits_posted=0,
            credits_posted=0,
            debits_pending=0,
            credits_pending=0,
            created_at=uow.now(),
        )
        s.add(row)
        try:
            s.flush()
        except IntegrityError as exc:
            raise RetryTransaction from exc
        return Account(row.id, ledger, kind, owner)

    return uow.run(body)


def find_account(uow: UnitOfWork, *, ledger: str, kind: AccountKind | str, owner: str) -> Account:
    """The account of `owner`, or `unknown_account`."""

    def body() -> Account:
        row = uow.session.scalars(
            select(AccountRow).where(
                AccountRow.ledger == ledger, AccountRow.kind == str(kind), AccountRow.owner == owner
            )
        ).first()
        if row is None:
            raise errors.unknown_account(f"{ledger}/{kind}/{owner}")
        return Account(row.id, row.ledger, AccountKind(row.kind), row.owner)

    return uow.read(body)


def account_id_column(ledger: Any, kind: AccountKind, owner: Any) -> ScalarSelect[Any]:
    """The id of `owner`'s account of `kind` in `ledger` (NULL: none yet), as a scalar
    subquery: for a use case that reads it with its other look-ups in one statement."""
    return (
        select(AccountRow.id)
        .where(
            AccountRow.ledger == ledger,
            AccountRow.kind == str(kind),
            AccountRow.owner == owner,
        )
        .scalar_subquery()
    )


def wallet_id_column(ledger: Any, owner: Any) -> ScalarSelect[Any]:
    """The id of `owner`'s wallet in `ledger` (`account_id_column`)."""
    return account_id_column(ledger, AccountKind.WALLET, owner)


def get_account(uow: UnitOfWork, account_id: int) -> Account:
    def body() -> Account:
        row = uow.session.get(AccountRow, account_id)
        if row is None:
            raise errors.unknown_account(account_id)
        return Account(row.id, row.ledger, AccountKind(row.kind), row.owner)

    return uow.read(body)


def balance(uow: UnitOfWork, account_id: int) -> Balance:
    """The account's counters: its own row plus its stripes."""

    def body() -> Balance:
        row = uow.session.get(AccountRow, account_id)
        if row is None:
            raise errors.unknown_account(account_id)
        s = AccountStripeRow
        sums = uow.session.execute(
            select(
                func.coalesce(func.sum(s.debits_posted), 0),
                func.coalesce(func.sum(s.credits_posted), 0),
                func.coalesce(func.sum(s.debits_pending), 0),
                func.coalesce(func.sum(s.credits_pending), 0),
            ).where(s.account_id == account_id)
        ).one()
        return Balance(
            account_id,
            row.debits_posted + int(sums[0]),
            row.credits_posted + int(sums[1]),
            row.debits_pending + int(sums[2]),
            row.credits_pending + int(sums[3]),
        )

    return uow.read(body)
