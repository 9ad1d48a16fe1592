"""Coupon codes over HTTP (R5.2 methods 2-1, 2-2, 2-3): partners order batches (signed with
HMAC like conversions) and download them; residents redeem a code in My Page."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, Field

from mykey.errors import COUNT
from mykey.identity import residents
from mykey.points import coupons, partner_keys
from mykey.web import openapi
from mykey.web.api.numbers import Units, Whole
from mykey.web.api.partners import (
    ConversionOut,
    PartnerKeyHolder,
    PartnerOrOperator,
    RawBody,
    _conversion_out,
    _forbidden,
    _own_partner,
)
from mykey.web.api.resident import Token
from mykey.web.deps import Uow

router = APIRouter(prefix="/api/v1", tags=["coupons"])


class BatchIn(BaseModel):
    count: Annotated[int, Whole(COUNT, 1, coupons.MAX_COUNT)] = Field(
        description="coupons in the batch, 1 to 100,000", examples=[500]
    )
    units: Units = Field(description="partner units per coupon", examples=[1000])
    delivery: str = Field(description="paper, email or url", examples=["paper"])
    expires_on: date = Field(description="last Tokyo day a coupon can be redeemed")
    idempotency_key: str = Field(description="a retry with the same key orders once")


class BatchOut(BaseModel):
    batch_id: str
    partner: str
    delivery: str
    count: int
    units: int
    expires_on: date
    created_at: datetime
    issued: int = Field(description="not redeemed and still redeemable")
    redeemed: int
    expired: int = Field(description="not redeemed, past expires_on")


class CouponOut(BaseModel):
    serial: int
    code: str = Field(description="XXXX-XXXX-XXXX-XXXX")
    url: str | None = Field(default=None, description="for delivery url: My Page's redeem link")


class OrderOut(BatchOut):
    replayed: bool
    coupons: list[CouponOut]


class RedemptionIn(BaseModel):
    code: str = Field(description="the coupon code; hyphens, spaces and case do not matter")
    municipality: str | None = Field(
        default=None, description="6-digit code; leave out for reserved points"
    )
    key: str = Field(description="idempotency key: a retry redeems once")


def _batch_out(b: coupons.BatchView) -> BatchOut:
    return BatchOut(
        batch_id=str(b.id),
        partner=b.partner,
        delivery=b.delivery,
        count=b.count,
        units=b.units,
        expires_on=b.expires_on,
        created_at=b.created_at,
        issued=b.issued,
        redeemed=b.redeemed,
        expired=b.expired,
    )


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.post("/partners/{partner}/coupon-batches", response_model=OrderOut, status_code=201)
def order_batch(
    partner: str,
    body: BatchIn,
    uow: Uow,
    request: Request,
    who: PartnerKeyHolder,
    raw: RawBody,
    x_mykey_timestamp: Annotated[str | None, Header()] = None,
    x_mykey_signature: Annotated[str | None, Header()] = None,
) -> OrderOut:
    """Order a batch of coupon codes (signed with HMAC-SHA256, like conversions). The codes
    are in the answer; they can be downloaded again as CSV."""
    query = request.url.query
    settings = request.app.state.settings
    signed_for = partner_keys.verify_signed_request(
        uow,
        key_id=who.key_id,
        method=request.method,
        target=request.url.path + (f"?{query}" if query else ""),
        timestamp=x_mykey_timestamp,
        signature=x_mykey_signature,
        body=raw,
        secret_key=settings.secret_key,
    )
    if signed_for != partner:
        raise _forbidden()
    ordered = coupons.order_batch(
        uow,
        partner=partner,
        count=body.count,
        units=body.units,
        delivery=body.delivery,
        expires_on=body.expires_on,
        actor=f"partner:{partner}",  # one client across its keys
        key=body.idempotency_key,
        secret_key=settings.secret_key,
    )
    base = _base(request)
    url = ordered.batch.delivery == "url"
    return OrderOut(
        **_batch_out(ordered.batch).model_dump(),
        replayed=ordered.replayed,
        coupons=[
            CouponOut(
                serial=c.serial,
                code=c.code,
                url=coupons.redeem_url(base, c.code) if url else None,
            )
            for c in ordered.coupons
        ],
    )


@router.get(
    "/partners/{partner}/coupon-batches/{batch_id}.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the batch's codes"}},
)
def batch_csv(
    partner: str, batch_id: UUID, uow: Uow, request: Request, who: PartnerOrOperator
) -> Response:
    """The batch's codes as CSV for the print shop (UTF-8 with BOM): serial, code, units,
    expires_on (and url for URL coupons)."""
    own = _own_partner(uow, who, partner)
    batch, codes = coupons.batch_codes(
        uow, partner=own, batch_id=batch_id, secret_key=request.app.state.settings.secret_key
    )
    return Response(
        "\ufeff" + coupons.csv_text(batch, codes, base_url=_base(request)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="coupons-{batch_id}.csv"'},
    )


@router.get("/partners/{partner}/coupon-batches/{batch_id}", response_model=BatchOut)
def get_batch(partner: str, batch_id: UUID, uow: Uow, who: PartnerOrOperator) -> BatchOut:
    """How many of the batch's coupons are issued, redeemed and expired."""
    own = _own_partner(uow, who, partner)
    return _batch_out(coupons.get_batch(uow, partner=own, batch_id=batch_id))


@router.post(
    "/me/coupons/redemptions",
    response_model=ConversionOut,
    status_code=201,
    responses=openapi.problems(429),
)
def redeem(body: RedemptionIn, uow: Uow, token: Token) -> ConversionOut:
    """Redeem a coupon code into a municipality's points (or my reserved points)."""
    who = residents.resident_for_session(uow, token)
    receipt = coupons.redeem(
        uow,
        code=body.code,
        mykey_id=who,
        municipality=body.municipality,
        actor=f"resident:{who}",
        key=body.key,
    )
    return _conversion_out(receipt)
