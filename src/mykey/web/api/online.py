"""Online payments over HTTP (R6.6): authorize, capture, void, refund, signed like partner
requests; the operating share of online sales (R7.4); online shops' keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field

from mykey.errors import SECONDS, forbidden
from mykey.identity.keys import Principal, Role
from mykey.points import online
from mykey.web.api.numbers import Permille, Points, Whole
from mykey.web.api.points import _own_municipality
from mykey.web.auth import CurrentTerminal, require
from mykey.web.deps import Uow

router = APIRouter(prefix="/api/v1", tags=["online"])

StaffOrOperator = Annotated[Principal, Depends(require(Role.MUNICIPALITY_STAFF, Role.OPERATOR))]
CurrentOperator = Annotated[Principal, Depends(require(Role.OPERATOR))]


async def raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


HoldSeconds = Annotated[
    int,
    Whole(SECONDS, int(online.MIN_HOLD.total_seconds()), int(online.MAX_HOLD.total_seconds())),
]


class OnlineKeyIn(BaseModel):
    label: str = ""


class OnlineKeyOut(BaseModel):
    shop: str
    key_id: str
    api_key: str = Field(description="Authorization: Bearer …; shown once")
    signing_secret: str = Field(description="HMAC-SHA256 key for X-MyKey-Signature; shown once")


class OnlineFeeIO(BaseModel):
    online_fee_permille: Permille = Field(description="0..1000: the municipality's share of sales")


class AuthorizationIn(BaseModel):
    service_id: str = Field(description="the resident's ID at this service, from My Page")
    municipality: str = Field(description="whose points (6-digit code)")
    points: Points
    expires_in_seconds: HoldSeconds = Field(description="60 .. 2592000 (30 days)")
    key: str = Field(description="idempotency key: a retry holds once")
    order_ref: str | None = None


class CaptureIn(BaseModel):
    points: Points | None = Field(default=None, description="leave out for all that is held")
    key: str


class VoidIn(BaseModel):
    key: str


class RefundIn(BaseModel):
    points: Points
    key: str


class OrderOut(BaseModel):
    authorization_id: str
    shop: str
    municipality: str
    order_ref: str | None
    held: int
    expires_at: datetime
    status: str = Field(description="authorized, captured, voided or expired")
    capture_id: str | None
    captured: int
    fee: int = Field(description="the municipality's operating share of the capture")
    refunded: int
    balance: int = Field(description="the resident's usable points of this municipality now")
    replayed: bool


class RefundOut(BaseModel):
    refund_id: str
    capture_id: str
    points: int
    fee_back: int
    refunded_total: int
    balance: int
    replayed: bool


def _out(v: online.OrderView) -> OrderOut:
    return OrderOut(
        authorization_id=str(v.authorization_id),
        shop=v.shop_id,
        municipality=v.municipality,
        order_ref=v.order_ref,
        held=v.held,
        expires_at=v.expires_at,
        status=v.status,
        capture_id=str(v.capture_id) if v.capture_id else None,
        captured=v.captured,
        fee=v.fee,
        refunded=v.refunded,
        balance=v.balance,
        replayed=v.replayed,
    )


Timestamp = Annotated[str | None, Header(alias="X-MyKey-Timestamp")]
Signature = Annotated[str | None, Header(alias="X-MyKey-Signature")]


def signed_shop(
    shop: str,
    uow: Uow,
    request: Request,
    who: CurrentTerminal,
    raw: RawBody,
    x_mykey_timestamp: Timestamp = None,
    x_mykey_signature: Signature = None,
) -> str:
    """The online shop of the path, once its key and signature are checked (as partners')."""
    query = request.url.query
    signed_for = online.verify_online_request(
        uow,
        key_id=who.key_id,
        method=request.method,
        target=request.url.path + (f"?{query}" if query else ""),
        timestamp=x_mykey_timestamp,
        signature=x_mykey_signature,
        body=raw,
        secret_key=request.app.state.settings.secret_key,
    )
    if signed_for != shop or who.provider_id != shop:
        raise forbidden(
            "An online service acts only for itself.",
            "オンラインサービスは自社の操作のみ行えます。",
        )
    return shop


SignedShop = Annotated[str, Depends(signed_shop)]


@router.post("/online/{shop}/keys", response_model=OnlineKeyOut, status_code=201)
def issue_key(
    shop: str, body: OnlineKeyIn, uow: Uow, request: Request, operator: CurrentOperator
) -> OnlineKeyOut:
    """An online service's key and signing secret, shown once (council operators)."""
    issued = online.issue_online_key(
        uow, shop=shop, label=body.label, secret_key=request.app.state.settings.secret_key
    )
    return OnlineKeyOut(**vars(issued))


@router.put("/municipalities/{code}/online-fee", response_model=OnlineFeeIO)
def put_online_fee(code: str, body: OnlineFeeIO, uow: Uow, who: StaffOrOperator) -> OnlineFeeIO:
    """The municipality's operating share of online sales, in permille (from the next capture)."""
    own = _own_municipality(who, code)
    permille = online.set_online_fee(uow, municipality=own, permille=body.online_fee_permille)
    return OnlineFeeIO(online_fee_permille=permille)


@router.post("/online/{shop}/authorizations", response_model=OrderOut, status_code=201)
def authorize(
    body: AuthorizationIn,
    uow: Uow,
    shop: SignedShop,
) -> OrderOut:
    """Hold a resident's points (named by their service ID) until capture, void or expiry."""
    return _out(
        online.authorize(
            uow,
            shop_id=shop,
            service_id=body.service_id,
            municipality=body.municipality,
            points=body.points,
            expires_in_seconds=body.expires_in_seconds,
            key=body.key,
            order_ref=body.order_ref,
        )
    )


@router.get("/online/{shop}/authorizations/{authorization_id}", response_model=OrderOut)
def get_authorization(
    authorization_id: str,
    uow: Uow,
    shop: SignedShop,
) -> OrderOut:
    """An order as it stands (held, captured, voided, expired; captured and refunded points),
    for a service that lost an answer or reconciles its orders. Signed like the writes."""
    return _out(online.get_order(uow, shop_id=shop, authorization_id=authorization_id))


@router.post("/online/{shop}/authorizations/{authorization_id}/capture", response_model=OrderOut)
def capture(
    authorization_id: str,
    body: CaptureIn,
    uow: Uow,
    shop: SignedShop,
) -> OrderOut:
    """Capture all or part of a hold (once); the rest goes back to the resident."""
    return _out(
        online.capture(
            uow, shop_id=shop, authorization_id=authorization_id, points=body.points, key=body.key
        )
    )


@router.post("/online/{shop}/authorizations/{authorization_id}/void", response_model=OrderOut)
def void(
    authorization_id: str,
    body: VoidIn,
    uow: Uow,
    shop: SignedShop,
) -> OrderOut:
    """Release a hold before capture."""
    return _out(online.void(uow, shop_id=shop, authorization_id=authorization_id, key=body.key))


@router.post(
    "/online/{shop}/captures/{capture_id}/refunds", response_model=RefundOut, status_code=201
)
def refund(
    capture_id: str,
    body: RefundIn,
    uow: Uow,
    shop: SignedShop,
) -> RefundOut:
    """Refund up to what was captured minus refunded (the fee on it goes back too)."""
    r = online.refund(uow, shop_id=shop, capture_id=capture_id, points=body.points, key=body.key)
    return RefundOut(
        refund_id=str(r.refund_id),
        capture_id=str(r.capture_id),
        points=r.points,
        fee_back=r.fee_back,
        refunded_total=r.refunded_total,
        balance=r.balance,
        replayed=r.replayed,
    )
