"""The counter terminal (R6.1): a browser on the shop's PC or tablet, signed in with a shop
staff account (role `shop_staff`, bound to the shop's or facility's provider id).

The clerk taps the resident's card (in the demo: picks a simulator card), sees the points
accepted here, enters the points to use, confirms (tapping again), and sees the rest; or
issues vouchers and prints them; redeems a voucher by its number; cancels a payment of today.
A library's terminal (provider kind `library`) shows the library's user number for the card.

Nothing of a resident is kept between requests: the session holds the clerk only, every
operation takes a fresh card tap, and each form carries its own idempotency key so a double
click has effect once. Refusals are shown in a clerk's words (`counter.error.<code>`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from mykey.errors import MyKeyError
from mykey.identity import links
from mykey.identity.staff import StaffMember, StaffRole
from mykey.points import shops, spending, voucher_print, vouchers
from mykey.web.pages.base import CheckedForm, Page, PageDep, PageProblem, staff_page
from mykey.web.pages.cardtap import CARD_FIELD, card_options, tap
from mykey.web.pages.mypage import error_text, helpers, new_key, whole_number

router = APIRouter(prefix="/counter", include_in_schema=False)

Clerk = Annotated[StaffMember, Depends(staff_page(StaffRole.SHOP_STAFF))]

# Refusals a clerk meets, said the way a clerk would tell the resident (the domain's own
# message follows as the detail).
CLERK_ERRORS = (
    "card_not_read",
    "card_revoked",
    "card_expired",
    "card_replaced",
    "card_not_registered",
    "untrusted_card",
    "no_points",
    "insufficient_points",
    "not_accepted_here",
    "voucher_expired",
    "voucher_wrong_shop",
    "voucher_already_redeemed",
    "unknown_voucher",
    "invalid_voucher_number",
    "not_linked",
    "cancel_not_same_day",
    "already_cancelled",
    "invalid_points",
    "invalid_denomination",
)


@dataclass(frozen=True)
class Place:
    """Where this counter is: a shop or facility (pays with points), or another provider such
    as a library (looks up user numbers)."""

    id: str
    name: str
    kind: str
    is_shop: bool


def _place(page: Page, clerk: StaffMember) -> Place:
    if clerk.shop_id is None:  # pragma: no cover -- shop staff accounts always bind one
        raise PageProblem(403, "error.forbidden.title", "error.forbidden.body")
    try:
        shop = shops.get_shop(page.uow, clerk.shop_id)
        return Place(shop.id, shop.name, shop.kind, True)
    except MyKeyError:
        pass
    try:
        provider = links.get_provider(page.uow, clerk.shop_id)
    except MyKeyError:
        raise PageProblem(403, "error.forbidden.title", "error.forbidden.body") from None
    return Place(provider.id, provider.name, provider.kind, False)


def _problem(page: Page, error: MyKeyError) -> tuple[str, str]:
    """(what the clerk reads first, the detail)."""
    heading = (
        page.t(f"counter.error.{error.code}")
        if error.code in CLERK_ERRORS
        else page.t("counter.error.other")
    )
    return heading, error_text(page, error)


def _render(
    page: Page, clerk: StaffMember, template: str, *, status: int = 200, **values: Any
) -> Response:
    place = _place(page, clerk)
    return page.render(
        template,
        status=status,
        place=place,
        clerk=clerk,
        card_options=card_options(page),
        card_field=CARD_FIELD,
        **helpers(page),
        **values,
    )


def _home(
    page: Page,
    clerk: StaffMember,
    *,
    status: int = 200,
    problem: tuple[str, str] | None = None,
    notice: str | None = None,
) -> Response:
    place = _place(page, clerk)
    today = spending.payments_today(page.uow, shop_id=place.id) if place.is_shop else []
    return _render(
        page,
        clerk,
        "counter/home.html",
        status=status,
        problem=problem,
        notice=notice,
        payments=today,
        key=new_key(),
    )


@router.get("")
def home(page: PageDep, clerk: Clerk, signed_in: int = 0) -> Response:
    return _home(page, clerk, notice=page.t("login.signed_in") if signed_in else None)


# --- tap: the points accepted here -----------------------------------------------------------


@router.post("/tap")
def tapped(page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    """The card is tapped: this resident's points accepted here (shown, never kept)."""
    place = _place(page, clerk)
    if not place.is_shop:
        return lookup(page, clerk, fields)
    try:
        card = tap(page, fields.get(CARD_FIELD), actor=clerk.actor)
        found = spending.balances_here(page.uow, shop_id=place.id, card=card)
    except MyKeyError as error:
        return _home(page, clerk, status=422, problem=_problem(page, error))
    return _render(
        page,
        clerk,
        "counter/balances.html",
        balances=found,
        usable=[b for b in found if b.balance > 0],
    )


def _confirm(page: Page, clerk: StaffMember, fields: dict[str, str], *, action: str) -> Response:
    points = whole_number(fields.get("points"))
    denomination = whole_number(fields.get("denomination")) if fields.get("denomination") else None
    municipality = fields.get("municipality", "")
    if not points or not municipality or (fields.get("denomination") and not denomination):
        return _home(
            page,
            clerk,
            status=422,
            problem=(page.t("counter.error.invalid_points"), page.t("counter.points.retry")),
        )
    return _render(
        page,
        clerk,
        "counter/confirm.html",
        action=action,
        municipality=municipality,
        points=points,
        denomination=denomination,
        selected_card=fields.get(CARD_FIELD, ""),
        key=new_key(),
    )


@router.post("/payments/confirm")
def confirm_payment(page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    return _confirm(page, clerk, fields, action="pay")


@router.post("/vouchers/confirm")
def confirm_vouchers(page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    chosen = {
        "municipality": fields.get("voucher-municipality", ""),
        "points": fields.get("voucher-points", ""),
        "denomination": fields.get("denomination", ""),
        CARD_FIELD: fields.get(CARD_FIELD, ""),
    }
    return _confirm(page, clerk, chosen, action="vouchers")


@router.post("/payments")
def pay(page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    """Confirmed: tap again, pay, and show the rest."""
    place = _place(page, clerk)
    try:
        card = tap(page, fields.get(CARD_FIELD), actor=clerk.actor)
        done = spending.pay(
            page.uow,
            shop_id=place.id,
            card=card,
            municipality=fields.get("municipality", ""),
            points=whole_number(fields.get("points")) or 0,
            actor=clerk.actor,
            key=fields.get("key", ""),
        )
    except MyKeyError as error:
        return _home(page, clerk, status=422, problem=_problem(page, error))
    return _render(page, clerk, "counter/paid.html", payment=done, key=new_key())


@router.post("/vouchers")
def issue(page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    """Confirmed: tap again, issue the vouchers, and offer them for printing."""
    place = _place(page, clerk)
    denomination = whole_number(fields.get("denomination")) if fields.get("denomination") else None
    try:
        card = tap(page, fields.get(CARD_FIELD), actor=clerk.actor)
        done = vouchers.issue(
            page.uow,
            shop_id=place.id,
            card=card,
            municipality=fields.get("municipality", ""),
            points=whole_number(fields.get("points")) or 0,
            actor=clerk.actor,
            key=fields.get("key", ""),
            denomination=denomination,
        )
    except MyKeyError as error:
        return _home(page, clerk, status=422, problem=_problem(page, error))
    return _render(
        page,
        clerk,
        "counter/issued.html",
        issued=done,
        transfer_id=str(done.receipt.transfer_id),
    )


@router.get("/vouchers/batches/{issue_transfer_id}.pdf")
def print_vouchers(issue_transfer_id: str, page: PageDep, clerk: Clerk) -> Response:
    """The printable vouchers of one issue at this shop (counted; reprints are marked)."""
    place = _place(page, clerk)
    try:
        UUID(issue_transfer_id)
        content = voucher_print.print_batch(
            page.uow, issue_transfer_id, viewer=voucher_print.Viewer(shop_id=place.id)
        )
    except (MyKeyError, ValueError):
        raise PageProblem(404, "error.not_found.title", "error.not_found.body") from None
    return Response(
        content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="vouchers-{UUID(issue_transfer_id)}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/vouchers/redemptions")
def redeem(page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    """A voucher typed or scanned (a barcode scanner types its 13 digits and Enter)."""
    place = _place(page, clerk)
    number = "".join(ch for ch in fields.get("number", "") if not ch.isspace() and ch != "-")
    try:
        done = vouchers.redeem(
            page.uow, shop_id=place.id, number=number, actor=clerk.actor, key=fields.get("key", "")
        )
    except MyKeyError as error:
        return _home(page, clerk, status=422, problem=_problem(page, error))
    return _render(page, clerk, "counter/redeemed.html", redemption=done)


@router.post("/payments/{payment_id}/cancellation")
def cancel(payment_id: str, page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    """Cancel a payment of today at this shop: the points go back to the resident."""
    place = _place(page, clerk)
    try:
        done = spending.cancel(
            page.uow,
            shop_id=place.id,
            payment_id=payment_id,
            actor=clerk.actor,
            key=fields.get("key", ""),
        )
    except MyKeyError as error:
        return _home(page, clerk, status=422, problem=_problem(page, error))
    return _home(page, clerk, notice=page.t("counter.cancelled", points=f"{done.points:,}"))


@router.post("/lookups")
def lookup(page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    """A library's counter: the library's user number of the tapped card's holder."""
    place = _place(page, clerk)
    try:
        card = tap(page, fields.get(CARD_FIELD), actor=clerk.actor)
        number = links.lookup(
            page.uow, provider_id=place.id, card=card, actor=clerk.actor, purpose="counter"
        )
    except MyKeyError as error:
        return _home(page, clerk, status=422, problem=_problem(page, error))
    return _render(page, clerk, "counter/user_number.html", user_number=number)
