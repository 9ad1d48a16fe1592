"""Accumulating programs (R4.3): points accrue over a fiscal year, then are paid out or donated.

A rule of a program may accrue (`Rule.accrues`, e.g. care-support volunteering). Its grants do
not go to the resident's wallet: they credit the resident's accrual account for the fiscal year
(April–March) of the grant, an account of kind `accrual` in the municipality's ledger, guarded
and without lots (accrued points cannot be spent). After the fiscal year ends, the year is
closed (`close_accrual_year`): each resident's accrued points move, by their choice (or the
program's default), to their `payout` account (yen the municipality owes them, with a payout
record that staff mark paid when the bank transfer is done) or to the municipality's
`donation` account (with a donation record). Closing twice does nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError

from mykey import ledger
from mykey.db import RetryTransaction, UnitOfWork, tokyo_date
from mykey.errors import invalid, not_found, refused
from mykey.identity.residents import normalise_mykey_id
from mykey.ledger import Account, AccountKind
from mykey.municipalities.codes import parse_code
from mykey.points.models import Accrual, AccrualChoice, AccrualClosing, PointProgram
from mykey.points.program_setup import ACCRUAL_CHOICES, program_of
from mykey.points.programs import fiscal_year_end

SYSTEM_ACTOR = "system:accruals"
PAID_ACCOUNT = "accrual_payouts"  # owner of the settlement account that paid payouts go to


def accrual_owner(mykey_id: str, fiscal_year: int) -> str:
    """The ledger owner of a resident's accrual account for one fiscal year."""
    return f"{mykey_id}:{fiscal_year}"


def accrual_account(uow: UnitOfWork, code: str, fiscal_year: int, mykey_id: str) -> Account:
    """The resident's accrual account for this program and fiscal year (opened on first use).
    Call inside a transaction."""
    s = uow.session
    account = ledger.open_account(
        uow, ledger=code, kind=AccountKind.ACCRUAL, owner=accrual_owner(mykey_id, fiscal_year)
    )
    if s.get(Accrual, (code, fiscal_year, mykey_id)) is None:
        s.add(
            Accrual(
                code=code,
                fiscal_year=fiscal_year,
                mykey_id=mykey_id,
                account_id=account.id,
                created_at=uow.now(),
            )
        )
        try:
            s.flush()
        except IntegrityError as exc:  # a twin grant opened it first
            raise RetryTransaction from exc
    return account


# ---------------------------------------------------------------------------------------------
# the resident's choice


def _check_choice(choice: str) -> str:
    if choice not in ACCRUAL_CHOICES:
        raise invalid(
            "invalid_accrual_choice",
            "Choose payout (paid in yen to your bank account) or donation.",
            "payout（現金で受け取る）か donation（寄付する）を選んでください。",
        )
    return choice


def _choice_of(uow: UnitOfWork, code: str, mykey_id: str, default: str) -> str:
    row = uow.session.get(AccrualChoice, (code, mykey_id))
    return row.choice if row is not None else default


@dataclass(frozen=True)
class Choice:
    municipality: str
    mykey_id: str
    choice: str  # payout | donation
    chosen: bool  # False: the program's default applies


def choose(uow: UnitOfWork, *, municipality: str, mykey_id: str, choice: str) -> Choice:
    """The resident's standing choice for this program's accrued points (payout or donation);
    it applies to every year closed after it is made. Setting it again is harmless."""
    code = parse_code(municipality)
    who = normalise_mykey_id(mykey_id)
    _check_choice(choice)

    def body() -> Choice:
        program_of(uow, code)
        s = uow.session
        row = s.get(AccrualChoice, (code, who))
        if row is None:
            s.add(AccrualChoice(code=code, mykey_id=who, choice=choice, updated_at=uow.now()))
            try:
                s.flush()
            except IntegrityError as exc:
                raise RetryTransaction from exc
        elif row.choice != choice:
            row.choice = choice
            row.updated_at = uow.now()
            s.flush()
        return Choice(code, who, choice, True)

    return uow.run(body)


# ---------------------------------------------------------------------------------------------
# what a resident sees


@dataclass(frozen=True)
class Accruing:
    """Points accruing in one program's fiscal year, not yet closed."""

    municipality: str
    point_name: str
    fiscal_year: int
    points: int
    closes_after: date  # the last day of the fiscal year
    choice: str
    chosen: bool


@dataclass(frozen=True)
class Closing:
    """What the close of a year did with one resident's accrued points."""

    municipality: str
    fiscal_year: int
    mykey_id: str
    outcome: str  # payout | donation
    points: int  # 1 point = 1 yen
    status: str  # pending | paid (payouts); donated
    closed_at: datetime
    paid_at: datetime | None
    paid_reference: str | None


@dataclass(frozen=True)
class ResidentAccruals:
    accruing: tuple[Accruing, ...]
    closed: tuple[Closing, ...]


def _closing(row: AccrualClosing) -> Closing:
    return Closing(
        municipality=row.code,
        fiscal_year=row.fiscal_year,
        mykey_id=row.mykey_id,
        outcome=row.outcome,
        points=row.points,
        status=row.status,
        closed_at=row.closed_at,
        paid_at=row.paid_at,
        paid_reference=row.paid_reference,
    )


def accruals_of(uow: UnitOfWork, mykey_id: str) -> ResidentAccruals:
    """The resident's accruing points (years not yet closed) and what closed years became."""
    who = normalise_mykey_id(mykey_id)

    def body() -> ResidentAccruals:
        s = uow.session
        closed = {
            (r.code, r.fiscal_year): r
            for r in s.scalars(select(AccrualClosing).where(AccrualClosing.mykey_id == who))
        }
        accruing = []
        rows = s.execute(
            select(Accrual, PointProgram.point_name, PointProgram.accrual_default)
            .join(PointProgram, PointProgram.code == Accrual.code)
            .where(Accrual.mykey_id == who)
            .order_by(Accrual.code, Accrual.fiscal_year)
        ).all()
        for acc, point_name, default in rows:
            if (acc.code, acc.fiscal_year) in closed:
                continue
            row = s.get(AccrualChoice, (acc.code, who))
            accruing.append(
                Accruing(
                    municipality=acc.code,
                    point_name=point_name,
                    fiscal_year=acc.fiscal_year,
                    points=ledger.balance(uow, acc.account_id).available,
                    closes_after=date(acc.fiscal_year + 1, 3, 31),
                    choice=row.choice if row is not None else default,
                    chosen=row is not None,
                )
            )
        return ResidentAccruals(
            tuple(accruing),
            tuple(_closing(r) for _, r in sorted(closed.items(), key=lambda item: item[0])),
        )

    return uow.read(body)


# ---------------------------------------------------------------------------------------------
# closing a year


@dataclass(frozen=True)
class CloseReport:
    municipality: str
    fiscal_year: int
    payouts: int
    payout_points: int
    donations: int
    donation_points: int
    already_closed: int  # closed by an earlier run: nothing done
    empty: int  # nothing left to close (every accruing grant was reversed)


FIRST_FISCAL_YEAR, LAST_FISCAL_YEAR = 2000, 2200  # the fiscal years a program can have


def _check_year(fiscal_year: int) -> int:
    if isinstance(fiscal_year, bool) or not isinstance(fiscal_year, int):
        fiscal_year = -1
    if not FIRST_FISCAL_YEAR <= fiscal_year <= LAST_FISCAL_YEAR:
        raise invalid(
            "invalid_fiscal_year",
            "A fiscal year is given by the calendar year it starts in (April), e.g. 2026.",
            "年度は開始年（4 月の属する年）で指定してください（例: 2026）。",
        )
    return fiscal_year


def accruals_to_close(uow: UnitOfWork, *, municipality: str, fiscal_year: int) -> int:
    """How many residents accrued points in the program's fiscal year (for a progress bar)."""
    code = parse_code(municipality)
    year = _check_year(fiscal_year)
    return uow.read(
        lambda: len(
            uow.session.scalars(
                select(Accrual.mykey_id).where(Accrual.code == code, Accrual.fiscal_year == year)
            ).all()
        )
    )


def close_accrual_year(
    uow: UnitOfWork,
    *,
    municipality: str,
    fiscal_year: int,
    actor: str = SYSTEM_ACTOR,
    batch: int = 200,
    progress: Callable[[int], None] | None = None,
) -> CloseReport:
    """Close a fiscal year of the program's accruals, once it is over: each resident's accrued
    points go to their payout account (with a pending payout record) or to the municipality's
    donation account (with a donation record), by their choice or the program's default.

    Runs in batches of residents, each batch one transaction; every resident's close is keyed
    (`accrual-close:{code}:{year}:{mykey_id}`) and recorded, so running it again (after a
    crash, or twice) closes nobody twice."""
    code = parse_code(municipality)
    year = _check_year(fiscal_year)

    def check() -> str:
        program = program_of(uow, code)
        last_day = fiscal_year_end(date(year, 4, 1))
        if tokyo_date(uow.now()) <= last_day:
            raise refused(
                "year_not_over",
                f"Fiscal year {year} runs until {last_day}; close it after that day.",
                f"{year} 年度は {last_day} までです。年度が終わってから締めてください。",
                last_day=str(last_day),
            )
        return program.accrual_default

    default = uow.read(check)
    totals = {"payout": [0, 0], "donation": [0, 0]}
    already = empty = 0

    def one_batch(after: str) -> tuple[list[tuple[str, str, int]], int, int, str]:
        s = uow.session
        # Locked (on PostgreSQL), so that a second close running at once waits for this batch
        # and then sees its records, instead of racing it to the accrual accounts.
        rows = s.execute(
            select(Accrual.mykey_id, Accrual.account_id)
            .where(
                Accrual.code == code,
                Accrual.fiscal_year == year,
                Accrual.mykey_id > after,
            )
            .order_by(Accrual.mykey_id)
            .limit(batch)
            .with_for_update()
        ).all()
        done: list[tuple[str, str, int]] = []
        skipped = nothing = 0
        for who, account_id in rows:
            if s.get(AccrualClosing, (code, year, who)) is not None:
                skipped += 1
                continue
            points = ledger.balance(uow, account_id).available
            if points <= 0:
                nothing += 1
                continue
            outcome = _choice_of(uow, code, who, default)
            if outcome == "payout":
                dest = ledger.open_account(uow, ledger=code, kind=AccountKind.PAYOUT, owner=who)
            else:
                dest = ledger.open_account(uow, ledger=code, kind=AccountKind.DONATION, owner=code)
            receipt = ledger.transfer(
                uow,
                debit=account_id,
                credit=dest.id,
                amount=points,
                kind=f"accrual_{outcome}",
                actor=actor,
                key=f"accrual-close:{code}:{year}:{who}",
                metadata={"fiscal_year": year, "mykey_id": who},
            )
            s.add(
                AccrualClosing(
                    code=code,
                    fiscal_year=year,
                    mykey_id=who,
                    outcome=outcome,
                    points=points,
                    status="pending" if outcome == "payout" else "donated",
                    transfer_id=str(receipt.transfer_id),
                    closed_at=uow.now(),
                )
            )
            try:
                s.flush()
            except IntegrityError as exc:  # another run closed this resident first
                raise RetryTransaction from exc
            done.append((who, outcome, points))
        return done, skipped, nothing, (rows[-1].mykey_id if rows else "")

    after = ""
    while True:
        done, skipped, nothing, last = uow.run(partial(one_batch, after))
        for _, outcome, points in done:
            totals[outcome][0] += 1
            totals[outcome][1] += points
        already += skipped
        empty += nothing
        if progress is not None and (done or skipped or nothing):
            progress(len(done) + skipped + nothing)
        if not last:
            break
        after = last
    return CloseReport(
        municipality=code,
        fiscal_year=year,
        payouts=totals["payout"][0],
        payout_points=totals["payout"][1],
        donations=totals["donation"][0],
        donation_points=totals["donation"][1],
        already_closed=already,
        empty=empty,
    )


# ---------------------------------------------------------------------------------------------
# payouts (staff)


def closings(
    uow: UnitOfWork,
    *,
    municipality: str,
    fiscal_year: int | None = None,
    outcome: str | None = None,
    status: str | None = None,
) -> list[Closing]:
    """The program's closed accruals (payouts and donations), by year and MyKey ID."""
    code = parse_code(municipality)
    if fiscal_year is not None:
        _check_year(fiscal_year)
    if outcome is not None:
        _check_choice(outcome)
    if status is not None and status not in ("pending", "paid", "donated"):
        raise invalid(
            "invalid_status",
            "A status is pending, paid or donated.",
            "状態は pending・paid・donated のいずれかです。",
        )

    def body() -> list[Closing]:
        program_of(uow, code)
        stmt = select(AccrualClosing).where(AccrualClosing.code == code)
        if fiscal_year is not None:
            stmt = stmt.where(AccrualClosing.fiscal_year == fiscal_year)
        if outcome is not None:
            stmt = stmt.where(AccrualClosing.outcome == outcome)
        if status is not None:
            stmt = stmt.where(AccrualClosing.status == status)
        rows = uow.session.scalars(
            stmt.order_by(AccrualClosing.fiscal_year, AccrualClosing.mykey_id)
        )
        return [_closing(r) for r in rows]

    return uow.read(body)


@dataclass(frozen=True)
class PaidReceipt:
    payout: Closing
    already_paid: bool  # marked paid before: nothing done


def mark_paid(
    uow: UnitOfWork,
    *,
    municipality: str,
    fiscal_year: int,
    mykey_id: str,
    actor: str,
    reference: str,
) -> PaidReceipt:
    """Record that the bank transfer of a payout is done: its points leave the resident's
    payout account for the municipality's settlement account, and the payout is `paid`.
    Marking it paid again changes nothing."""
    code = parse_code(municipality)
    year = _check_year(fiscal_year)
    who = normalise_mykey_id(mykey_id)
    if not reference.strip() or len(reference) > 100:
        raise invalid(
            "invalid_reference",
            "Give the bank transfer's reference (up to 100 characters).",
            "振込の参照番号など（100 文字以内）を入力してください。",
        )

    def body() -> PaidReceipt:
        s = uow.session
        row = s.execute(  # locked: two desks marking it paid at once are serialised
            select(AccrualClosing)
            .where(
                AccrualClosing.code == code,
                AccrualClosing.fiscal_year == year,
                AccrualClosing.mykey_id == who,
            )
            .with_for_update()
        ).scalar_one_or_none()
        if row is None or row.outcome != "payout":
            raise not_found(
                "unknown_payout",
                f"There is no payout of fiscal year {year} to {who}.",
                f"{who} への {year} 年度の支払はありません。",
            )
        if row.status == "paid":
            return PaidReceipt(_closing(row), True)
        payout = ledger.find_account(uow, ledger=code, kind=AccountKind.PAYOUT, owner=who)
        settled = ledger.open_account(
            uow, ledger=code, kind=AccountKind.SETTLEMENT, owner=PAID_ACCOUNT
        )
        receipt = ledger.transfer(
            uow,
            debit=payout.id,
            credit=settled.id,
            amount=row.points,
            kind="accrual_paid",
            actor=actor,
            key=f"accrual-paid:{code}:{year}:{who}",
            metadata={"fiscal_year": year, "mykey_id": who, "reference": reference},
        )
        now = uow.now()
        done = s.execute(
            update(AccrualClosing)
            .where(
                AccrualClosing.code == code,
                AccrualClosing.fiscal_year == year,
                AccrualClosing.mykey_id == who,
                AccrualClosing.status == "pending",
            )
            .values(
                status="paid",
                paid_at=now,
                paid_by=actor,
                paid_reference=reference,
                paid_transfer_id=str(receipt.transfer_id),
            )
            .execution_options(synchronize_session=False)
        )
        if not cast(CursorResult[Any], done).rowcount:  # marked paid meanwhile
            raise RetryTransaction
        s.expire(row)
        return PaidReceipt(_closing(row), False)

    return uow.run(body)
