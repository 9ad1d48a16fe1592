"""Accumulating programs (R4.3) and rankings (R4.5) over HTTP: the resident's choice and
accruals, the staff's year-end close, payouts, rankings and awards."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from mykey.errors import COUNT, DAYS, MAX_POINTS, POINTS
from mykey.identity import residents
from mykey.identity.keys import Principal, Role
from mykey.points import accruals, rankings, voucher_print
from mykey.points.vouchers import MAX_PIECES, MAX_PRIZE_DAYS, MAX_PRIZE_VALUE, PrizeTerms
from mykey.web.api.numbers import InQuery, PointsOrZero, Whole
from mykey.web.api.points import _own_municipality
from mykey.web.api.resident import Token
from mykey.web.auth import require
from mykey.web.deps import Uow
from mykey.web.security import is_head

router = APIRouter(prefix="/api/v1", tags=["accruals and rankings"])

Staff = Annotated[Principal, Depends(require(Role.MUNICIPALITY_STAFF))]
# A fiscal year in a path or query: the domain refuses one out of range (invalid_fiscal_year,
# as the CLI does); the schema states the same range.
YEARS = {"minimum": accruals.FIRST_FISCAL_YEAR, "maximum": accruals.LAST_FISCAL_YEAR}
FiscalYear = Annotated[int, Path(json_schema_extra=YEARS, examples=[2026])]
FiscalYearQuery = Annotated[
    Annotated[int, Field(json_schema_extra=YEARS)] | None, Query(examples=[2026])
]


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


class PrizeIO(BaseModel):
    count: Annotated[int, Whole(COUNT, 1, MAX_PIECES)] = Field(
        description="vouchers per winner", examples=[10]
    )
    face_value: Annotated[int, Whole(POINTS, 1, MAX_PRIZE_VALUE)] = Field(
        description="points per voucher (no change)", examples=[500]
    )
    valid_days: Annotated[int, Whole(DAYS, 1, MAX_PRIZE_DAYS)] = Field(
        description="counting the day of issue", examples=[90]
    )
    street_id: str | None = Field(
        default=None, description="valid at every shop of this street", examples=["showa"]
    )
    shop_ids: list[str] = Field(default=[], description="or: valid at these shops")


class AwardIn(BaseModel):
    activity: str | None = None
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    top: Annotated[int, Whole(COUNT, 1, rankings.MAX_TOP)]
    minimum: PointsOrZero = 0
    points: Annotated[int, Whole(POINTS, 0, rankings.MAX_AWARD_POINTS)] = Field(
        default=0, description="granted to each ranked resident (0: vouchers only)"
    )
    vouchers: PrizeIO | None = Field(
        default=None, description="prize vouchers for each ranked resident, from the budget"
    )
    reason: str
    key: str = Field(
        description="idempotency key, the municipality's: running the award again, by any of"
        " its staff, grants once"
    )


class AwardOutcomeOut(BaseModel):
    rank: int
    mykey_id: str
    earned: int
    status: str = Field(description="granted, already (by an earlier run) or refused")
    transfer_id: str | None = Field(description="the points' grant")
    code: str | None
    message: str | None
    message_ja: str | None
    voucher_batch: str | None = Field(
        default=None, description="the prize vouchers' issue (transaction id)"
    )
    vouchers: list[str] = Field(default=[], description="the prize vouchers' numbers")


class AwardOut(BaseModel):
    award_id: str
    ranking: RankingOut
    points: int
    vouchers: PrizeIO | None = None
    reason: str
    granted: int
    already: int
    refused: int
    outcomes: list[AwardOutcomeOut]
    replayed: bool = Field(
        default=False,
        description="the award was made before (this key, or this ranking, by any staff member"
        " of the town): nothing granted twice",
    )


class WinnerOut(BaseModel):
    rank: int
    mykey_id: str
    earned: int
    voucher_batch: str | None
    vouchers: int = Field(description="prize vouchers issued")
    redeemed: int
    expired: int


class AwardViewOut(BaseModel):
    award_id: str
    municipality: str
    activity: str | None
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    top: int
    minimum: int
    points: int
    vouchers: PrizeIO | None
    reason: str
    created_at: datetime
    winners: list[WinnerOut]


def _prize_io(terms: PrizeTerms | None) -> PrizeIO | None:
    if terms is None:
        return None
    return PrizeIO(
        count=terms.count,
        face_value=terms.face_value,
        valid_days=terms.valid_days,
        street_id=terms.street_id,
        shop_ids=list(terms.shop_ids),
    )


def _award_view(view: rankings.AwardView) -> AwardViewOut:
    return AwardViewOut(
        award_id=view.award_id,
        municipality=view.municipality,
        activity=view.activity,
        start=view.start,
        end=view.end,
        top=view.top,
        minimum=view.minimum,
        points=view.points,
        vouchers=_prize_io(view.prize),
        reason=view.reason,
        created_at=view.created_at,
        winners=[WinnerOut(**vars(w)) for w in view.winners],
    )


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
def close_year(code: str, fiscal_year: FiscalYear, uow: Uow, staff: Staff) -> CloseOut:
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
    fiscal_year: FiscalYearQuery = None,
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
    code: str, uow: Uow, staff: Staff, fiscal_year: FiscalYearQuery = None
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
    code: str, fiscal_year: FiscalYear, mykey_id: str, body: PaidIn, uow: Uow, staff: Staff
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
    top: Annotated[
        int, Query(description="how many residents"), InQuery(COUNT, 1, rankings.MAX_TOP)
    ] = 100,
    minimum: Annotated[
        int, Query(description="at least this many points"), InQuery(POINTS, 0, MAX_POINTS)
    ] = 0,
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
    """Grant points to each resident of a ranking, once for the town: the same key (from any
    of its staff) or the same ranking again answers with the award made (`replayed`)."""
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
        vouchers=None
        if body.vouchers is None
        else PrizeTerms(
            count=body.vouchers.count,
            face_value=body.vouchers.face_value,
            valid_days=body.vouchers.valid_days,
            street_id=body.vouchers.street_id,
            shop_ids=tuple(body.vouchers.shop_ids),
        ),
    )
    return AwardOut(
        award_id=report.award_id,
        ranking=_ranking(report.ranking),
        points=report.points,
        vouchers=_prize_io(report.prize),
        reason=report.reason,
        granted=report.granted,
        already=report.already,
        refused=report.refused,
        outcomes=[
            AwardOutcomeOut(**{**vars(o), "vouchers": list(o.vouchers)}) for o in report.outcomes
        ],
        replayed=report.replayed,
    )


@router.get("/municipalities/{code}/rankings/awards", response_model=list[AwardViewOut])
def awards(code: str, uow: Uow, staff: Staff) -> list[AwardViewOut]:
    """The municipality's latest awards, newest first (without their winners)."""
    own = _own_municipality(staff, code)
    return [_award_view(a) for a in rankings.list_awards(uow, municipality=own)]


@router.get(
    "/municipalities/{code}/rankings/awards/{award_id}",
    response_model=AwardViewOut,
    response_model_by_alias=True,
)
def award_view(code: str, award_id: str, uow: Uow, staff: Staff) -> AwardViewOut:
    """An award as saved, with each winner's prize vouchers (issued, redeemed, expired)."""
    own = _own_municipality(staff, code)
    return _award_view(rankings.get_award(uow, award_id, municipality=own))


PDF, ZIP = "application/pdf", "application/zip"


@router.get(
    "/municipalities/{code}/rankings/awards/{award_id}/vouchers/{mykey_id}.pdf",
    response_class=Response,
    responses={200: {"content": {PDF: {}}, "description": "the winner's vouchers"}},
)
def award_winner_pdf(
    code: str, award_id: str, mykey_id: str, uow: Uow, staff: Staff, request: Request
) -> Response:
    """One winner's prize vouchers as one PDF (three to an A4 page; prints are counted and
    copies after the first marked 再発行 / REPRINT)."""
    own = _own_municipality(staff, code)
    viewer = voucher_print.Viewer(municipality=own, counting=not is_head(request))
    content = voucher_print.print_prize(uow, award_id, mykey_id, viewer=viewer)
    return _download(content, PDF, f"prize-{award_id}-{mykey_id}.pdf")


@router.get(
    "/municipalities/{code}/rankings/awards/{award_id}/vouchers.zip",
    response_class=Response,
    responses={200: {"content": {ZIP: {}}, "description": "one PDF per winner"}},
)
def award_vouchers_zip(
    code: str, award_id: str, uow: Uow, staff: Staff, request: Request
) -> Response:
    """Every winner's prize vouchers: a ZIP with one PDF per winner, named by rank and MyKey
    ID (`0001-MY123456.pdf`), in rank order."""
    own = _own_municipality(staff, code)
    viewer = voucher_print.Viewer(municipality=own, counting=not is_head(request))
    content = voucher_print.print_prizes_zip(uow, award_id, viewer=viewer)
    return _download(content, ZIP, f"prizes-{award_id}.zip")


def _download(content: bytes, media_type: str, name: str) -> Response:
    name = "".join(ch for ch in name if ch.isascii() and (ch.isalnum() or ch in "-."))
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
