"""The counter terminal (R6.1): a browser on the shop's PC or tablet, signed in with a shop
staff account (role `shop_staff`, bound to the shop's or facility's provider id).

The clerk taps the resident's card (in the demo: picks a simulator card), sees the points
accepted here and whose they are (the MyKey ID masked, `MY12****`), enters the points to use,
confirms (tapping again), and sees the rest; or issues vouchers and prints them; redeems a
voucher by its number; cancels a payment of today. A library's terminal (provider kind
`library`) shows the library's user number for the card.

The confirmation is bound to the holder whose balances were shown: it carries the server's
signed holder binding (`identity.binding`), and a card of anyone else tapped there is refused
(`wrong_card`), charging nothing.

Post/redirect/get: every form answers with a redirect to a GET page (or, refused, with the
form again), so a reload or a language switch shows a page, never resends a payment. What
those pages show of a resident (balances, the rest, a user number) is kept server-side in the
clerk's page session for two minutes at most (`Page.keep`), never in a URL, and forgotten
when the clerk turns to the next customer (the counter's home page); such pages are
`no-store`. The shop's own records (a payment, an issue of vouchers, a redemption) have their
own addresses at this shop, without the resident. Each form carries its own idempotency key,
so a double click has effect once. Refusals are shown in a clerk's words
(`counter.error.<code>`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from mykey.db import tokyo_date
from mykey.errors import MyKeyError
from mykey.identity import links
from mykey.identity.binding import Binder, ExpectedHolder
from mykey.identity.proofs import CardProofError
from mykey.identity.staff import StaffMember, StaffRole
from mykey.points import shops, spending, voucher_print, vouchers
from mykey.web.metrics import PAYMENTS
from mykey.web.pages.base import CheckedForm, Page, PageDep, PageProblem, staff_page
from mykey.web.pages.cardtap import CARD_FIELD, card_options, present
from mykey.web.pages.mypage import error_text, helpers, new_key, whole_number
from mykey.web.security import is_head

router = APIRouter(prefix="/counter", include_in_schema=False)

Clerk = Annotated[StaffMember, Depends(staff_page(StaffRole.SHOP_STAFF))]

BINDING_FIELD = "holder_binding"
# What the counter keeps of the customer at the counter, for the pages after a form.
CUSTOMER, CONFIRM = "counter.customer", "counter.confirm"
RESULT, FLASH = "counter.result", "counter.flash"

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
    "wrong_card",
    "holder_binding_expired",
    "invalid_holder_binding",
    "challenge_used",
    "challenge_expired",
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


def _binder(page: Page) -> Binder:
    return Binder.from_secret(page.request.app.state.settings.secret_key)


def _problem(page: Page, error: MyKeyError) -> tuple[str, str]:
    """(what the clerk reads first, the detail)."""
    heading = (
        page.t(f"counter.error.{error.code}")
        if error.code in CLERK_ERRORS
        else page.t("counter.error.other")
    )
    return heading, error_text(page, error)


def _render(
    page: Page,
    clerk: StaffMember,
    template: str,
    *,
    status: int = 200,
    no_store: bool = True,
    problem: tuple[str, str] | None = None,
    notice: str | None = None,
    **values: Any,
) -> Response:
    place = _place(page, clerk)
    return page.render(
        template,
        status=status,
        no_store=no_store,
        place=place,
        clerk=clerk,
        card_options=card_options(page),
        card_field=CARD_FIELD,
        binding_field=BINDING_FIELD,
        problem=problem,
        notice=notice,
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
        no_store=False,
        problem=problem,
        notice=notice,
        payments=today,
        key=new_key(),
    )


def _to(page: Page, path: str, *, notice: str | None = None) -> Response:
    """See other: a GET page after a form (with a notice to show there once)."""
    if notice is not None:
        page.keep(FLASH, notice)
    return page.redirect(path)


def _flash(page: Page) -> str | None:
    notice = page.take(FLASH)
    return notice if isinstance(notice, str) else None


@router.get("")
def home(page: PageDep, clerk: Clerk, signed_in: int = 0) -> Response:
    """The counter, ready for the next customer: nothing of the one before is kept."""
    page.forget(CUSTOMER, CONFIRM, RESULT)
    notice = page.t("login.signed_in") if signed_in else _flash(page)
    return _home(page, clerk, notice=notice)


# --- tap: the points accepted here -----------------------------------------------------------


@router.post("/tap")
def tapped(page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    """The card is tapped: this resident's points accepted here, and whose they are."""
    place = _place(page, clerk)
    if not place.is_shop:
        return lookup(page, clerk, fields)
    try:
        card = present(page, fields.get(CARD_FIELD), actor=clerk.actor)
        found = spending.balances_here(
            page.uow, shop_id=place.id, card=card, actor=clerk.actor, binder=_binder(page)
        )
    except MyKeyError as error:
        return _home(page, clerk, status=422, problem=_problem(page, error))
    assert found.binding is not None
    page.forget(CONFIRM, RESULT)
    page.keep(
        CUSTOMER,
        {
            "holder": found.holder,
            "binding": found.binding.token,
            "balances": [
                {
                    "municipality": b.municipality,
                    "point_name": b.point_name,
                    "balance": b.balance,
                    "earliest_expiry": b.earliest_expiry.isoformat() if b.earliest_expiry else "",
                    "earliest_expiry_points": b.earliest_expiry_points,
                }
                for b in found.balances
            ],
        },
    )
    return page.redirect("/counter/balances")


def _customer(page: Page) -> dict[str, Any] | None:
    kept = page.recall(CUSTOMER)
    return kept if isinstance(kept, dict) else None


def _gone(page: Page) -> Response:
    """The customer's data is no longer kept (two minutes, or the next customer): start over."""
    return _to(page, "/counter", notice=page.t("counter.gone"))


@router.get("/balances")
def balances(page: PageDep, clerk: Clerk) -> Response:
    """The tapped customer's points (kept server-side for a short while after the tap)."""
    customer = _customer(page)
    if customer is None or "balances" not in customer:
        return _gone(page)
    found = customer["balances"]
    return _render(
        page,
        clerk,
        "counter/balances.html",
        holder=customer["holder"],
        binding=customer["binding"],
        balances=found,
        usable=[b for b in found if b["balance"] > 0],
    )


def _confirm(page: Page, clerk: StaffMember, fields: dict[str, str], *, action: str) -> Response:
    place = _place(page, clerk)
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
    token = fields.get(BINDING_FIELD, "")
    try:
        bound = _binder(page).read(token, place=place.id)
    except MyKeyError as error:
        return _home(page, clerk, status=422, problem=_problem(page, error))
    page.keep(
        CONFIRM,
        {
            "action": action,
            "municipality": municipality,
            "points": points,
            "denomination": denomination,
            "key": new_key(),
            "binding": token,
            "holder": bound.holder,
        },
    )
    return page.redirect("/counter/confirm")


@router.post("/payments/confirm")
def confirm_payment(page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    return _confirm(page, clerk, fields, action="pay")


@router.post("/vouchers/confirm")
def confirm_vouchers(page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    chosen = {
        "municipality": fields.get("voucher-municipality", ""),
        "points": fields.get("voucher-points", ""),
        "denomination": fields.get("denomination", ""),
        BINDING_FIELD: fields.get(BINDING_FIELD, ""),
    }
    return _confirm(page, clerk, chosen, action="vouchers")


def _confirmation(
    page: Page,
    clerk: StaffMember,
    confirm: dict[str, Any],
    *,
    status: int = 200,
    problem: tuple[str, str] | None = None,
) -> Response:
    return _render(page, clerk, "counter/confirm.html", status=status, problem=problem, **confirm)


@router.get("/confirm")
def confirmation(page: PageDep, clerk: Clerk) -> Response:
    """The confirmation: what will be charged, to whom (masked); the card is tapped again."""
    confirm = page.recall(CONFIRM)
    if not isinstance(confirm, dict):
        return _gone(page)
    return _confirmation(page, clerk, confirm)


def _again(page: Page, path: str) -> Response:
    """To the page a form was sent from, in the language asked for (a language switch)."""
    lang = page.request.query_params.get("lang")
    return page.redirect(path + (f"?lang={lang}" if lang in ("ja", "en") else ""))


@router.get("/payments")
@router.get("/vouchers")
def back_to_the_confirmation(page: PageDep, clerk: Clerk) -> Response:
    """A reload or a language switch of a refused confirmation: the confirmation again."""
    return _again(page, "/counter/confirm")


@router.get("/vouchers/redemptions")
def back_to_the_counter(page: PageDep, clerk: Clerk) -> Response:
    """A reload or a language switch of a refused redemption: the counter's home page (not the
    confirmation that `/counter/vouchers` leads to)."""
    return _again(page, "/counter")


@router.get("/payments/confirm")
@router.get("/vouchers/confirm")
def back_to_the_balances(page: PageDep, clerk: Clerk) -> Response:
    """A reload or a language switch of a refused amount: the customer's points again."""
    return _again(page, "/counter/balances")


def _refused_at_confirmation(
    page: Page, clerk: StaffMember, fields: dict[str, str], error: MyKeyError, action: str
) -> Response:
    """A refusal at the confirmation. Another card tapped (or none), or a card that cannot be
    used (an old card replaced by a renewed one, a suspended card …), is told on the
    confirmation itself, so that the right card can be tapped; the rest on the home page."""
    about_the_card = isinstance(error, CardProofError)
    if error.code not in ("wrong_card", "card_not_read") and not about_the_card:
        return _home(page, clerk, status=422, problem=_problem(page, error))
    kept = page.recall(CONFIRM)
    confirm = {
        "action": action,
        "municipality": fields.get("municipality", ""),
        "points": whole_number(fields.get("points")) or 0,
        "denomination": whole_number(fields.get("denomination") or ""),
        "key": fields.get("key", ""),
        "binding": fields.get(BINDING_FIELD, ""),
        "holder": error.details.get("expected_holder")
        or (kept.get("holder") if isinstance(kept, dict) else ""),
    }
    return _confirmation(page, clerk, confirm, status=422, problem=_problem(page, error))


def _expected(page: Page, fields: dict[str, str]) -> ExpectedHolder:
    return ExpectedHolder(fields.get(BINDING_FIELD, ""), _binder(page))


@router.post("/payments")
def pay(page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    """Confirmed: tap again, pay (only the customer whose balances were shown), and show it."""
    place = _place(page, clerk)
    try:
        card = present(page, fields.get(CARD_FIELD), actor=clerk.actor)
        done = spending.pay(
            page.uow,
            shop_id=place.id,
            card=card,
            municipality=fields.get("municipality", ""),
            points=whole_number(fields.get("points")) or 0,
            actor=clerk.actor,
            key=fields.get("key", ""),
            expected_holder=_expected(page, fields),
        )
    except MyKeyError as error:
        return _refused_at_confirmation(page, clerk, fields, error, "pay")
    if not done.replayed:
        PAYMENTS.inc()
    holder = _holder_of(page, fields)
    page.forget(CUSTOMER, CONFIRM)
    page.keep(RESULT, {"id": str(done.transfer_id), "rest": done.balance, "holder": holder})
    return page.redirect(f"/counter/payments/{done.transfer_id}")


def _holder_of(page: Page, fields: dict[str, str]) -> str:
    """The masked holder of a confirmed form (its binding was just checked by the use case)."""
    place = page.staff.shop_id if page.staff else None
    try:
        return _binder(page).read(fields.get(BINDING_FIELD, ""), place=place or "").holder
    except MyKeyError:  # pragma: no cover -- the operation checked this binding
        return ""


def _result(page: Page, transfer_id: str) -> dict[str, Any] | None:
    """The rest and whose it was, right after the operation `transfer_id` (else None)."""
    kept = page.recall(RESULT)
    return kept if isinstance(kept, dict) and kept.get("id") == transfer_id else None


@router.get("/payments/{payment_id}")
def payment(payment_id: str, page: PageDep, clerk: Clerk) -> Response:
    """A payment of this shop; right after it, also the customer's rest (kept briefly)."""
    place = _place(page, clerk)
    try:
        found = spending.payment_at(page.uow, shop_id=place.id, payment_id=payment_id)
    except MyKeyError:
        raise PageProblem(404, "error.not_found.title", "error.not_found.body") from None
    same_day = tokyo_date(found.created_at) == tokyo_date(page.uow.now())
    return _render(
        page,
        clerk,
        "counter/paid.html",
        notice=_flash(page),
        payment=found,
        result=_result(page, str(found.transfer_id)),
        cancellable=same_day and not found.cancelled and not found.refunded,
    )


@router.post("/vouchers")
def issue(page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    """Confirmed: tap again, issue the vouchers (only to the customer whose balances were
    shown), and offer them for printing."""
    place = _place(page, clerk)
    denomination = whole_number(fields.get("denomination")) if fields.get("denomination") else None
    try:
        card = present(page, fields.get(CARD_FIELD), actor=clerk.actor)
        done = vouchers.issue(
            page.uow,
            shop_id=place.id,
            card=card,
            municipality=fields.get("municipality", ""),
            points=whole_number(fields.get("points")) or 0,
            actor=clerk.actor,
            key=fields.get("key", ""),
            denomination=denomination,
            expected_holder=_expected(page, fields),
        )
    except MyKeyError as error:
        return _refused_at_confirmation(page, clerk, fields, error, "vouchers")
    holder = _holder_of(page, fields)
    tid = str(done.receipt.transfer_id)
    page.forget(CUSTOMER, CONFIRM)
    page.keep(RESULT, {"id": tid, "rest": done.balance, "holder": holder})
    return page.redirect(f"/counter/vouchers/issues/{tid}")


@router.get("/vouchers/issues/{issue_transfer_id}")
def issued(issue_transfer_id: str, page: PageDep, clerk: Clerk) -> Response:
    """Vouchers this shop issued (to print); right after, also the customer's rest."""
    place = _place(page, clerk)
    try:
        found = vouchers.issue_at(page.uow, shop_id=place.id, transfer_id=issue_transfer_id)
    except MyKeyError:
        raise PageProblem(404, "error.not_found.title", "error.not_found.body") from None
    tid = str(UUID(issue_transfer_id))
    return _render(
        page,
        clerk,
        "counter/issued.html",
        issued=found,
        points=sum(v.face_value for v in found),
        transfer_id=tid,
        result=_result(page, tid),
    )


@router.get("/vouchers/batches/{issue_transfer_id}.pdf")
def print_vouchers(issue_transfer_id: str, page: PageDep, clerk: Clerk) -> Response:
    """The printable vouchers of one issue at this shop (counted; reprints are marked)."""
    place = _place(page, clerk)
    try:
        UUID(issue_transfer_id)
        content = voucher_print.print_batch(
            page.uow,
            issue_transfer_id,
            viewer=voucher_print.Viewer(shop_id=place.id, counting=not is_head(page.request)),
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
    return page.redirect(f"/counter/redemptions/{done.transfer_id}")


@router.get("/redemptions/{transfer_id}")
def redeemed(transfer_id: str, page: PageDep, clerk: Clerk) -> Response:
    """A voucher this shop took."""
    place = _place(page, clerk)
    try:
        done = vouchers.redemption_at(page.uow, shop_id=place.id, transfer_id=transfer_id)
    except MyKeyError:
        raise PageProblem(404, "error.not_found.title", "error.not_found.body") from None
    return _render(page, clerk, "counter/redeemed.html", no_store=False, redemption=done)


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
    page.forget(RESULT)  # the rest shown with the payment is no longer the rest
    notice = page.t("counter.cancelled", points=f"{done.points:,}")
    return _to(page, f"/counter/payments/{done.payment_id}", notice=notice)


@router.post("/lookups")
def lookup(page: PageDep, clerk: Clerk, fields: CheckedForm) -> Response:
    """A library's counter: the library's user number of the tapped card's holder."""
    place = _place(page, clerk)
    try:
        card = present(page, fields.get(CARD_FIELD), actor=clerk.actor)
        found = links.lookup(
            page.uow, provider_id=place.id, card=card, actor=clerk.actor, purpose="counter"
        )
    except MyKeyError as error:
        return _home(page, clerk, status=422, problem=_problem(page, error))
    page.keep(CUSTOMER, {"user_number": found.user_number, "holder": found.holder})
    return page.redirect("/counter/user-number")


@router.get("/user-number")
def user_number(page: PageDep, clerk: Clerk) -> Response:
    """The looked-up user number and whose it is (kept server-side for a short while)."""
    customer = _customer(page)
    if customer is None or "user_number" not in customer:
        return _gone(page)
    return _render(
        page,
        clerk,
        "counter/user_number.html",
        user_number=customer["user_number"],
        holder=customer["holder"],
    )
