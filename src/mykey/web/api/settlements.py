"""Monthly settlement statements over HTTP (issue #6, R7): each role sees only its own.

- the council (operator): every statement, and closes a month;
- a municipality's staff: the statements in its own points (its ledger);
- a partner: its own statements (what it owes each municipality);
- a shop's terminal key: that shop's statements; its municipality's staff: the shop's
  statements in that municipality's points.

Anything else answers 404, as if the statement did not exist.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from mykey.db import UnitOfWork
from mykey.errors import MyKeyError
from mykey.identity.keys import Principal, Role
from mykey.municipalities.codes import parse_code
from mykey.points import partner_keys, shops
from mykey.settlement import payouts, statement_print, statements
from mykey.settlement.statements import PARTNER, SHOP, StatementView
from mykey.web.auth import CurrentOperator, require
from mykey.web.deps import Uow
from mykey.web.replicas import ReadUow, read_through

router = APIRouter(prefix="/api/v1", tags=["settlement"])

AnyReader = Annotated[
    Principal,
    Depends(require(Role.OPERATOR, Role.MUNICIPALITY_STAFF, Role.PARTNER, Role.TERMINAL)),
]
StaffOrOperator = Annotated[Principal, Depends(require(Role.MUNICIPALITY_STAFF, Role.OPERATOR))]
PartnerOrOperator = Annotated[Principal, Depends(require(Role.PARTNER, Role.OPERATOR))]
ShopReader = Annotated[
    Principal, Depends(require(Role.TERMINAL, Role.MUNICIPALITY_STAFF, Role.OPERATOR))
]
MonthQuery = Annotated[str, Query(description="Tokyo month, YYYY-MM", examples=["2026-10"])]


class DayOut(BaseModel):
    day: date
    transfers: int
    credits: int
    debits: int
    amount: int = Field(description="the day's yen in the statement's direction")


class StatementOut(BaseModel):
    id: str
    month: str
    municipality: str
    party_kind: str = Field(
        description="partner, shop, association, operating_share, breakage, resident_payouts"
    )
    party_id: str
    transfers: int
    credits: int = Field(description="points into the party's account in the month")
    debits: int = Field(description="points out of it")
    amount: int = Field(
        description="yen: a partner pays the municipality; the municipality owes a shop"
        " (negative: the shop owes it back), keeps an operating share or breakage"
    )
    via_association: int = Field(description="shops: of `amount`, paid by the association")
    payable: int = Field(description="yen that change hands with this party")
    settlement_transfer_id: str | None
    closed_at: datetime


class TransferOut(BaseModel):
    id: str
    booked_at: datetime
    kind: str
    amount: int = Field(description="signed, in the statement's direction")


class StatementDetailOut(StatementOut):
    days: list[DayOut]
    covered: list[TransferOut] = Field(description="the transfers the statement covers")


class CloseOut(BaseModel):
    month: str
    status: str = Field(description="closed, or already_closed (nothing changed)")
    ledgers: int
    statements: int
    settlement_transfers: int


def _out(view: StatementView) -> StatementOut:
    return StatementOut(
        id=str(view.id),
        month=view.month,
        municipality=view.municipality,
        party_kind=view.party_kind,
        party_id=view.party_id,
        transfers=view.transfers,
        credits=view.credits,
        debits=view.debits,
        amount=view.amount,
        via_association=view.via_association,
        payable=view.payable,
        settlement_transfer_id=str(view.transfer_id) if view.transfer_id else None,
        closed_at=view.created_at,
    )


def _nothing_here() -> MyKeyError:
    return statements.unknown_statement("for this key")


def _may_read(uow: Uow, who: Principal, view: StatementView) -> bool:
    if who.role is Role.OPERATOR:
        return True
    if who.role is Role.MUNICIPALITY_STAFF:
        return who.municipality == view.municipality
    if who.role is Role.PARTNER:
        own = partner_keys.partner_of_key(uow, who.key_id)
        return view.party_kind == PARTNER and view.party_id == own
    if who.role is Role.TERMINAL:
        return view.party_kind == SHOP and view.party_id == who.provider_id
    return False


def _readable(uow: Uow, who: Principal, statement_id: str) -> StatementView:
    view = statements.get_statement(uow, statement_id)
    if not _may_read(uow, who, view):
        raise statements.unknown_statement(statement_id)
    return view


@router.get("/settlements", response_model=list[StatementOut])
def all_statements(month: MonthQuery, uow: Uow, operator: CurrentOperator) -> list[StatementOut]:
    """Every statement of a closed month (the council)."""
    return [_out(v) for v in statements.list_statements(uow, month=month)]


@router.post("/settlements/{month}/close", response_model=CloseOut)
def close(month: str, uow: Uow, operator: CurrentOperator) -> CloseOut:
    """Close a Tokyo month that has ended; again: `already_closed`, nothing changes."""
    report = statements.close_month(uow, month=month, actor=operator.actor)
    return CloseOut(
        month=report.month,
        status=report.status,
        ledgers=report.ledgers,
        statements=report.statements,
        settlement_transfers=report.transfers,
    )


@router.get("/municipalities/{code}/settlements", response_model=list[StatementOut])
def municipality_statements(
    code: str, month: MonthQuery, uow: Uow, who: StaffOrOperator
) -> list[StatementOut]:
    """The statements in a municipality's points (its staff, or the council)."""
    code = parse_code(code)
    if who.role is Role.MUNICIPALITY_STAFF and who.municipality != code:
        raise _nothing_here()
    return [_out(v) for v in statements.list_statements(uow, month=month, municipality=code)]


@router.get("/partners/{partner}/settlements", response_model=list[StatementOut])
def partner_statements(
    partner: str, month: MonthQuery, uow: Uow, who: PartnerOrOperator
) -> list[StatementOut]:
    """What a partner owes each municipality for the month (that partner, or the council)."""
    if who.role is Role.PARTNER and partner_keys.partner_of_key(uow, who.key_id) != partner:
        raise _nothing_here()
    found = statements.list_statements(uow, month=month, party_kind=PARTNER, party_id=partner)
    return [_out(v) for v in found]


@router.get("/shops/{shop_id}/settlements", response_model=list[StatementOut])
def shop_statements(
    shop_id: str, month: MonthQuery, uow: Uow, who: ShopReader
) -> list[StatementOut]:
    """A shop's statements: its own terminal key sees all of them; a municipality's staff
    those in its points, if the shop is in it or takes its points; the council all."""
    found = statements.list_statements(uow, month=month, party_kind=SHOP, party_id=shop_id)
    if who.role is Role.TERMINAL:
        if who.provider_id != shop_id:
            raise _nothing_here()
    elif who.role is Role.MUNICIPALITY_STAFF:
        try:
            shop = shops.get_shop(uow, shop_id)
        except MyKeyError:
            raise _nothing_here() from None
        if who.municipality != shop.municipality and who.municipality not in shop.accepts:
            raise _nothing_here()
        found = [v for v in found if v.municipality == who.municipality]
    return [_out(v) for v in found]


@router.get(
    "/settlements/{statement_id}.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the statement"}},
)
def statement_csv(statement_id: str, uow: ReadUow, who: AnyReader, request: Request) -> Response:
    """A statement as CSV for Excel (UTF-8 with BOM, CRLF): a line per Tokyo day, then the
    total."""
    view = read_through(request, uow, lambda reads: _readable(reads, who, statement_id))
    name = f"settlement-{view.month}-{view.municipality}-{view.party_kind}-{view.party_id}.csv"
    return Response(
        statements.statement_csv(view),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/settlements/{statement_id}.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the statement"}},
)
def statement_pdf(statement_id: str, uow: ReadUow, who: AnyReader, request: Request) -> Response:
    """A statement as a PDF (Japanese, English labels): a line per Tokyo day, the totals and
    what is payable."""

    def read(reads: UnitOfWork) -> tuple[StatementView, statement_print.Names]:
        found = _readable(reads, who, statement_id)
        return found, statement_print.names_of(reads, found)

    view, names = read_through(request, uow, read)
    name = f"settlement-{view.month}-{view.municipality}-{view.party_kind}-{view.party_id}.pdf"
    return Response(
        statement_print.render(view, names),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/settlements/{statement_id}", response_model=StatementDetailOut)
def statement_detail(
    statement_id: str, uow: ReadUow, who: AnyReader, request: Request
) -> StatementDetailOut:
    """A statement with its day lines and the transfers it covers."""

    def read(reads: UnitOfWork) -> tuple[StatementView, list[statements.CoveredTransfer]]:
        found = _readable(reads, who, statement_id)
        return found, list(statements.covered_transfers(reads, found))

    view, transfers = read_through(request, uow, read)
    days = [
        DayOut(
            day=d.day,
            transfers=d.transfers,
            credits=d.credits,
            debits=d.debits,
            amount=view.day_amount(d),
        )
        for d in view.days
    ]
    covered = [
        TransferOut(id=str(t.id), booked_at=t.booked_at, kind=t.kind, amount=t.amount)
        for t in transfers
    ]
    return StatementDetailOut(**_out(view).model_dump(), days=days, covered=covered)


@router.get(
    "/municipalities/{code}/settlements/{month}/zengin",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Zengin file, Shift_JIS"}},
)
def zengin_file(
    code: str,
    month: str,
    uow: Uow,
    who: StaffOrOperator,
    transfer_date: Annotated[date, Query(description="the banks' transfer day")],
) -> Response:
    """The Zengin general transfer file (総合振込, 120-byte records, Shift_JIS, CRLF) paying
    the shops of a closed month from the municipality's bank account (its staff, or the
    council). Shops that owe (refunds above sales) are named in `X-MyKey-Owed`."""
    code = parse_code(code)
    if who.role is Role.MUNICIPALITY_STAFF and who.municipality != code:
        raise _nothing_here()
    plan, data = payouts.month_payout_file(
        uow, municipality=code, month=month, transfer_date=transfer_date
    )
    owed = ",".join(f"{p.shop_id}={p.amount}" for p in plan.owed)
    return Response(
        data,
        media_type="text/plain; charset=Shift_JIS",
        headers={
            "Content-Disposition": f'attachment; filename="zengin-{code}-{plan.month}.txt"',
            "X-MyKey-Transfers": str(len(plan.payouts)),
            "X-MyKey-Total-Yen": str(plan.total),
            **({"X-MyKey-Owed": owed} if owed else {}),
        },
    )
