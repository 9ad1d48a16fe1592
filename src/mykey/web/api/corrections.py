"""Correction cases over HTTP: staff propose, a second staff member approves or rejects, the
council lists every case, residents see the cases that moved their points."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from mykey.identity import residents
from mykey.identity.keys import Principal, Role
from mykey.points import corrections
from mykey.points.corrections import Case
from mykey.web.api.points import Staff, StaffOrOperator, _own_municipality
from mykey.web.api.resident import Token
from mykey.web.auth import require
from mykey.web.deps import Uow

router = APIRouter(prefix="/api/v1", tags=["corrections"])

Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]


class CorrectionIn(BaseModel):
    kind: str = Field(description="move (to the right holder) or reverse (a grant)")
    transfer_id: str = Field(description="the transfer that credited the wrong wallet")
    right_mykey_id: str | None = Field(default=None, description="for a move: the right holder")
    reason_code: str = Field(description="wrong_person, duplicate, wrong_amount, ineligible, other")
    note: str = Field(description="what happened (staff only; residents do not see it)")
    key: str = Field(description="idempotency key: a retry with it opens the case once")


class DecisionIn(BaseModel):
    note: str | None = None


class LabelOut(BaseModel):
    ja: str
    en: str


class LegOut(BaseModel):
    leg: str
    transfer_id: str
    points: int


class ClaimOut(BaseModel):
    mykey_id: str
    points: int
    status: str


class CaseOut(BaseModel):
    id: str
    municipality: str
    kind: str
    transfer_id: str
    points: int
    wrong_mykey_id: str
    right_mykey_id: str | None
    reason_code: str
    reason_label: LabelOut
    note: str
    status: str
    proposed_by: str
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    moved: int = Field(description="taken from the wrong wallet (its own lot)")
    funded: int = Field(description="paid to the right holder from the budget (the spent part)")
    claimed: int = Field(description="spent by the wrong holder: an open claim")
    budget_returned: int = Field(description="given back to the grant's annual budget count")
    legs: list[LegOut]
    claim: ClaimOut | None
    replayed: bool


class ReasonOut(BaseModel):
    code: str
    ja: str
    en: str


class MyCorrectionOut(BaseModel):
    id: str
    municipality: str
    kind: str
    reason_code: str
    reason_label: LabelOut
    side: str = Field(description="from: credited to you by mistake; to: you are the right holder")
    change: int
    owed: int = Field(description="points you had spent that you owe back (a claim)")
    decided_at: datetime


def _out(case: Case) -> CaseOut:
    ja, en = case.reason_label
    return CaseOut(
        id=str(case.id),
        municipality=case.municipality,
        kind=case.kind,
        transfer_id=str(case.transfer_id),
        points=case.points,
        wrong_mykey_id=case.wrong_mykey_id,
        right_mykey_id=case.right_mykey_id,
        reason_code=case.reason_code,
        reason_label=LabelOut(ja=ja, en=en),
        note=case.note,
        status=case.status,
        proposed_by=case.proposed_by,
        proposed_at=case.proposed_at,
        decided_by=case.decided_by,
        decided_at=case.decided_at,
        decision_note=case.decision_note,
        moved=case.moved,
        funded=case.funded,
        claimed=case.claimed,
        budget_returned=case.budget_returned,
        legs=[
            LegOut(leg=g.leg, transfer_id=str(g.transfer_id), points=g.points) for g in case.legs
        ],
        claim=ClaimOut(**vars(case.claim)) if case.claim else None,
        replayed=case.replayed,
    )


@router.get("/correction-reasons", response_model=list[ReasonOut])
def reasons() -> list[ReasonOut]:
    """The reason codes a correction case may give, with their labels."""
    return [ReasonOut(code=c, ja=ja, en=en) for c, (ja, en) in corrections.REASONS.items()]


@router.post("/municipalities/{code}/corrections", response_model=CaseOut, status_code=201)
def propose(code: str, body: CorrectionIn, uow: Uow, staff: Staff) -> CaseOut:
    """Propose a correction of one transfer (the municipality's staff). Nothing moves until a
    second staff member approves it."""
    own = _own_municipality(staff, code)
    return _out(
        corrections.propose_correction(
            uow,
            municipality=own,
            actor=staff.actor,
            key=body.key,
            kind=body.kind,
            transfer_id=body.transfer_id,
            reason_code=body.reason_code,
            note=body.note,
            right_mykey_id=body.right_mykey_id,
        )
    )


@router.post("/municipalities/{code}/corrections/{case_id}/approval", response_model=CaseOut)
def approve(
    code: str, case_id: str, uow: Uow, staff: Staff, body: DecisionIn | None = None
) -> CaseOut:
    """Approve and execute the case (staff other than the proposer), in one transaction."""
    own = _own_municipality(staff, code)
    return _out(
        corrections.approve_correction(
            uow,
            municipality=own,
            case_id=case_id,
            actor=staff.actor,
            note=body.note if body else None,
        )
    )


@router.post("/municipalities/{code}/corrections/{case_id}/rejection", response_model=CaseOut)
def reject(
    code: str, case_id: str, uow: Uow, staff: Staff, body: DecisionIn | None = None
) -> CaseOut:
    """Reject the case (staff other than the proposer): nothing moves."""
    own = _own_municipality(staff, code)
    return _out(
        corrections.reject_correction(
            uow,
            municipality=own,
            case_id=case_id,
            actor=staff.actor,
            note=body.note if body else None,
        )
    )


@router.post("/municipalities/{code}/corrections/{case_id}/withdrawal", response_model=CaseOut)
def withdraw(
    code: str, case_id: str, uow: Uow, staff: Staff, body: DecisionIn | None = None
) -> CaseOut:
    """The proposer withdraws the case: nothing moves."""
    own = _own_municipality(staff, code)
    return _out(
        corrections.withdraw_correction(
            uow,
            municipality=own,
            case_id=case_id,
            actor=staff.actor,
            note=body.note if body else None,
        )
    )


@router.get("/municipalities/{code}/corrections", response_model=list[CaseOut])
def municipality_cases(
    code: str,
    uow: Uow,
    who: StaffOrOperator,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[CaseOut]:
    """The municipality's cases, newest first (its staff, or a council operator)."""
    own = _own_municipality(who, code)
    return [
        _out(c)
        for c in corrections.list_corrections(uow, municipality=own, status=status, limit=limit)
    ]


@router.get("/municipalities/{code}/corrections/{case_id}", response_model=CaseOut)
def municipality_case(code: str, case_id: str, uow: Uow, who: StaffOrOperator) -> CaseOut:
    own = _own_municipality(who, code)
    return _out(corrections.get_correction(uow, case_id=case_id, municipality=own))


@router.get("/corrections", response_model=list[CaseOut])
def every_case(
    uow: Uow,
    operator: Operator,
    status: str | None = None,
    municipality: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[CaseOut]:
    """Every municipality's cases, newest first (the council's operators)."""
    return [
        _out(c)
        for c in corrections.list_corrections(
            uow, municipality=municipality, status=status, limit=limit
        )
    ]


@router.get("/me/corrections", response_model=list[MyCorrectionOut])
def my_corrections(uow: Uow, token: Token) -> list[MyCorrectionOut]:
    """The correction cases that moved my points (and what I owe, if I had spent them)."""
    mine = corrections.corrections_of(uow, residents.resident_for_session(uow, token))
    out = []
    for c in mine:
        ja, en = corrections.REASONS[c.reason_code]
        out.append(
            MyCorrectionOut(
                id=str(c.id),
                municipality=c.municipality,
                kind=c.kind,
                reason_code=c.reason_code,
                reason_label=LabelOut(ja=ja, en=en),
                side=c.side,
                change=c.change,
                owed=c.owed,
                decided_at=c.decided_at,
            )
        )
    return out
