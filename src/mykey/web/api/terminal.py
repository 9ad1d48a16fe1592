"""Counter terminals of shops and facilities (R6.1) and the shop registry (R6) over HTTP.

Every terminal call carries a fresh card proof of the resident at the counter; the terminal's
key (role terminal, bound to the shop's provider id) names the shop. Nothing is kept between
calls, so nothing carries over to the next person at the counter: the balances answer a
holder binding that a payment sends back as `expected_holder`, so that another card tapped at
the confirmation is refused (docs/spending.md).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from mykey.errors import ErrorKind, MyKeyError
from mykey.identity.keys import Principal, Role
from mykey.points import shops, spending
from mykey.web.api.cards import CardProofIn, binder_of, expected, presented
from mykey.web.api.numbers import Points
from mykey.web.api.points import _own_municipality
from mykey.web.api.services import HolderBindingOut
from mykey.web.auth import CurrentTerminal, require
from mykey.web.deps import Uow
from mykey.web.metrics import PAYMENTS

router = APIRouter(prefix="/api/v1")

StaffOrOperator = Annotated[Principal, Depends(require(Role.MUNICIPALITY_STAFF, Role.OPERATOR))]


class StreetIn(BaseModel):
    name: str
    municipality: str


class StreetOut(BaseModel):
    id: str
    name: str
    municipality: str


class ShopIn(BaseModel):
    name: str = Field(examples=["前橋市美術館"])
    municipality: str = Field(description="where the shop is (6-digit code)")
    kind: str = Field(description="shop, large_store, museum, facility_fee, pool, hot_spring …")
    accepts: list[str] = Field(description="municipalities whose points are accepted here")
    street_id: str | None = Field(default=None, description="member of this shopping street")


class ShopOut(BaseModel):
    id: str
    name: str
    municipality: str
    kind: str
    street_id: str | None
    accepts: list[str]


def _shop_out(view: shops.ShopView) -> ShopOut:
    return ShopOut(
        id=view.id,
        name=view.name,
        municipality=view.municipality,
        kind=view.kind,
        street_id=view.street_id,
        accepts=list(view.accepts),
    )


@router.put("/streets/{street_id}", response_model=StreetOut, tags=["shops"])
def put_street(street_id: str, body: StreetIn, uow: Uow, who: StaffOrOperator) -> StreetOut:
    """Register or rename a shopping street (its municipality's staff, or an operator)."""
    own = _own_municipality(who, body.municipality)
    view = shops.set_street(uow, street_id=street_id, name=body.name, municipality=own)
    return StreetOut(**vars(view))


@router.put("/shops/{shop_id}", response_model=ShopOut, tags=["shops"])
def put_shop(shop_id: str, body: ShopIn, uow: Uow, who: StaffOrOperator) -> ShopOut:
    """Register or change a shop or facility (its municipality's staff, or an operator)."""
    own = _own_municipality(who, body.municipality)
    return _shop_out(
        shops.set_shop(
            uow,
            shop_id=shop_id,
            name=body.name,
            municipality=own,
            kind=body.kind,
            accepts=body.accepts,
            street_id=body.street_id,
        )
    )


@router.get("/shops", response_model=list[ShopOut], tags=["shops"])
def list_shops(uow: Uow, municipality: str | None = None) -> list[ShopOut]:
    """Shops and facilities; with `municipality`, those where its points can be used."""
    return [_shop_out(v) for v in shops.list_shops(uow, municipality=municipality)]


@router.get("/shops/{shop_id}", response_model=ShopOut, tags=["shops"])
def get_shop(shop_id: str, uow: Uow) -> ShopOut:
    return _shop_out(shops.get_shop(uow, shop_id))


class BalancesIn(BaseModel):
    card_proof: CardProofIn


class BalanceOut(BaseModel):
    municipality: str
    point_name: str
    balance: int
    earliest_expiry: date | None
    earliest_expiry_points: int


class BalancesOut(BaseModel):
    shop_id: str
    holder: str = Field(description="whose points these are: the MyKey ID, masked (MY12****)")
    holder_binding: HolderBindingOut = Field(
        description="send `token` back as `expected_holder` with the payment or voucher issue"
        " the customer confirms: another card is then refused (409 `wrong_card`)"
    )
    balances: list[BalanceOut]


EXPECTED_HOLDER = Field(
    default=None,
    description="the `holder_binding.token` of the balances shown: refused with 409"
    " `wrong_card` (nothing charged) if the card is another holder's",
)


class PaymentIn(BaseModel):
    card_proof: CardProofIn
    municipality: str
    points: Points
    key: str = Field(description="idempotency key: a retry with it pays once")
    receipt_ref: str | None = Field(default=None, description="the shop's receipt number")
    expected_holder: str | None = EXPECTED_HOLDER


class PaymentOut(BaseModel):
    transaction_id: str
    shop_id: str
    municipality: str
    points: int
    balance: int = Field(description="the rest of the resident's points of this municipality")
    receipt_ref: str | None
    created_at: datetime
    replayed: bool


class CancellationIn(BaseModel):
    key: str


class CancellationOut(BaseModel):
    transaction_id: str
    payment_id: str
    points: Points
    balance: int
    replayed: bool


class RefundIn(BaseModel):
    payment_id: str
    points: Points
    key: str


class RefundOut(BaseModel):
    transaction_id: str
    payment_id: str
    points: int
    refunded_total: int
    balance: int
    expires_on: date
    replayed: bool


def _shop_id(terminal: Principal) -> str:
    if terminal.provider_id is None:  # pragma: no cover -- terminal keys always bind a provider
        raise MyKeyError(
            "not_a_shop",
            ErrorKind.REFUSED,
            "This terminal does not belong to a shop.",
            "この端末は店舗の端末ではありません。",
        )
    return terminal.provider_id


@router.post("/terminal/balances", response_model=BalancesOut, tags=["terminal"])
def balances(
    body: BalancesIn, uow: Uow, request: Request, terminal: CurrentTerminal
) -> BalancesOut:
    """The card is tapped: the holder's points accepted here, per municipality."""
    shop_id = _shop_id(terminal)
    found = spending.balances_here(
        uow,
        shop_id=shop_id,
        card=presented(request, body.card_proof, actor=terminal.actor),
        actor=terminal.actor,
        binder=binder_of(request),
    )
    assert found.binding is not None
    return BalancesOut(
        shop_id=shop_id,
        holder=found.holder,
        holder_binding=HolderBindingOut(**vars(found.binding)),
        balances=[BalanceOut(**vars(b)) for b in found.balances],
    )


@router.post("/terminal/payments", response_model=PaymentOut, status_code=201, tags=["terminal"])
def pay(body: PaymentIn, uow: Uow, request: Request, terminal: CurrentTerminal) -> PaymentOut:
    """Pay with points: the card holder's wallet → this shop. Idempotent per (terminal, key):
    a resend after a lost answer gets the first answer (`replayed`), even with the same card
    proof; with `expected_holder`, another holder's card is refused (409 `wrong_card`)."""
    done = spending.pay(
        uow,
        shop_id=_shop_id(terminal),
        card=presented(request, body.card_proof, actor=terminal.actor),
        municipality=body.municipality,
        points=body.points,
        actor=terminal.actor,
        key=body.key,
        receipt_ref=body.receipt_ref,
        expected_holder=expected(request, body.expected_holder),
    )
    if not done.replayed:
        PAYMENTS.inc()
    return PaymentOut(
        transaction_id=str(done.transfer_id),
        shop_id=done.shop_id,
        municipality=done.municipality,
        points=done.points,
        balance=done.balance,
        receipt_ref=done.receipt_ref,
        created_at=done.created_at,
        replayed=done.replayed,
    )


@router.post(
    "/terminal/payments/{payment_id}/cancellation",
    response_model=CancellationOut,
    status_code=201,
    tags=["terminal"],
)
def cancel(
    payment_id: str, body: CancellationIn, uow: Uow, terminal: CurrentTerminal
) -> CancellationOut:
    """Cancel this shop's payment on the same day (the points go back into the same lots)."""
    done = spending.cancel(
        uow, shop_id=_shop_id(terminal), payment_id=payment_id, actor=terminal.actor, key=body.key
    )
    return CancellationOut(
        transaction_id=str(done.transfer_id),
        payment_id=str(done.payment_id),
        points=done.points,
        balance=done.balance,
        replayed=done.replayed,
    )


@router.post("/terminal/refunds", response_model=RefundOut, status_code=201, tags=["terminal"])
def refund(body: RefundIn, uow: Uow, terminal: CurrentTerminal) -> RefundOut:
    """Refund part or all of an earlier payment of this shop, as a new transfer back."""
    done = spending.refund(
        uow,
        shop_id=_shop_id(terminal),
        payment_id=body.payment_id,
        points=body.points,
        actor=terminal.actor,
        key=body.key,
    )
    return RefundOut(
        transaction_id=str(done.transfer_id),
        payment_id=str(done.payment_id),
        points=done.points,
        refunded_total=done.refunded_total,
        balance=done.balance,
        expires_on=done.expires_on,
        replayed=done.replayed,
    )
