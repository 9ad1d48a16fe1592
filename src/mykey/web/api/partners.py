"""Partner conversions over HTTP (R5): the council's partners and agreements, ID-linkage
conversions signed with HMAC, receivables; the resident's reserved points (R3.3)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field

from mykey.errors import MyKeyError, forbidden
from mykey.identity import residents
from mykey.identity.keys import Principal, Role
from mykey.points import conversion, partner_keys, partners, reserved
from mykey.web.api.numbers import Points, Units
from mykey.web.api.resident import Token
from mykey.web.auth import CurrentOperator, require
from mykey.web.deps import Uow

router = APIRouter(prefix="/api/v1", tags=["partners"])

PartnerOrOperator = Annotated[Principal, Depends(require(Role.PARTNER, Role.OPERATOR))]
PartnerKeyHolder = Annotated[Principal, Depends(require(Role.PARTNER))]


async def raw_body(request: Request) -> bytes:
    """The exact bytes the partner signed (Starlette keeps them for the JSON parsing too)."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


def _forbidden() -> MyKeyError:
    return forbidden(
        "A partner acts only for itself.",
        "協力企業は自社の操作のみ行えます。",
    )


def _own_partner(uow: Uow, who: Principal, partner: str) -> str:
    if who.role is Role.PARTNER and partner_keys.partner_of_key(uow, who.key_id) != partner:
        raise _forbidden()
    return partner


class PartnerIn(BaseModel):
    name: str = Field(examples=["日本航空 JAL マイレージバンク"])
    methods: list[str] = Field(
        description="any of id_linkage, coupon_paper, coupon_email, coupon_url"
    )


class AgreementIO(BaseModel):
    effective_from: date = Field(description="Tokyo date the terms apply from (today or later)")
    rate_units: Units = Field(description="this many partner units …", examples=[10000])
    rate_points: Points = Field(description="… make this many points", examples=[10000])
    minimum: Units = Field(description="units at least, per conversion")
    step: Units = Field(description="units are a multiple of this")
    daily_limit: Units | None = Field(default=None, description="units per resident per day")
    partner_daily_limit: Units | None = Field(
        default=None, description="units per day for all of the partner's residents"
    )


class AgreementOut(AgreementIO):
    recorded_by: str
    recorded_at: datetime


class PartnerOut(BaseModel):
    id: str
    name: str
    methods: list[str]
    agreements: list[AgreementOut]


class PartnerKeyIn(BaseModel):
    label: str = ""


class PartnerKeyOut(BaseModel):
    partner: str
    key_id: str
    api_key: str = Field(description="Authorization: Bearer …; shown once")
    signing_secret: str = Field(description="HMAC-SHA256 key for X-MyKey-Signature; shown once")


class ConversionIn(BaseModel):
    service_id: str = Field(description="the resident's ID at the partner, registered in My Page")
    units: Units = Field(description="partner points or miles to convert")
    municipality: str | None = Field(
        default=None, description="6-digit code; leave out for the resident's reserved points"
    )
    idempotency_key: str = Field(description="a retry with the same key converts once")
    reference: str | None = Field(default=None, description="the partner's own reference")


class ConversionOut(BaseModel):
    conversion_id: str
    units: int
    points: int
    premium: int
    municipality: str = Field(description='a 6-digit code, or "reserved"')
    balance: int = Field(description="the resident's points there now")
    reference: str | None
    created_at: datetime
    replayed: bool


class ReceivableOut(BaseModel):
    partner: str
    municipality: str = Field(description='a 6-digit code, or "reserved" (owed to no one yet)')
    points: int = Field(description="= yen owed")


class DefaultMunicipalityIO(BaseModel):
    municipality: str | None


class AssignmentIn(BaseModel):
    municipality: str
    points: Points | None = Field(default=None, description="leave out for all")
    key: str = Field(description="idempotency key: a retry assigns once")


class AssignmentPartOut(BaseModel):
    partner: str
    points: int


class AssignmentOut(BaseModel):
    assignment_id: str
    municipality: str
    points: int
    premium: int
    parts: list[AssignmentPartOut]
    balance: int
    reserved_left: int
    replayed: bool


class ReservedLotOut(BaseModel):
    partner: str
    remaining: int
    converted_at: datetime
    expires_on: date
    sweep_after: datetime = Field(
        description="from then (Tokyo midnight starting day D+15) the daily sweep assigns it"
    )
    assign_by: date = Field(description="the last Tokyo day to assign it yourself (D+14)")


class ReservedOut(BaseModel):
    points: int
    default_municipality: str | None
    lots: list[ReservedLotOut]


def _partner_out(view: partners.PartnerView) -> PartnerOut:
    return PartnerOut(
        id=view.id,
        name=view.name,
        methods=list(view.methods),
        agreements=[
            AgreementOut(
                effective_from=a.effective_from,
                rate_units=a.rate_units,
                rate_points=a.rate_points,
                minimum=a.minimum,
                step=a.step,
                daily_limit=a.daily_limit,
                partner_daily_limit=a.partner_daily_limit,
                recorded_by=a.recorded_by,
                recorded_at=a.recorded_at,
            )
            for a in view.agreements
        ],
    )


def _conversion_out(r: conversion.ConversionReceipt) -> ConversionOut:
    return ConversionOut(
        conversion_id=str(r.conversion_id),
        units=r.units,
        points=r.points,
        premium=r.premium,
        municipality=r.municipality or "reserved",
        balance=r.balance,
        reference=r.reference,
        created_at=r.created_at,
        replayed=r.replayed,
    )


@router.get("/partners", response_model=list[PartnerOut])
def list_partners(uow: Uow, operator: CurrentOperator) -> list[PartnerOut]:
    """Every partner with its agreements, oldest first (council operators)."""
    return [_partner_out(v) for v in partners.list_partners(uow)]


@router.put("/partners/{partner}", response_model=PartnerOut)
def put_partner(partner: str, body: PartnerIn, uow: Uow, operator: CurrentOperator) -> PartnerOut:
    """Register a partner, or change its name and agreed methods (council operators)."""
    return _partner_out(
        partners.set_partner(uow, partner=partner, name=body.name, methods=body.methods)
    )


@router.post("/partners/{partner}/agreements", response_model=AgreementOut, status_code=201)
def add_agreement(
    partner: str, body: AgreementIO, uow: Uow, operator: CurrentOperator
) -> AgreementOut:
    """New terms from a date (council operators); earlier terms are never edited."""
    a = partners.add_agreement(
        uow,
        partner=partner,
        effective_from=body.effective_from,
        rate_units=body.rate_units,
        rate_points=body.rate_points,
        minimum=body.minimum,
        step=body.step,
        daily_limit=body.daily_limit,
        partner_daily_limit=body.partner_daily_limit,
        actor=operator.actor,
    )
    return AgreementOut(**{k: getattr(a, k) for k in AgreementOut.model_fields})


@router.post("/partners/{partner}/keys", response_model=PartnerKeyOut, status_code=201)
def issue_key(
    partner: str, body: PartnerKeyIn, uow: Uow, request: Request, operator: CurrentOperator
) -> PartnerKeyOut:
    """A partner key and its signing secret, shown once (council operators)."""
    issued = partner_keys.issue_partner_key(
        uow, partner=partner, label=body.label, secret_key=request.app.state.settings.secret_key
    )
    return PartnerKeyOut(**vars(issued))


@router.post("/partners/{partner}/conversions", response_model=ConversionOut, status_code=201)
def convert(
    partner: str,
    body: ConversionIn,
    uow: Uow,
    request: Request,
    who: PartnerKeyHolder,
    raw: RawBody,
    x_mykey_timestamp: Annotated[str | None, Header()] = None,
    x_mykey_signature: Annotated[str | None, Header()] = None,
) -> ConversionOut:
    """Method 1, ID linkage: convert a resident's partner points, named by their service ID,
    into a municipality's points (or their reserved points). Signed with HMAC-SHA256."""
    query = request.url.query
    signed_for = partner_keys.verify_signed_request(
        uow,
        key_id=who.key_id,
        method=request.method,
        target=request.url.path + (f"?{query}" if query else ""),
        timestamp=x_mykey_timestamp,
        signature=x_mykey_signature,
        body=raw,
        secret_key=request.app.state.settings.secret_key,
    )
    if signed_for != partner:
        raise _forbidden()
    receipt = conversion.convert_by_service_id(
        uow,
        partner=partner,
        service_id=body.service_id,
        units=body.units,
        municipality=body.municipality,
        actor=f"partner:{partner}",  # one client across its keys: a rotated key retries once
        key=body.idempotency_key,
        reference=body.reference,
    )
    return _conversion_out(receipt)


@router.get("/partners/{partner}/conversions", response_model=list[ConversionOut])
def list_conversions(
    partner: str, uow: Uow, who: PartnerOrOperator, month: str | None = None
) -> list[ConversionOut]:
    """The partner's conversions in a Tokyo month (`YYYY-MM`), oldest first."""
    own = _own_partner(uow, who, partner)
    return [_conversion_out(r) for r in conversion.conversions_of(uow, partner=own, month=month)]


@router.get("/partners/{partner}/receivables", response_model=list[ReceivableOut])
def receivables(partner: str, uow: Uow, who: PartnerOrOperator) -> list[ReceivableOut]:
    """What the partner owes each municipality: 1 yen per point converted there."""
    own = _own_partner(uow, who, partner)
    return [
        ReceivableOut(partner=r.partner, municipality=r.municipality or "reserved", points=r.points)
        for r in conversion.receivables(uow, partner=own)
    ]


@router.put("/me/default-municipality", response_model=DefaultMunicipalityIO)
def put_default_municipality(
    body: DefaultMunicipalityIO, uow: Uow, token: Token
) -> DefaultMunicipalityIO:
    """Where my reserved points go after 14 days (null: nowhere; they wait)."""
    code = reserved.set_default_municipality(
        uow, mykey_id=residents.resident_for_session(uow, token), municipality=body.municipality
    )
    return DefaultMunicipalityIO(municipality=code)


@router.get("/me/reserved", response_model=ReservedOut)
def my_reserved(uow: Uow, token: Token) -> ReservedOut:
    """My reserved points: which partner each came from, when it lapses, when it is swept."""
    view = reserved.reserved_of(uow, residents.resident_for_session(uow, token))
    return ReservedOut(
        points=view.points,
        default_municipality=view.default_municipality,
        lots=[ReservedLotOut(**vars(lot)) for lot in view.lots],
    )


@router.post("/me/reserved/assignments", response_model=AssignmentOut, status_code=201)
def assign(body: AssignmentIn, uow: Uow, token: Token) -> AssignmentOut:
    """Move all or part of my reserved points to one municipality (oldest first)."""
    who = residents.resident_for_session(uow, token)
    r = reserved.assign_reserved(
        uow,
        mykey_id=who,
        municipality=body.municipality,
        points=body.points,
        actor=f"resident:{who}",
        key=body.key,
    )
    return AssignmentOut(
        assignment_id=str(r.assignment_id),
        municipality=r.municipality,
        points=r.points,
        premium=r.premium,
        parts=[AssignmentPartOut(partner=p.partner, points=p.points) for p in r.parts],
        balance=r.balance,
        reserved_left=r.reserved_left,
        replayed=r.replayed,
    )
