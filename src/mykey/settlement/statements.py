"""Monthly settlement statements from the ledger's own records (issue #6, R5.5, R7).

A month is a Tokyo calendar month; a transfer belongs to the month in which it was booked
(its `created_at` in Tokyo time). For every municipality ledger, each *party account* (a
partner's, a shop's, a commerce association's, the operating-share account, the expired
account per funding source, the accrual payouts account) has its month's movements summed
into one statement; `close_month` records each statement and moves the month's net movement
out of the party account into a settlement account of that period and party
(`SETTLEMENT`, owner `<party kind>:<party id>:<YYYY-MM>`), with a transfer of kind `settle`
under a key derived from (month, municipality, party). Settlement transfers are not
movements of any month. `check_month` recomputes everything and names each difference.
See docs/settlement.md for what is settled, in which direction, and why.
"""

from __future__ import annotations

import csv
import io
import re
import typing
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Table, and_, cast, func, literal, or_, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import Date

from mykey import ledger
from mykey.db import TOKYO, RetryTransaction, UnitOfWork, insert_many
from mykey.errors import MyKeyError, invalid, not_found, refused
from mykey.ledger import AccountKind
from mykey.ledger.models import AccountRow, LotRow, LotUseRow, TransferRow
from mykey.points.accruals import PAID_ACCOUNT
from mykey.settlement.models import SettlementLedgerClose, SettlementMonth, Statement, StatementDay

SETTLE_KIND = "settle"
ACTOR = "system:settlement"
NAMESPACE = uuid.UUID("6f1d3c52-3a7e-4c1e-9b8a-5e0f2b6c9d41")
MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
MUNICIPALITY_LEDGER = re.compile(r"[0-9]{6}")
VOUCHER_FUNDING = "voucher"  # breakage of receipt vouchers (no wallet, no lot)

# party kinds, and whether the party's account is debit-normal (partners owe the town)
PARTNER, SHOP, ASSOCIATION = "partner", "shop", "association"
OPERATING_SHARE, BREAKAGE, PAYOUTS = "operating_share", "breakage", "resident_payouts"
PARTY_KINDS = (PARTNER, SHOP, ASSOCIATION, OPERATING_SHARE, BREAKAGE, PAYOUTS)
PARTY_NAMES_JA = {
    PARTNER: "協力企業",
    SHOP: "店舗・施設",
    ASSOCIATION: "商工会",
    OPERATING_SHARE: "運営手数料",
    BREAKAGE: "失効",
    PAYOUTS: "住民への支払",
}

T = typing.cast(Table, TransferRow.__table__)
A = typing.cast(Table, AccountRow.__table__)


def cast_table(model: type[Any]) -> Table:
    return typing.cast(Table, model.__table__)


# ---------------------------------------------------------------------------------------------
# months


@dataclass(frozen=True)
class Month:
    """A Tokyo calendar month and its bounds in UTC ([start, end))."""

    year: int
    number: int

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.number:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.number, 1, tzinfo=TOKYO).astimezone(UTC)

    @property
    def end(self) -> datetime:
        year, number = (self.year + 1, 1) if self.number == 12 else (self.year, self.number + 1)
        return datetime(year, number, 1, tzinfo=TOKYO).astimezone(UTC)


def parse_month(value: object) -> Month:
    match = MONTH.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise invalid(
            "invalid_month",
            "A month is written YYYY-MM, e.g. 2026-10.",
            "月は 2026-10 のように YYYY-MM で指定してください。",
        )
    return Month(int(match.group(1)), int(match.group(2)))


def statement_id(month: str, municipality: str, party_kind: str, party_id: str) -> UUID:
    return uuid.uuid5(NAMESPACE, f"{month}\n{municipality}\n{party_kind}\n{party_id}")


def settlement_owner(month: str, party_kind: str, party_id: str) -> str:
    """The owner of the period settlement account of a party (SETTLEMENT kind)."""
    return f"{party_kind}:{party_id}:{month}"


# ---------------------------------------------------------------------------------------------
# computing statements from the ledger


@dataclass
class Computed:
    """A statement as the ledger says it is (before or without storing it)."""

    municipality: str
    party_kind: str
    party_id: str
    account_id: int
    credits: int = 0
    debits: int = 0
    transfers: int = 0
    via_association: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    days: dict[date, list[int]] = field(default_factory=dict)  # day -> [credits, debits, n]

    @property
    def movement(self) -> int:
        """Credits minus debits of the party account in the month: what the close moves out."""
        return self.credits - self.debits

    @property
    def amount(self) -> int:
        """Yen in the statement's direction: partners pay the town; the town pays the rest
        (or keeps: operating share, breakage)."""
        return -self.movement if self.party_kind == PARTNER else self.movement

    @property
    def payable(self) -> int:
        if self.party_kind == SHOP:
            return self.amount - self.via_association  # the association pays the rest
        if self.party_kind == ASSOCIATION:
            return self.credits  # vouchers cashed through it: the city pays the association
        return self.amount

    def add(self, day: date, credits: int, debits: int, count: int, lo: int, hi: int) -> None:
        self.credits += credits
        self.debits += debits
        self.transfers += count
        self.first_seq = lo if self.first_seq is None else min(self.first_seq, lo)
        self.last_seq = hi if self.last_seq is None else max(self.last_seq, hi)
        line = self.days.setdefault(day, [0, 0, 0])
        line[0] += credits
        line[1] += debits
        line[2] += count


def _party_of(kind: str, owner: str, code: str) -> tuple[str, str] | None:
    """(party kind, party id) of an account, or None for accounts inside the municipality."""
    if kind == AccountKind.PARTNER.value:
        return PARTNER, owner
    if kind == AccountKind.SHOP.value:
        return SHOP, owner
    if kind == AccountKind.EXPIRED.value:
        return BREAKAGE, ""  # split by funding source
    if kind == AccountKind.SETTLEMENT.value:
        if owner.startswith("street:"):
            return ASSOCIATION, owner.removeprefix("street:")
        if owner == f"fee:{code}":
            return OPERATING_SHARE, code
        if owner == PAID_ACCOUNT:
            return PAYOUTS, code
    return None  # wallets, budget, voucher float, accruals, payouts owed, donations, periods


def _tokyo_day(uow: UnitOfWork, column: Any) -> ColumnElement[Any]:
    if uow.dialect == "postgresql":
        return cast(func.timezone("Asia/Tokyo", column), Date)
    return func.date(column, "+9 hours")


def _as_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _month_filter(month: Month) -> ColumnElement[bool]:
    return and_(
        T.c.created_at >= month.start,
        T.c.created_at < month.end,
        T.c.phase.in_(("single", "post")),
        T.c.kind != SETTLE_KIND,
    )


def compute(
    uow: UnitOfWork, month: Month, *, municipality: str | None = None
) -> dict[tuple[str, str, str], Computed]:
    """Every statement of the month as the ledger says it is, keyed by
    (municipality, party kind, party id). One pass over the month's transfers."""

    def body() -> dict[tuple[str, str, str], Computed]:
        conn = uow.connection
        accounts = select(A.c.id, A.c.ledger, A.c.kind, A.c.owner).where(
            A.c.kind.in_(
                [
                    AccountKind.PARTNER.value,
                    AccountKind.SHOP.value,
                    AccountKind.EXPIRED.value,
                    AccountKind.SETTLEMENT.value,
                ]
            )
        )
        if municipality is not None:
            accounts = accounts.where(A.c.ledger == municipality)
        parties: dict[int, tuple[str, str, str]] = {}
        for account_id, code, kind, owner in conn.execute(accounts).all():
            if not MUNICIPALITY_LEDGER.fullmatch(code):
                continue  # the reserved ledger belongs to no municipality (docs)
            role = _party_of(kind, owner, code)
            if role is not None:
                parties[int(account_id)] = (code, role[0], role[1])
        found: dict[tuple[str, str, str], Computed] = {}
        if not parties:
            return found
        day = _tokyo_day(uow, T.c.created_at)
        where = _month_filter(month)
        if municipality is not None:
            where = and_(where, T.c.ledger == municipality)
        expired = {a for a, p in parties.items() if p[1] == BREAKAGE}
        sides = union_all(
            select(
                T.c.credit_account_id.label("acc"),
                day.label("day"),
                T.c.amount.label("cr"),
                literal(0).label("dr"),
                T.c.seq.label("seq"),
            ).where(where, T.c.credit_account_id.in_(parties)),
            select(
                T.c.debit_account_id.label("acc"),
                day.label("day"),
                literal(0).label("cr"),
                T.c.amount.label("dr"),
                T.c.seq.label("seq"),
            ).where(where, T.c.debit_account_id.in_(parties)),
        ).subquery()
        grouped = (
            select(
                sides.c.acc,
                sides.c.day,
                func.sum(sides.c.cr),
                func.sum(sides.c.dr),
                func.count(),
                func.min(sides.c.seq),
                func.max(sides.c.seq),
            )
            .where(sides.c.acc.not_in(expired) if expired else literal(True))
            .group_by(sides.c.acc, sides.c.day)
        )
        rows: list[tuple[int, str, Any, int, int, int, int, int]] = []
        for acc, d, cr, dr, n, lo, hi in conn.execute(grouped).all():
            party = parties[int(acc)][2]
            rows.append((int(acc), party, d, int(cr), int(dr), int(n), int(lo), int(hi)))
        if expired:
            funding = func.coalesce(cast_table(LotRow).c.funding, literal(VOUCHER_FUNDING))
            lots, uses = cast_table(LotRow), cast_table(LotUseRow)
            side = or_(T.c.credit_account_id.in_(expired), T.c.debit_account_id.in_(expired))
            breakage = (
                select(
                    T.c.credit_account_id,
                    T.c.debit_account_id,
                    funding,
                    day,
                    func.sum(T.c.amount),
                    func.count(),
                    func.min(T.c.seq),
                    func.max(T.c.seq),
                )
                .select_from(
                    T.outerjoin(uses, uses.c.transfer_id == T.c.id).outerjoin(
                        lots, lots.c.id == uses.c.lot_id
                    )
                )
                .where(where, side)
                .group_by(T.c.credit_account_id, T.c.debit_account_id, funding, day)
            )
            for cr_acc, dr_acc, fund, d, total, n, lo, hi in conn.execute(breakage).all():
                incoming = int(cr_acc) in expired
                acc_id = int(cr_acc) if incoming else int(dr_acc)
                amount = int(total)
                rows.append(
                    (
                        acc_id,
                        str(fund),
                        d,
                        amount if incoming else 0,
                        0 if incoming else amount,
                        int(n),
                        int(lo),
                        int(hi),
                    )
                )
        for acc_id, party, d, cr, dr, n, lo, hi in rows:
            code, kind, _ = parties[acc_id]
            key = (code, kind, party)
            item = found.get(key)
            if item is None:
                item = found[key] = Computed(code, kind, party, acc_id)
            item.add(_as_date(d), cr, dr, n, lo, hi)
        associations = [a for a, p in parties.items() if p[1] == ASSOCIATION]
        if associations:
            via = (
                select(T.c.credit_account_id, func.sum(T.c.amount))
                .where(where, T.c.debit_account_id.in_(associations))
                .group_by(T.c.credit_account_id)
            )
            for shop_account, total in conn.execute(via).all():
                party_row = parties.get(int(shop_account))
                if party_row is not None and party_row[1] == SHOP:
                    found[party_row].via_association += int(total)
        return found

    return uow.read(body)


# ---------------------------------------------------------------------------------------------
# closing a month


@dataclass(frozen=True)
class CloseReport:
    month: str
    status: str  # "closed" or "already_closed"
    ledgers: int
    statements: int
    transfers: int  # settlement transfers booked by this run


def _refuse_open_month(month: Month, now: datetime) -> None:
    if now < month.end:
        raise refused(
            "month_not_ended",
            f"{month.label} has not ended yet (Tokyo time); it can be closed from"
            f" {month.end.astimezone(TOKYO):%Y-%m-%d %H:%M} JST.",
            f"{month.label} はまだ終わっていません（日本時間）。締めは月が終わってからです。",
            month=month.label,
        )


def municipality_ledgers(uow: UnitOfWork) -> list[str]:
    from mykey.ledger.models import LedgerRow

    def body() -> list[str]:
        codes = uow.session.scalars(select(LedgerRow.code).order_by(LedgerRow.code)).all()
        return [c for c in codes if MUNICIPALITY_LEDGER.fullmatch(c)]

    return uow.read(body)


def is_closed(uow: UnitOfWork, month: str) -> bool:
    return uow.read(lambda: uow.session.get(SettlementMonth, month) is not None)


def close_month(
    uow: UnitOfWork,
    *,
    month: str,
    actor: str = ACTOR,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> CloseReport:
    """Close a Tokyo month: record every statement and book its settlement transfer.

    One transaction per municipality ledger, so a close stopped half way resumes after the
    last ledger it finished; closing a closed month changes nothing (`already_closed`),
    whoever asks: a month is by nature closed once (its ledgers' close rows and settlement
    keys derive from the month), and two closes at once settle each ledger once (the second
    finds the first's work when its insert collides, and books nothing).
    `now` (default: the clock) must be after the month's end."""
    m = parse_month(month)
    moment = now or uow.now()
    if uow.read(lambda: uow.session.get(SettlementMonth, m.label)) is not None:
        count = uow.read(
            lambda: uow.session.scalar(
                select(func.count()).select_from(Statement).where(Statement.month == m.label)
            )
        )
        closed = uow.read(
            lambda: uow.session.scalar(
                select(func.count())
                .select_from(SettlementLedgerClose)
                .where(SettlementLedgerClose.month == m.label)
            )
        )
        return CloseReport(m.label, "already_closed", int(closed or 0), int(count or 0), 0)
    _refuse_open_month(m, moment)
    computed = compute(uow, m)
    by_ledger: dict[str, list[Computed]] = defaultdict(list)
    for item in computed.values():
        by_ledger[item.municipality].append(item)
    codes = municipality_ledgers(uow)
    booked = total = 0
    for code in codes:

        def one_ledger(code: str = code) -> int:
            s = uow.session
            if s.get(SettlementLedgerClose, (m.label, code)) is not None:
                return -1
            items = sorted(by_ledger.get(code, []), key=lambda c: (c.party_kind, c.party_id))
            done = 0
            statements: list[dict[str, Any]] = []
            days: list[dict[str, Any]] = []
            created = uow.now()
            for item in items:
                sid = statement_id(m.label, code, item.party_kind, item.party_id)
                settle_account: int | None = None
                transfer_id: UUID | None = None
                if item.movement:
                    period = ledger.open_account(
                        uow,
                        ledger=code,
                        kind=AccountKind.SETTLEMENT,
                        owner=settlement_owner(m.label, item.party_kind, item.party_id),
                    )
                    out = item.movement > 0
                    receipt = ledger.transfer(
                        uow,
                        debit=item.account_id if out else period.id,
                        credit=period.id if out else item.account_id,
                        amount=abs(item.movement),
                        kind=SETTLE_KIND,
                        actor=actor,
                        key=f"settle:{m.label}:{code}:{item.party_kind}:{item.party_id}",
                        metadata={
                            "month": m.label,
                            "party_kind": item.party_kind,
                            "party_id": item.party_id,
                            "statement_id": str(sid),
                        },
                    )
                    settle_account, transfer_id = period.id, receipt.transfer_id
                    done += 1
                statements.append(
                    {
                        "id": sid,
                        "month": m.label,
                        "municipality": code,
                        "party_kind": item.party_kind,
                        "party_id": item.party_id,
                        "account_id": item.account_id,
                        "credits": item.credits,
                        "debits": item.debits,
                        "transfers": item.transfers,
                        "amount": item.amount,
                        "via_association": item.via_association,
                        "payable": item.payable,
                        "first_seq": item.first_seq,
                        "last_seq": item.last_seq,
                        "settlement_account_id": settle_account,
                        "transfer_id": transfer_id,
                        "created_at": created,
                    }
                )
                for d, (cr, dr, n) in sorted(item.days.items()):
                    days.append(
                        {"statement_id": sid, "day": d, "credits": cr, "debits": dr, "transfers": n}
                    )
            try:
                insert_many(uow.connection, cast_table(Statement), statements)
                insert_many(uow.connection, cast_table(StatementDay), days)
                s.add(
                    SettlementLedgerClose(
                        month=m.label, ledger=code, statements=len(items), closed_at=created
                    )
                )
                s.flush()
            except IntegrityError as exc:  # another close of this month did this ledger first
                raise RetryTransaction from exc
            return done

        done = uow.run(one_ledger)
        if done >= 0:
            booked += done
        total += len(by_ledger.get(code, []))
        if progress is not None:
            progress(code)

    def finish() -> None:
        if uow.session.get(SettlementMonth, m.label) is None:
            uow.session.add(
                SettlementMonth(
                    month=m.label,
                    ledgers=len(codes),
                    statements=total,
                    closed_by=actor,
                    closed_at=uow.now(),
                )
            )
            try:
                uow.session.flush()
            except IntegrityError as exc:  # another close finished the month first
                raise RetryTransaction from exc

    uow.run(finish)
    return CloseReport(m.label, "closed", len(codes), total, booked)


# ---------------------------------------------------------------------------------------------
# reading statements


@dataclass(frozen=True)
class DayLine:
    day: date
    credits: int
    debits: int
    transfers: int


@dataclass(frozen=True)
class StatementView:
    id: UUID
    month: str
    municipality: str
    party_kind: str
    party_id: str
    account_id: int
    credits: int
    debits: int
    transfers: int
    amount: int
    via_association: int
    payable: int
    transfer_id: UUID | None
    settlement_account_id: int | None
    created_at: datetime
    days: tuple[DayLine, ...] = ()

    def day_amount(self, line: DayLine) -> int:
        """A day's movement in the statement's direction (as `amount`)."""
        net = line.credits - line.debits
        return -net if self.party_kind == PARTNER else net


@dataclass(frozen=True)
class CoveredTransfer:
    id: UUID
    booked_at: datetime
    kind: str
    amount: int  # signed in the statement's direction
    counterparty_account_id: int


def _view(row: Statement, days: Sequence[StatementDay] = ()) -> StatementView:
    return StatementView(
        id=row.id,
        month=row.month,
        municipality=row.municipality,
        party_kind=row.party_kind,
        party_id=row.party_id,
        account_id=row.account_id,
        credits=row.credits,
        debits=row.debits,
        transfers=row.transfers,
        amount=row.amount,
        via_association=row.via_association,
        payable=row.payable,
        transfer_id=row.transfer_id,
        settlement_account_id=row.settlement_account_id,
        created_at=row.created_at,
        days=tuple(DayLine(d.day, d.credits, d.debits, d.transfers) for d in days),
    )


def list_statements(
    uow: UnitOfWork,
    *,
    month: str,
    municipality: str | None = None,
    party_kind: str | None = None,
    party_id: str | None = None,
) -> list[StatementView]:
    """Stored statements of a month (empty until the month is closed)."""
    m = parse_month(month)

    def body() -> list[StatementView]:
        stmt = select(Statement).where(Statement.month == m.label)
        if municipality is not None:
            stmt = stmt.where(Statement.municipality == municipality)
        if party_kind is not None:
            stmt = stmt.where(Statement.party_kind == party_kind)
        if party_id is not None:
            stmt = stmt.where(Statement.party_id == party_id)
        order = (Statement.municipality, Statement.party_kind, Statement.party_id)
        return [_view(r) for r in uow.session.scalars(stmt.order_by(*order)).all()]

    return uow.read(body)


def unknown_statement(value: object) -> MyKeyError:
    return not_found(
        "unknown_statement",
        f"There is no settlement statement {value}.",
        f"精算明細 {value} はありません。",
    )


def get_statement(uow: UnitOfWork, statement: UUID | str) -> StatementView:
    """A stored statement with its day lines."""
    try:
        sid = statement if isinstance(statement, UUID) else UUID(str(statement))
    except ValueError:
        raise unknown_statement(statement) from None

    def body() -> StatementView:
        row = uow.session.get(Statement, sid)
        if row is None:
            raise unknown_statement(sid)
        days = uow.session.scalars(
            select(StatementDay).where(StatementDay.statement_id == sid).order_by(StatementDay.day)
        ).all()
        return _view(row, days)

    return uow.read(body)


def covered_transfers(uow: UnitOfWork, statement: StatementView) -> Iterator[CoveredTransfer]:
    """The transfers a statement covers, in booking order. Stable, since closed months never
    change: the statement's own seq range on the account's (debit or credit) seq indexes."""
    m = parse_month(statement.month)
    row = uow.read(lambda: uow.session.get(Statement, statement.id))
    if row is None or row.first_seq is None or row.last_seq is None:
        return
    account = statement.account_id
    where = and_(
        _month_filter(m),
        T.c.seq >= row.first_seq,
        T.c.seq <= row.last_seq,
        or_(T.c.debit_account_id == account, T.c.credit_account_id == account),
    )
    stmt = select(
        T.c.id, T.c.created_at, T.c.kind, T.c.amount, T.c.debit_account_id, T.c.credit_account_id
    ).where(where)
    if statement.party_kind == BREAKAGE:
        lots, uses = cast_table(LotRow), cast_table(LotUseRow)
        funding = func.coalesce(lots.c.funding, literal(VOUCHER_FUNDING))
        stmt = stmt.select_from(
            T.outerjoin(uses, uses.c.transfer_id == T.c.id).outerjoin(
                lots, lots.c.id == uses.c.lot_id
            )
        ).where(funding == statement.party_id)
    sign = -1 if statement.party_kind == PARTNER else 1

    def body() -> list[CoveredTransfer]:
        rows = uow.connection.execute(stmt.order_by(T.c.seq)).all()
        out: list[CoveredTransfer] = []
        for tid, at, kind, amount, debit, credit in rows:
            incoming = int(credit) == account
            out.append(
                CoveredTransfer(
                    id=tid if isinstance(tid, UUID) else UUID(str(tid)),
                    booked_at=at if at.tzinfo else at.replace(tzinfo=UTC),
                    kind=str(kind),
                    amount=sign * (int(amount) if incoming else -int(amount)),
                    counterparty_account_id=int(debit) if incoming else int(credit),
                )
            )
        return out

    yield from uow.read(body)


# ---------------------------------------------------------------------------------------------
# reconciliation


@dataclass(frozen=True)
class Difference:
    municipality: str
    party: str  # "shop:tenri-shop1", or "ledger" for a municipality-wide sum
    what: str  # amount, credits, …, missing, unexpected, settlement_transfer, balance
    expected: int | str | None
    found: int | str | None


@dataclass(frozen=True)
class CheckResult:
    month: str
    statements: int
    ledgers: int
    differences: tuple[Difference, ...]

    @property
    def ok(self) -> bool:
        return not self.differences


def _internal_movement(uow: UnitOfWork, month: Month) -> dict[str, int]:
    """Per municipality ledger, the month's net movement (credits − debits) of every account
    that is *not* a party account: wallets, budget, voucher float, accruals …"""

    def body() -> dict[str, int]:
        where = _month_filter(month)
        rows = uow.connection.execute(
            select(A.c.ledger, A.c.kind, A.c.owner, func.sum(T.c.amount))
            .select_from(T.join(A, A.c.id == T.c.credit_account_id))
            .where(where)
            .group_by(A.c.ledger, A.c.kind, A.c.owner)
        ).all()
        rows_out = uow.connection.execute(
            select(A.c.ledger, A.c.kind, A.c.owner, func.sum(T.c.amount))
            .select_from(T.join(A, A.c.id == T.c.debit_account_id))
            .where(where)
            .group_by(A.c.ledger, A.c.kind, A.c.owner)
        ).all()
        total: dict[str, int] = defaultdict(int)
        for sign, found in ((1, rows), (-1, rows_out)):
            for code, kind, owner, amount in found:
                if MUNICIPALITY_LEDGER.fullmatch(code) and _party_of(kind, owner, code) is None:
                    total[code] += sign * int(amount)
        return total

    return uow.read(body)


def check_month(uow: UnitOfWork, *, month: str) -> CheckResult:
    """Recompute every statement of a closed month from the ledger and compare.

    For each municipality ledger it proves: (1) every stored statement equals its
    recomputation (credits, debits, transfers, amount, payable, day lines) and none is missing
    or extra; (2) its settlement transfer moved exactly the month's net movement between the
    party account and that party's period account, and that period account holds exactly it;
    (3) the statements balance the ledger: the sum of the statements' movements plus the
    month's movements of all other accounts is zero (double entry), so every point that
    crossed the municipality's boundary in the month is on exactly one statement."""
    m = parse_month(month)
    if not is_closed(uow, m.label):
        raise refused(
            "month_not_closed",
            f"{m.label} has not been closed.",
            f"{m.label} はまだ締められていません。",
            month=m.label,
        )
    expected = compute(uow, m)

    def stored_rows() -> list[tuple[Statement, list[StatementDay]]]:
        rows = uow.session.scalars(select(Statement).where(Statement.month == m.label)).all()
        days: dict[UUID, list[StatementDay]] = defaultdict(list)
        for d in uow.session.scalars(
            select(StatementDay)
            .join(Statement, Statement.id == StatementDay.statement_id)
            .where(Statement.month == m.label)
        ).all():
            days[d.statement_id].append(d)
        return [(r, days[r.id]) for r in rows]

    stored = uow.read(stored_rows)
    diffs: list[Difference] = []
    seen: set[tuple[str, str, str]] = set()
    stored_movement: dict[str, int] = defaultdict(int)
    for row, day_rows in stored:
        key = (row.municipality, row.party_kind, row.party_id)
        seen.add(key)
        party = f"{row.party_kind}:{row.party_id}"
        stored_movement[row.municipality] += row.credits - row.debits
        want = expected.get(key)
        if want is None:
            diffs.append(Difference(row.municipality, party, "unexpected", None, row.amount))
            continue
        for what, exp, got in (
            ("credits", want.credits, row.credits),
            ("debits", want.debits, row.debits),
            ("transfers", want.transfers, row.transfers),
            ("amount", want.amount, row.amount),
            ("via_association", want.via_association, row.via_association),
            ("payable", want.payable, row.payable),
            ("account", want.account_id, row.account_id),
        ):
            if exp != got:
                diffs.append(Difference(row.municipality, party, what, exp, got))
        got_days = {d.day: [d.credits, d.debits, d.transfers] for d in day_rows}
        for d in sorted(set(got_days) | set(want.days)):
            if got_days.get(d) != want.days.get(d):
                diffs.append(
                    Difference(
                        row.municipality,
                        party,
                        f"day {d.isoformat()}",
                        str(want.days.get(d)),
                        str(got_days.get(d)),
                    )
                )
        diffs.extend(_check_settlement_transfer(uow, row))
    for key, want in sorted(expected.items()):
        if key not in seen:
            diffs.append(Difference(key[0], f"{key[1]}:{key[2]}", "missing", want.amount, None))
    internal = _internal_movement(uow, m)
    for code in sorted(set(internal) | set(stored_movement)):
        if stored_movement[code] + internal.get(code, 0) != 0:
            diffs.append(
                Difference(code, "ledger", "balance", -internal.get(code, 0), stored_movement[code])
            )
    ledgers = len({r.municipality for r, _ in stored})
    return CheckResult(m.label, len(stored), ledgers, tuple(diffs))


def _check_settlement_transfer(uow: UnitOfWork, row: Statement) -> list[Difference]:
    party = f"{row.party_kind}:{row.party_id}"
    movement = row.credits - row.debits
    if row.transfer_id is None:
        if movement:
            return [Difference(row.municipality, party, "settlement_transfer", movement, None)]
        return []
    try:
        t = ledger.get_transfer(uow, row.transfer_id)
    except MyKeyError:  # a missing transfer is a difference to report
        return [Difference(row.municipality, party, "settlement_transfer", movement, None)]
    out = t.debit_account_id == row.account_id
    moved = t.amount if out else -t.amount
    diffs: list[Difference] = []
    if (
        t.kind != SETTLE_KIND
        or moved != movement
        or row.settlement_account_id
        not in (
            t.debit_account_id,
            t.credit_account_id,
        )
    ):
        diffs.append(Difference(row.municipality, party, "settlement_transfer", movement, moved))
    if row.settlement_account_id is not None:
        held = ledger.balance(uow, row.settlement_account_id).posted
        if held != movement:
            diffs.append(Difference(row.municipality, party, "settlement_account", movement, held))
    return diffs


def statement_csv(view: StatementView) -> bytes:
    """A statement as CSV for Excel (UTF-8 with BOM, CRLF, Japanese headers): a line per Tokyo
    day, then the total."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(
        [
            "精算月",
            "自治体コード",
            "相手区分",
            "相手",
            "日付",
            "件数",
            "入金ポイント",
            "出金ポイント",
            "精算額（円）",
        ]
    )
    kind = PARTY_NAMES_JA.get(view.party_kind, view.party_kind)
    for line in view.days:
        writer.writerow(
            [
                view.month,
                view.municipality,
                kind,
                view.party_id,
                line.day.isoformat(),
                line.transfers,
                line.credits,
                line.debits,
                view.day_amount(line),
            ]
        )
    writer.writerow(
        [
            view.month,
            view.municipality,
            kind,
            view.party_id,
            "合計",
            view.transfers,
            view.credits,
            view.debits,
            view.amount,
        ]
    )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
