"""My Page (residents): balances with what expires when, history with receipts, coupons,
reserved points, service IDs and provider links, the usage history of the MyKey ID, and
suspending a lost card. Sign-in with a card (the demo's simulator) is here too; sign-in with
MyKey ID and password is in `auth.py`.

Every handler calls the same use cases as the API (`/api/v1/me/...`); a `MyKeyError` is shown
in a banner in the resident's language and changes nothing.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import Response

from mykey.config import Settings
from mykey.db import TOKYO, tokyo_date
from mykey.errors import MyKeyError
from mykey.history.receipts import transfer_receipt
from mykey.identity import links, residents, usage
from mykey.identity.proofs import with_card
from mykey.identity.staff import attach_resident
from mykey.points import balances, coupons, reserved
from mykey.points.expiry import expiring_soon
from mykey.points.program_setup import list_programs
from mykey.web.api.numbers import MAX_ID
from mykey.web.pages.base import (
    SESSION_COOKIE,
    CheckedForm,
    CurrentResident,
    Page,
    PageDep,
    PageProblem,
    safe_next,
)
from mykey.web.pages.cardtap import CARD_FIELD, card_options, present, simulator_cards
from mykey.web.replicas import ReadUow

router = APIRouter(prefix="/mypage", include_in_schema=False)

RESERVED = "reserved"


def error_text(page: Page, error: MyKeyError) -> str:
    """A use case's refusal in the visitor's language."""
    return error.message if page.lang == "en" else error.message_ja


def new_key() -> str:
    """An idempotency key for one form: a double submit has effect once."""
    return secrets.token_hex(16)


def whole_number(value: str | None) -> int | None:
    """A whole number typed into a form (full-width digits too), or None."""
    if value is None:
        return None
    text = value.strip().translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    text = text.replace(",", "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else None


def cursor(value: str | None) -> int | None:
    """The `?before=` of a "more" link: a position the page gave, or None (the first page) for
    anything else, so an edited address shows the newest entries instead of an error."""
    if value and value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID:
        return int(value)
    return None


TRANSFER_KINDS = (
    "grant",
    "convert",
    "premium",
    "assign",
    "spend",
    "cancel",
    "refund",
    "expire",
    "correct",
    "reverse",
    "voucher_issue",
    "voucher_redeem",
    "voucher_return",
    "online_authorize",
    "online_refund",
    "accrual_paid",
)
FUNDINGS = ("budget", "partner", "premium", "special_event")


def helpers(page: Page) -> dict[str, Any]:
    """Formatting for the templates: Tokyo times, kinds of transfer, funding sources."""

    def when(moment: datetime) -> str:
        return moment.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M")

    def kind(value: str) -> str:
        return page.t(f"transfer.{value}") if value in TRANSFER_KINDS else value

    def funding(value: str) -> str:
        return page.t(f"funding.{value}") if value in FUNDINGS else value

    return {"when": when, "kind": kind, "funding": funding}


@dataclass(frozen=True)
class Expiry:
    expires_on: date
    points: int


def _programs(page: Page) -> list[tuple[str, str]]:
    return [(p.code, f"{p.point_name}（{p.municipality}）") for p in list_programs(page.uow)]


def _home(
    page: Page,
    mykey_id: str,
    *,
    status: int = 200,
    failure: str | None = None,
    notice: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    held = balances.points_of(page.uow, mykey_id)
    today = tokyo_date(page.uow.now())
    holdings = [
        {
            "holding": h,
            "soon": [
                Expiry(e.expires_on, e.points)
                for e in expiring_soon(((lot.expires_on, lot.remaining) for lot in h.lots), today)
            ],
        }
        for h in held.holdings
    ]
    reserve = reserved.reserved_of(page.uow, mykey_id)
    return page.render(
        "mypage/home.html",
        status=status,
        mykey_id=mykey_id,
        holdings=holdings,
        reserved=reserve,
        programs=_programs(page),
        failure=failure,
        notice=notice,
        values=values or {},
        key=new_key(),
        **helpers(page),
    )


NOTICE = "mypage.notice"  # shown once on My Page after a form (never in the URL)


@router.get("")
def home(page: PageDep, mykey_id: CurrentResident, signed_in: int = 0) -> Response:
    done = page.take(NOTICE)
    notice = page.t("login.signed_in") if signed_in else None
    if isinstance(done, dict) and done.get("key") in ("mypage.coupon.done", "mypage.reserved.done"):
        notice = page.t(str(done["key"]), points=f"{int(done.get('points', 0)):,}")
    return _home(page, mykey_id, notice=notice)


@router.post("/reserved")
def assign(page: PageDep, mykey_id: CurrentResident, fields: CheckedForm) -> Response:
    """Assign reserved points (all, or a number) to a municipality of the resident's choice."""
    text = fields.get("points", "").strip()
    points = whole_number(text) if text else None
    if text and not points:
        return _home(
            page,
            mykey_id,
            status=422,
            failure=page.t("mypage.points.invalid"),
            values=fields,
        )
    try:
        done = reserved.assign_reserved(
            page.uow,
            mykey_id=mykey_id,
            municipality=fields.get("municipality", ""),
            points=points,
            actor=f"resident:{mykey_id}",
            key=fields.get("key", ""),
        )
    except MyKeyError as error:
        return _home(page, mykey_id, status=422, failure=error_text(page, error), values=fields)
    page.keep(NOTICE, {"key": "mypage.reserved.done", "points": done.points + done.premium})
    return page.redirect("/mypage")


# --- coupons ---------------------------------------------------------------------------------


def _coupon_form(
    page: Page,
    *,
    code: str = "",
    municipality: str = "",
    status: int = 200,
    failure: str | None = None,
    field_errors: dict[str, str] | None = None,
) -> Response:
    field_errors = field_errors or {}
    options = [("", page.t("mypage.coupon.choose"))]
    options += _programs(page)
    options.append((RESERVED, page.t("mypage.coupon.reserved")))
    return page.render(
        "mypage/coupons.html",
        status=status,
        code=code,
        municipality=municipality,
        options=options,
        failure=failure,
        field_errors=field_errors,
        errors=list(field_errors.items()),
        key=new_key(),
    )


@router.get("/coupons")
def coupon_form(page: PageDep, mykey_id: CurrentResident, code: str = "") -> Response:
    """The coupon URL (`/mypage/coupons?code=…`) opens this screen with the code filled in."""
    return _coupon_form(page, code=code[:40])


@router.post("/coupons")
def redeem_coupon(page: PageDep, mykey_id: CurrentResident, fields: CheckedForm) -> Response:
    code = fields.get("code", "").strip()
    choice = fields.get("municipality", "")
    errors = {}
    if not code:
        errors["code"] = page.t("mypage.coupon.code.missing")
    if not choice:
        errors["municipality"] = page.t("mypage.coupon.municipality.missing")
    if errors:
        return _coupon_form(page, code=code, municipality=choice, status=422, field_errors=errors)
    try:
        receipt = coupons.redeem(
            page.uow,
            code=code,
            mykey_id=mykey_id,
            municipality=None if choice == RESERVED else choice,
            actor=f"resident:{mykey_id}",
            key=fields.get("key", ""),
        )
    except MyKeyError as error:
        return _coupon_form(
            page, code=code, municipality=choice, status=422, failure=error_text(page, error)
        )
    page.keep(NOTICE, {"key": "mypage.coupon.done", "points": receipt.points + receipt.premium})
    return page.redirect("/mypage")


# --- history and receipts --------------------------------------------------------------------


@router.get("/history")
def history(
    page: PageDep, reads: ReadUow, mykey_id: CurrentResident, before: str | None = None
) -> Response:
    # from the read replica while it keeps up; a resident who has just acted in My Page reads
    # the primary (mykey.web.replicas)
    found = balances.history_of(reads, mykey_id, limit=50, before=cursor(before))
    names = dict(_programs(page))
    return page.render(
        "mypage/history.html",
        entries=found.entries,
        next_before=found.next_before,
        names=names,
        **helpers(page),
    )


@router.get("/transfers/{transfer_id}/proof")
def proof(transfer_id: str, page: PageDep, mykey_id: CurrentResident) -> Response:
    """The receipt of one of my transfers (as `GET /api/v1/me/transfers/{id}/proof`), as a
    JSON file to keep and check offline (`python -m mykey.history.verify`)."""
    try:
        UUID(transfer_id)
        body: Any = transfer_receipt(
            page.uow,
            page.request.app.state.history_log,
            mykey_id=mykey_id,
            transfer_id=transfer_id,
        )
    except (MyKeyError, ValueError):
        raise PageProblem(404, "error.not_found.title", "error.not_found.body") from None
    return Response(
        json.dumps(body, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="receipt-{UUID(transfer_id)}.json"',
            "Cache-Control": "no-store",
        },
    )


# --- service IDs and provider links ----------------------------------------------------------


def _links(
    page: Page,
    mykey_id: str,
    *,
    status: int = 200,
    failure: str | None = None,
    notice: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    return page.render(
        "mypage/links.html",
        status=status,
        links=links.links_of(page.uow, mykey_id),
        service_ids=links.service_ids_of(page.uow, mykey_id),
        failure=failure,
        notice=notice,
        values=values or {},
    )


@router.get("/links")
def links_page(page: PageDep, mykey_id: CurrentResident, done: str = "") -> Response:
    notice = (
        page.t(f"mypage.links.done.{done}") if done in ("added", "removed", "service") else None
    )
    return _links(page, mykey_id, notice=notice)


@router.post("/links")
def add_link(page: PageDep, mykey_id: CurrentResident, fields: CheckedForm) -> Response:
    try:
        links.link_by_resident(
            page.uow,
            mykey_id=mykey_id,
            provider_id=fields.get("provider_id", "").strip(),
            user_number=fields.get("user_number", "").strip(),
        )
    except MyKeyError as error:
        return _links(page, mykey_id, status=422, failure=error_text(page, error), values=fields)
    return page.redirect("/mypage/links?done=added")


@router.post("/links/{provider_id}/remove")
def remove_link(
    provider_id: str, page: PageDep, mykey_id: CurrentResident, fields: CheckedForm
) -> Response:
    try:
        links.unlink(
            page.uow, mykey_id=mykey_id, provider_id=provider_id, actor=f"resident:{mykey_id}"
        )
    except MyKeyError as error:
        return _links(page, mykey_id, status=422, failure=error_text(page, error))
    return page.redirect("/mypage/links?done=removed")


@router.post("/service-ids")
def add_service_id(page: PageDep, mykey_id: CurrentResident, fields: CheckedForm) -> Response:
    try:
        links.register_service_id(
            page.uow,
            mykey_id=mykey_id,
            service=fields.get("service", "").strip(),
            external_id=fields.get("external_id", "").strip(),
        )
    except MyKeyError as error:
        return _links(page, mykey_id, status=422, failure=error_text(page, error), values=fields)
    return page.redirect("/mypage/links?done=service")


# --- usage history and cards -----------------------------------------------------------------

USAGE_ACTIONS = (
    "create",
    "login",
    "link",
    "unlink",
    "lookup",
    "lookup_not_linked",
    "service_id",
    "card_linked",
    "card_replaced",
    "card_suspended",
    "failed_proof",
    "balances",
    "pay",
    "voucher_issue",
    "gift_exchange",
    "conversion",
)


def _provider_names(page: Page, ids: set[str]) -> dict[str, str]:
    """Where a use happened, by name: shops and other providers."""
    names = {}
    for provider_id in ids:
        try:
            names[provider_id] = links.get_provider(page.uow, provider_id).name
        except MyKeyError:
            names[provider_id] = provider_id
    return names


@router.get("/usage")
def usage_page(page: PageDep, mykey_id: CurrentResident, before: str | None = None) -> Response:
    entries = usage.history(page.uow, mykey_id=mykey_id, limit=50, before=cursor(before))
    return page.render(
        "mypage/usage.html",
        entries=entries,
        places=_provider_names(page, {e.provider_id for e in entries if e.provider_id}),
        known=USAGE_ACTIONS,
        next_before=entries[-1].id if len(entries) == 50 else None,
        **helpers(page),
    )


def _cards(page: Page, mykey_id: str, **values: Any) -> Response:
    settings: Settings = page.request.app.state.settings
    cards = residents.cards_of(page.uow, mykey_id, grace=settings.replaced_card_grace())
    return page.render(
        "mypage/cards.html", cards=cards, now=page.uow.now(), **helpers(page), **values
    )


@router.get("/cards")
def cards_page(page: PageDep, mykey_id: CurrentResident, suspended: int = 0) -> Response:
    return _cards(
        page, mykey_id, notice=page.t("mypage.cards.suspended") if suspended else None, failure=None
    )


def _own_card(page: Page, mykey_id: str, card_key: str) -> residents.CardView:
    for card in residents.cards_of(page.uow, mykey_id):
        if card.card_key == card_key:
            return card
    raise PageProblem(404, "error.not_found.title", "error.not_found.body")


@router.get("/cards/{card_key}/suspend")
def suspend_confirm(card_key: str, page: PageDep, mykey_id: CurrentResident) -> Response:
    """The confirmation step: suspending cannot be undone from My Page."""
    return page.render("mypage/suspend.html", card=_own_card(page, mykey_id, card_key))


@router.post("/cards/{card_key}/suspend")
def suspend(
    card_key: str, page: PageDep, mykey_id: CurrentResident, fields: CheckedForm
) -> Response:
    _own_card(page, mykey_id, card_key)
    if fields.get("confirm") != "yes":
        return page.redirect("/mypage/cards")
    try:
        residents.suspend_card(
            page.uow, mykey_id=mykey_id, card_key=card_key, actor=f"resident:{mykey_id}"
        )
    except MyKeyError as error:
        return _cards(page, mykey_id, notice=None, failure=error_text(page, error))
    return page.redirect("/mypage/cards?suspended=1")


# --- sign-in with a card ---------------------------------------------------------------------


def _card_login(
    page: Page, *, next_path: str, failure: str | None = None, status: int = 200
) -> Response:
    return page.render(
        "mypage/card_login.html",
        status=status,
        next=next_path,
        cards=simulator_cards(page),
        card_options=card_options(page),
        failure=failure,
    )


@router.get("/login/card")
def card_login_form(page: PageDep, next: str | None = None) -> Response:
    return _card_login(page, next_path=safe_next(next, "/mypage"))


@router.post("/login/card")
def card_login(page: PageDep, fields: CheckedForm) -> Response:
    next_path = safe_next(fields.get("next"), "/mypage")
    client = page.request.client.host if page.request.client else "unknown"
    try:
        card = present(page, fields.get(CARD_FIELD), actor=f"client:{client}")
        session = with_card(page.uow, card, lambda c: residents.login_with_card(page.uow, card=c))
        token = attach_resident(
            page.uow,
            resident_token=session.token,
            old_token=page.request.cookies.get(SESSION_COOKIE),
        )
    except MyKeyError as error:
        return _card_login(page, next_path=next_path, failure=error_text(page, error), status=422)
    page.set_session_cookie(token)
    return page.redirect(next_path + ("&" if "?" in next_path else "?") + "signed_in=1")
