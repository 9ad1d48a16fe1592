"""Point vouchers (ポイント券) at shop terminals over HTTP (issue #5): issue from a resident's
wallet with a fresh card proof, Tenri's receipt vouchers, redemption by number."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, Field

from mykey.errors import COUNT, DAYS, POINTS, YEN, MyKeyError
from mykey.identity.keys import Role, authenticate
from mykey.identity.residents import resident_for_session
from mykey.points import gifts, voucher_print, vouchers
from mykey.web.api.cards import CardProofIn, expected, presented
from mykey.web.api.numbers import Whole
from mykey.web.api.points import _own_municipality
from mykey.web.api.resident import bearer
from mykey.web.api.terminal import EXPECTED_HOLDER, StaffOrOperator, _shop_id
from mykey.web.auth import CurrentTerminal
from mykey.web.deps import Uow
from mykey.web.security import is_head

router = APIRouter(prefix="/api/v1")


VoucherPoints = Annotated[int, Whole(POINTS, 1, vouchers.MAX_VOUCHER_POINTS)]
VoucherDays = Annotated[int, Whole(DAYS, 1, vouchers.MAX_VALID_DAYS)]
GiftDenomination = Annotated[int, Whole(POINTS, 1, gifts.MAX_DENOMINATION)]
GiftDays = Annotated[int, Whole(DAYS, 1, gifts.MAX_GIFT_DAYS)]
Sheets = Annotated[int, Whole(COUNT, 1, vouchers.MAX_PIECES)]
ReceiptYen = Annotated[int, Whole(YEN, 0, vouchers.MAX_RECEIPT_YEN)]


class VoucherIn(BaseModel):
    card_proof: CardProofIn
    municipality: str
    points: VoucherPoints
    key: str = Field(description="idempotency key: a retry with it issues once")
    denomination: VoucherPoints | None = Field(
        default=None, description="split into vouchers of this many points (no change)"
    )
    street_id: str | None = Field(
        default=None, description="valid at every shop of this street (default: this shop)"
    )
    valid_days: VoucherDays = Field(
        default=vouchers.DEFAULT_VALID_DAYS, description="counting today"
    )
    expected_holder: str | None = EXPECTED_HOLDER


class ReceiptVoucherIn(BaseModel):
    receipt_ref: str = Field(description="the shop's receipt number")
    yen: ReceiptYen = Field(description="the receipt amount in yen")
    key: str


class RedemptionIn(BaseModel):
    number: str = Field(description="the 13 digits typed or scanned")
    key: str


class VoucherOut(BaseModel):
    number: str
    municipality: str
    point_name: str
    program: str
    face_value: int
    issued_on: date
    valid_until: date
    shop_id: str | None
    shop_name: str | None
    street_id: str | None
    street_name: str | None
    status: str
    redeemed_shop_id: str | None
    receipt_ref: str | None
    gift_program: str | None = Field(default=None, description="gift certificates (商品券)")


class IssuedOut(BaseModel):
    transaction_id: str
    points: int
    vouchers: list[VoucherOut]
    balance: int = Field(description="the rest of the resident's points of this municipality")
    replayed: bool


class RedemptionOut(BaseModel):
    transaction_id: str
    voucher: VoucherOut
    replayed: bool


def _out(v: vouchers.VoucherView) -> VoucherOut:
    fields = vars(v).copy()
    fields.pop("prints")
    return VoucherOut(**fields)


def _issued(done: vouchers.Issued) -> IssuedOut:
    return IssuedOut(
        transaction_id=str(done.receipt.transfer_id),
        points=done.receipt.amount,
        vouchers=[_out(v) for v in done.vouchers],
        balance=done.balance,
        replayed=done.replayed,
    )


@router.post("/terminal/vouchers", response_model=IssuedOut, status_code=201, tags=["vouchers"])
def issue(body: VoucherIn, uow: Uow, request: Request, terminal: CurrentTerminal) -> IssuedOut:
    """Turn the card holder's points into vouchers (wallet → VOUCHER_FLOAT)."""
    return _issued(
        vouchers.issue(
            uow,
            shop_id=_shop_id(terminal),
            card=presented(request, body.card_proof, actor=terminal.actor),
            municipality=body.municipality,
            points=body.points,
            actor=terminal.actor,
            key=body.key,
            denomination=body.denomination,
            street_id=body.street_id,
            valid_days=body.valid_days,
            expected_holder=expected(request, body.expected_holder),
        )
    )


@router.post(
    "/terminal/receipt-vouchers", response_model=IssuedOut, status_code=201, tags=["vouchers"]
)
def issue_for_receipt(body: ReceiptVoucherIn, uow: Uow, terminal: CurrentTerminal) -> IssuedOut:
    """Tenri's receipt program: a voucher for a receipt, funded by the city's budget."""
    return _issued(
        vouchers.issue_for_receipt(
            uow,
            shop_id=_shop_id(terminal),
            receipt_ref=body.receipt_ref,
            yen=body.yen,
            actor=terminal.actor,
            key=body.key,
        )
    )


@router.post(
    "/terminal/voucher-redemptions",
    response_model=RedemptionOut,
    status_code=201,
    tags=["vouchers"],
)
def redeem(body: RedemptionIn, uow: Uow, terminal: CurrentTerminal) -> RedemptionOut:
    """Redeem a voucher at this shop (VOUCHER_FLOAT → the shop), once."""
    done = vouchers.redeem(
        uow, shop_id=_shop_id(terminal), number=body.number, actor=terminal.actor, key=body.key
    )
    return RedemptionOut(
        transaction_id=done.transfer_id, voucher=_out(done.voucher), replayed=done.replayed
    )


@router.get("/terminal/vouchers/{number}", response_model=VoucherOut, tags=["vouchers"])
def get_voucher(number: str, uow: Uow, terminal: CurrentTerminal) -> VoucherOut:
    """Look a voucher up by its number (any shop terminal: the number is on the paper)."""
    return _out(vouchers.get_voucher(uow, number))


PDF = "application/pdf"


def _viewer(uow: Uow, request: Request, authorization: str | None) -> voucher_print.Viewer:
    """A terminal key (mk_…) names its shop; any other bearer token is a resident's session.
    Other API keys may not print (they get the same 404 as an unknown voucher). A HEAD only
    looks: nothing is counted."""
    viewer = _who(uow, authorization)
    return replace(viewer, counting=not is_head(request))


def _who(uow: Uow, authorization: str | None) -> voucher_print.Viewer:
    token = bearer(authorization)
    if token.startswith("mk_"):
        try:
            principal = authenticate(uow, token)
        except MyKeyError as not_a_key:  # a session token may start with mk_ too, rarely
            try:
                return voucher_print.Viewer(mykey_id=resident_for_session(uow, token))
            except MyKeyError:
                raise not_a_key from None
        if principal.role is Role.TERMINAL:
            return voucher_print.Viewer(shop_id=principal.provider_id)
        return voucher_print.Viewer()
    return voucher_print.Viewer(mykey_id=resident_for_session(uow, token))


def _pdf(content: bytes, name: str) -> Response:
    name = "".join(ch for ch in name if ch.isascii() and (ch.isalnum() or ch == "-"))
    return Response(
        content,
        media_type=PDF,
        headers={
            "Content-Disposition": f'inline; filename="{name}.pdf"',
            "Cache-Control": "no-store",
        },
    )


_PDF_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {PDF: {}}, "description": "the printable PDF"}
}


@router.get(
    "/vouchers/batches/{issue_transfer_id}.pdf",
    response_class=Response,
    responses=_PDF_RESPONSE,
    tags=["vouchers"],
)
def print_batch(
    issue_transfer_id: str,
    uow: Uow,
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """Print every voucher (or gift certificate) of one issue, three to an A4 page; each print
    is counted and copies after the first are marked 再発行 / REPRINT. A terminal of the
    issuing shop, or the resident it was issued to (My Page session)."""
    viewer = _viewer(uow, request, authorization)
    content = voucher_print.print_batch(uow, issue_transfer_id, viewer=viewer)
    return _pdf(content, f"vouchers-{issue_transfer_id}")


@router.get(
    "/vouchers/{number}.pdf", response_class=Response, responses=_PDF_RESPONSE, tags=["vouchers"]
)
def print_voucher(
    number: str, uow: Uow, request: Request, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """Print one voucher as on the seed's image (EAN-13 barcode and QR code of its number);
    counted, reprints marked. A terminal of the issuing shop, or the resident it was issued
    to (My Page session); anyone else: 404."""
    viewer = _viewer(uow, request, authorization)
    content = voucher_print.print_voucher(uow, number, viewer=viewer)
    return _pdf(content, f"voucher-{number}")


class GiftProgramIn(BaseModel):
    name: str = Field(examples=["前橋Qの町商品券"])
    denomination: GiftDenomination = Field(description="points per certificate", examples=[1000])
    valid_days: GiftDays = Field(description="counting the day of the exchange", examples=[180])
    street_id: str | None = Field(
        default=None,
        description="valid at this shopping street's member shops (default: every shop that"
        " takes the municipality's points)",
    )
    max_sheets: Sheets | None = Field(default=None, description="most sheets per exchange")


class GiftProgramOut(BaseModel):
    id: str
    municipality: str
    name: str
    denomination: int
    valid_days: int
    street_id: str | None
    street_name: str | None
    max_sheets: int | None


class GiftExchangeIn(BaseModel):
    card_proof: CardProofIn
    program: str = Field(description="the gift programme id")
    sheets: Sheets = Field(description="how many certificates")
    key: str = Field(description="idempotency key: a retry with it exchanges once")
    expected_holder: str | None = EXPECTED_HOLDER


@router.put(
    "/municipalities/{code}/gift-programs/{program_id}",
    response_model=GiftProgramOut,
    tags=["vouchers"],
)
def put_gift_program(
    code: str, program_id: str, body: GiftProgramIn, uow: Uow, who: StaffOrOperator
) -> GiftProgramOut:
    """Set up or change a gift certificate programme (商品券) of this municipality (its staff,
    or an operator)."""
    view = gifts.set_gift_program(
        uow,
        program_id=program_id,
        municipality=_own_municipality(who, code),
        name=body.name,
        denomination=body.denomination,
        valid_days=body.valid_days,
        street_id=body.street_id,
        max_sheets=body.max_sheets,
    )
    return GiftProgramOut(**vars(view))


@router.get(
    "/municipalities/{code}/gift-programs",
    response_model=list[GiftProgramOut],
    tags=["vouchers"],
)
def list_gift_programs(code: str, uow: Uow) -> list[GiftProgramOut]:
    """The municipality's gift certificates on offer (public, as the shops are)."""
    return [GiftProgramOut(**vars(v)) for v in gifts.list_gift_programs(uow, municipality=code)]


@router.post(
    "/terminal/gift-certificates", response_model=IssuedOut, status_code=201, tags=["vouchers"]
)
def exchange_gift_certificates(
    body: GiftExchangeIn, uow: Uow, request: Request, terminal: CurrentTerminal
) -> IssuedOut:
    """Exchange the card holder's points for gift certificates (wallet → VOUCHER_FLOAT, one
    transfer); print them with GET /api/v1/vouchers/batches/{transaction_id}.pdf."""
    return _issued(
        gifts.exchange(
            uow,
            shop_id=_shop_id(terminal),
            card=presented(request, body.card_proof, actor=terminal.actor),
            program_id=body.program,
            sheets=body.sheets,
            actor=terminal.actor,
            key=body.key,
            expected_holder=expected(request, body.expected_holder),
        )
    )
