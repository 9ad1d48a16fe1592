"""Accumulating programs (R4.3) and rankings (R4.5) over HTTP: the resident's choice and
accruals, the staff's year-end close, payouts, rankings and awards."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from mykey.errors import COUNT, POINTS
from mykey.identity import residents
from mykey.identity.keys import Principal, Role
from mykey.points import accruals, rankings
from mykey.web.api.numbers import PointsOrZero, Whole
from mykey.web.api.points import _own_municipality
from mykey.web.api.resident import Token
from mykey.web.auth import require
from mykey.web.deps import Uow

router = APIRouter(prefix="/api/v1", tags=["accruals and rankings"])

Staff = Annotated[Principal, Depends(require(Role.MUNICIPALITY_STAFF))]


class ChoiceIn(BaseModel):
    choice: str = Field(description="payout (paid in yen at year end) or donation")


class ChoiceOut(BaseModel):
    municipality: str
    choice: str


class AccruingOut(BaseModel):
    municipality: str
    point_name: str
    fiscal_year: int
    points: int
    closes_after: date
    choice: str
    chosen: bool = Field(description="false: the program's default applies")


class ClosingOut(BaseModel):
    municipality: str
    fiscal_year: int
    mykey_id: str
    outcome: str = Field(description="payout or donation")
    points: int = Field(description="1 point = 1 yen")
    status: str = Field(description="pending or paid (payouts); donated")
    closed_at: datetime
    paid_at: datetime | None
    paid_reference: str | None


class MyAccrualsOut(BaseModel):
    accruing: list[AccruingOut]
    closed: list[ClosingOut]


class CloseOut(BaseModel):
    municipality: str
    fiscal_year: int
    payouts: int
    payout_points: int
    donations: int
    donation_points: int
    already_closed: int
    empty: int


class PaidIn(BaseModel):
    reference: str = Field(description="the bank transfer's reference")


class PaidOut(BaseModel):
    payout: ClosingOut
    already_paid: bool


class RankedOut(BaseModel):
    rank: int
    mykey_id: str
    points: int
    reached_at: datetime


class RankingOut(BaseModel):
    municipality: str
    activity: str | None
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    top: int
    minimum: int
    rows: list[RankedOut]


class AwardIn(BaseModel):
    activity: str | None = None
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    top: Annotated[int, Whole(COUNT, 1, rankings.MAX_TOP)]
    minimum: PointsOrZero = 0
    points: Annotated[int, Whole(POINTS, 1, rankings.MAX_AWARD_POINTS)] = Field(
        description="granted to each ranked resident"
    )
    reason: str
    key: str = Field(description="idempotency key: running the award again grants once")


class AwardOutcomeOut(BaseModel):
    rank: int
    mykey_id: str
    earned: int
    status: str = Field(description="granted, already (by an earlier run) or refused")
    transfer_id: str | None
    code: str | None
    message: str | None
    message_ja: str | None


class AwardOut(BaseModel):
    award_id: str
    ranking: RankingOut
    points: int
    reason: str
    granted: int
    already: int
    refused: int
    outcomes: list[AwardOutcomeOut]


def _closing(c: accruals.Closing) -> ClosingOut:
    return ClosingOut(**vars(c))


def _ranking(r: rankings.Ranking) -> RankingOut:
    return RankingOut(
        municipality=r.municipality,
        activity=r.activity,
        start=r.start,
        end=r.end,
        top=r.top,
        minimum=r.minimum,
        rows=[RankedOut(**vars(row)) for row in r.rows],
    )


# ---------------------------------------------------------------------------------------------
# the resident


@router.put("/me/accruals/{code}/choice", response_model=ChoiceOut)
def my_choice(code: str, body: ChoiceIn, uow: Uow, token: Token) -> ChoiceOut:
    """What becomes of my accrued points in this program at year end: payout or donation."""
    who = residents.resident_for_session(uow, token)
    chosen = accruals.choose(uow, municipality=code, mykey_id=who, choice=body.choice)
    return ChoiceOut(municipality=chosen.municipality, choice=chosen.choice)


@router.get("/me/accruals", response_model=MyAccrualsOut)
def my_accruals(uow: Uow, token: Token) -> MyAccrualsOut:
    """My accruing points (years not closed yet) and my payouts and donations."""
    mine = accruals.accruals_of(uow, residents.resident_for_session(uow, token))
    return MyAccrualsOut(
        accruing=[AccruingOut(**vars(a)) for a in mine.accruing],
        closed=[_closing(c) for c in mine.closed],
    )


# ---------------------------------------------------------------------------------------------
# staff


@router.post("/municipalities/{code}/accruals/{fiscal_year}/close", response_model=CloseOut)
def close_year(code: str, fiscal_year: int, uow: Uow, staff: Staff) -> CloseOut:
    """Close a fiscal year once it is over: accrued points become payouts or donations.
    Running it again closes nobody twice."""
    own = _own_municipality(staff, code)
    report = accruals.close_accrual_year(
        uow, municipality=own, fiscal_year=fiscal_year, actor=staff.actor
    )
    return CloseOut(**vars(report))


@router.get("/municipalities/{code}/accruals/payouts", response_model=list[ClosingOut])
def payouts(
    code: str,
    uow: Uow,
    staff: Staff,
    fiscal_year: int | None = None,
    status: str | None = Query(default=None, description="pending or paid"),
) -> list[ClosingOut]:
    """Yen owed to residents for closed accruals, and those paid."""
    own = _own_municipality(staff, code)
    found = accruals.closings(
        uow, municipality=own, fiscal_year=fiscal_year, outcome="payout", status=status
    )
    return [_closing(c) for c in found]


@router.get("/municipalities/{code}/accruals/donations", response_model=list[ClosingOut])
def donations(
    code: str, uow: Uow, staff: Staff, fiscal_year: int | None = None
) -> list[ClosingOut]:
    """Accrued points residents donated."""
    own = _own_municipality(staff, code)
    found = accruals.closings(uow, municipality=own, fiscal_year=fiscal_year, outcome="donation")
    return [_closing(c) for c in found]


@router.post(
    "/municipalities/{code}/accruals/payouts/{fiscal_year}/{mykey_id}/paid",
    response_model=PaidOut,
)
def mark_paid(
    code: str, fiscal_year: int, mykey_id: str, body: PaidIn, uow: Uow, staff: Staff
) -> PaidOut:
    """Record that a payout's bank transfer is done (again: changes nothing)."""
    own = _own_municipality(staff, code)
    paid = accruals.mark_paid(
        uow,
        municipality=own,
        fiscal_year=fiscal_year,
        mykey_id=mykey_id,
        actor=staff.actor,
        reference=body.reference,
    )
    return PaidOut(payout=_closing(paid.payout), already_paid=paid.already_paid)


@router.get(
    "/municipalities/{code}/rankings",
    response_model=RankingOut,
    response_model_by_alias=True,
)
def ranking(
    code: str,
    uow: Uow,
    staff: Staff,
    start: Annotated[date, Query(alias="from", description="first day (Tokyo)")],
    end: Annotated[date, Query(alias="to", description="last day (Tokyo), included")],
    top: Annotated[int, Query(description="how many residents")] = 100,
    minimum: Annotated[int, Query(description="at least this many points")] = 0,
    activity: Annotated[str | None, Query(description="one activity, or every grant")] = None,
) -> RankingOut:
    """The top residents by points granted in the period (ties: who reached it first)."""
    own = _own_municipality(staff, code)
    return _ranking(rankings.rank(uow, own, activity or None, start, end, top, minimum))


@router.post(
    "/municipalities/{code}/rankings/awards",
    response_model=AwardOut,
    response_model_by_alias=True,
)
def award(code: str, body: AwardIn, uow: Uow, staff: Staff) -> AwardOut:
    """Grant points to each resident of a ranking; the same key grants once."""
    own = _own_municipality(staff, code)
    report = rankings.award_ranking(
        uow,
        municipality=own,
        activity=body.activity or None,
        start=body.start,
        end=body.end,
        top=body.top,
        minimum=body.minimum,
        points=body.points,
        reason=body.reason,
        actor=staff.actor,
        key=body.key,
    )
    return AwardOut(
        award_id=report.award_id,
        ranking=_ranking(report.ranking),
        points=report.points,
        reason=report.reason,
        granted=report.granted,
        already=report.already,
        refused=report.refused,
        outcomes=[AwardOutcomeOut(**vars(o)) for o in report.outcomes],
    )
