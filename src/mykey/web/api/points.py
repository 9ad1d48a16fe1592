"""Municipal points over HTTP: programs (R3), grants by staff (R4), the resident's points."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, StrictBool

from mykey.db import tokyo_date
from mykey.errors import POINTS, ErrorKind, MyKeyError, forbidden
from mykey.identity import residents
from mykey.identity.keys import Principal, Role
from mykey.municipalities.codes import parse_code
from mykey.points import balances
from mykey.points.accruals import accruals_of
from mykey.points.expiry import expiring_soon
from mykey.points.grants import grant_points, grant_points_by_card
from mykey.points.program_setup import (
    MAX_RULE_POINTS,
    Program,
    Rule,
    get_program,
    list_programs,
    set_up_program,
)
from mykey.web.api.cards import CardProofIn, presented
from mykey.web.api.numbers import MAX_ID, Months, Permille, Points, PointsOrZero, Whole
from mykey.web.api.resident import Token
from mykey.web.auth import require
from mykey.web.deps import Uow
from mykey.web.replicas import ReadUow, read_through

router = APIRouter(prefix="/api/v1", tags=["points"])

StaffOrOperator = Annotated[Principal, Depends(require(Role.MUNICIPALITY_STAFF, Role.OPERATOR))]
Staff = Annotated[Principal, Depends(require(Role.MUNICIPALITY_STAFF))]


def _own_municipality(principal: Principal, code: str) -> str:
    code = parse_code(code)
    if principal.role is Role.MUNICIPALITY_STAFF and principal.municipality != code:
        raise forbidden(
            "Staff act only for their own municipality.",
            "職員は自分の自治体の業務のみ行えます。",
        )
    return code


class RuleIO(BaseModel):
    activity: str = Field(description="e.g. volunteer, health_walk, cleanup")
    name: str
    points: Annotated[int, Whole(POINTS, 1, MAX_RULE_POINTS)]
    limit: str = Field(default="none", description="once per person per: none, event, day, year")
    accrues: StrictBool = Field(
        default=False, description="accumulating: paid out or donated at fiscal year end"
    )


class ProgramIn(BaseModel):
    point_name: str = Field(examples=["小国町北里柴三郎ポイント"])
    terms: str = ""
    validity: dict[str, Months | None] = Field(
        default_factory=dict,
        description="per funding source (budget, partner, premium): months, or null for the"
        " end of the fiscal year (March 31)",
    )
    usable_at: list[str]
    premium_permille: Permille = 0
    rules: list[RuleIO] = Field(default_factory=list)
    annual_budget: Points | None = Field(default=None, description="points per fiscal year")
    premium_budget: PointsOrZero | None = Field(
        default=None, description="premium points per fiscal year (none: no cap)"
    )
    accrual_default: str = Field(
        default="donation", description="accrued points at year end: payout or donation"
    )


class ProgramOut(BaseModel):
    code: str
    municipality: str
    point_name: str
    terms: str
    validity: dict[str, int | None]
    usable_at: list[str]
    premium_permille: int
    rules: list[RuleIO]
    annual_budget: int | None
    premium_budget: int | None = None
    accrual_default: str = "donation"


def _out(program: Program) -> ProgramOut:
    return ProgramOut(
        code=program.code,
        municipality=program.municipality,
        point_name=program.point_name,
        terms=program.terms,
        validity=program.validity,
        usable_at=list(program.usable_at),
        premium_permille=program.premium_permille,
        rules=[
            RuleIO(
                activity=r.activity, name=r.name, points=r.points, limit=r.limit, accrues=r.accrues
            )
            for r in program.rules
        ],
        annual_budget=program.annual_budget,
        premium_budget=program.premium_budget,
        accrual_default=program.accrual_default,
    )


class GrantIn(BaseModel):
    mykey_id: str | None = Field(default=None, description="the resident, or send card_proof")
    card_proof: CardProofIn | None = Field(default=None, description="tapped at an event desk")
    activity: str | None = None
    points: Points | None = None
    event: str | None = Field(default=None, description="for rules limited once per event")
    reason: str
    key: str = Field(description="idempotency key: a retry with it grants once")


class GrantOut(BaseModel):
    transfer_id: str
    mykey_id: str
    points: int
    balance: int
    expires_on: date
    replayed: bool
    accrued: bool = False


class LotOut(BaseModel):
    funding: str
    expires_on: date
    remaining: int


class ExpiringOut(BaseModel):
    expires_on: date
    points: int


class HoldingOut(BaseModel):
    municipality: str
    point_name: str
    balance: int
    special_event: int
    lots: list[LotOut]
    expiring_soon: list[ExpiringOut] = Field(
        default_factory=list, description="points whose last day is within the next 30 days"
    )


class AccruedOut(BaseModel):
    municipality: str
    fiscal_year: int
    points: int


class PointsOut(BaseModel):
    holdings: list[HoldingOut]
    reserved: int
    accrued: list[AccruedOut] = Field(
        default_factory=list,
        description="points accruing in accumulating programs (not spendable; paid out or"
        " donated at fiscal year end): see /me/accruals",
    )


class PointsEntryOut(BaseModel):
    seq: int
    municipality: str
    kind: str
    change: int
    at: datetime
    metadata: dict[str, object]


class PointsHistoryOut(BaseModel):
    entries: list[PointsEntryOut]
    next_before: int | None


@router.get("/programs", response_model=list[ProgramOut])
def programs(uow: ReadUow) -> list[ProgramOut]:
    """Every municipality's point program (for Point Navi)."""
    return [_out(p) for p in list_programs(uow)]


@router.get("/municipalities/{code}/program", response_model=ProgramOut)
def program(code: str, uow: ReadUow, request: Request) -> ProgramOut:
    return _out(read_through(request, uow, lambda reads: get_program(reads, code)))


@router.put("/municipalities/{code}/program", response_model=ProgramOut)
def put_program(code: str, body: ProgramIn, uow: Uow, who: StaffOrOperator) -> ProgramOut:
    """Set up or change the program (the municipality's staff, or a council operator)."""
    own = _own_municipality(who, code)
    return _out(
        set_up_program(
            uow,
            municipality=own,
            point_name=body.point_name,
            terms=body.terms,
            validity=body.validity,
            usable_at=body.usable_at,
            premium_permille=body.premium_permille,
            rules=[Rule(r.activity, r.name, r.points, r.limit, r.accrues) for r in body.rules],
            annual_budget=body.annual_budget,
            premium_budget=body.premium_budget,
            accrual_default=body.accrual_default,
        )
    )


@router.post("/municipalities/{code}/grants", response_model=GrantOut, status_code=201)
def grant(code: str, body: GrantIn, uow: Uow, staff: Staff, request: Request) -> GrantOut:
    """Grant points to one resident (by MyKey ID, or by their card at an event desk), for an
    activity of the program's rules or with a reason."""
    own = _own_municipality(staff, code)
    if (body.mykey_id is None) == (body.card_proof is None):
        raise MyKeyError(
            "invalid_grant",
            ErrorKind.INVALID,
            "Name the resident by mykey_id or by card_proof (one of them).",
            "利用者はマイキーIDかカードの証明のどちらか一方で指定してください。",
        )

    if body.card_proof is None:
        assert body.mykey_id is not None
        receipt = grant_points(
            uow,
            municipality=own,
            mykey_id=body.mykey_id,
            actor=staff.actor,
            key=body.key,
            reason=body.reason,
            activity=body.activity,
            points=body.points,
            event=body.event,
        )
    else:  # at an event desk: the key first; a refused grant leaves the card's challenge unused
        receipt = grant_points_by_card(
            uow,
            municipality=own,
            card=presented(request, body.card_proof, actor=staff.actor),
            actor=staff.actor,
            key=body.key,
            reason=body.reason,
            activity=body.activity,
            points=body.points,
            event=body.event,
        )
    return GrantOut(
        transfer_id=str(receipt.transfer_id),
        mykey_id=receipt.mykey_id,
        points=receipt.points,
        balance=receipt.balance,
        expires_on=receipt.expires_on,
        replayed=receipt.replayed,
        accrued=receipt.accrued,
    )


@router.get("/me/points", response_model=PointsOut)
def my_points(uow: Uow, token: Token) -> PointsOut:
    """My points in every municipality, with their lots (funding source, expiry)."""
    who = residents.resident_for_session(uow, token)
    held = balances.points_of(uow, who)
    return PointsOut(
        reserved=held.reserved,
        accrued=[
            AccruedOut(municipality=a.municipality, fiscal_year=a.fiscal_year, points=a.points)
            for a in accruals_of(uow, who).accruing
        ],
        holdings=[
            HoldingOut(
                municipality=h.municipality,
                point_name=h.point_name,
                balance=h.balance,
                special_event=h.special_event,
                lots=[LotOut(**vars(lot)) for lot in h.lots],
                expiring_soon=[
                    ExpiringOut(expires_on=e.expires_on, points=e.points)
                    for e in expiring_soon(
                        ((lot.expires_on, lot.remaining) for lot in h.lots), tokyo_date(uow.now())
                    )
                ],
            )
            for h in held.holdings
        ],
    )


@router.get("/me/points/history", response_model=PointsHistoryOut)
def my_points_history(
    uow: Uow,
    reads: ReadUow,
    token: Token,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> PointsHistoryOut:
    """My point transfers, newest first; pass `before` for the next page. From the read
    replica, if one is set up and keeps up (a payment made a second ago may show a second
    later)."""
    who = residents.resident_for_session(uow, token)  # the session: on the primary
    page = balances.history_of(reads, who, limit=limit, before=before)
    return PointsHistoryOut(
        entries=[
            PointsEntryOut(
                seq=e.seq,
                municipality=e.ledger,
                kind=e.kind,
                change=e.change,
                at=e.created_at,
                metadata=e.metadata,
            )
            for e in page.entries
        ],
        next_before=page.next_before,
    )
