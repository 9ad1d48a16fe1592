"""The partner console (`/console/p/{partner}`): order coupon batches and download their
codes, see the conversions of a month and the month's settlement statements.

Only a partner staff account of that very partner is admitted; the use cases are the API's
(points.coupons, points.conversion, settlement.statements)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from mykey.db import tokyo_date
from mykey.errors import MyKeyError
from mykey.identity.staff import StaffMember, StaffRole
from mykey.points import coupons
from mykey.points.conversion import conversions_of
from mykey.settlement import statement_print, statements
from mykey.settlement.statements import PARTNER
from mykey.web.pages.base import CheckedForm, Page, PageDep, staff_page
from mykey.web.pages.console_common import Form, message_of, new_key, not_yours

router = APIRouter(prefix="/console/p/{partner}", include_in_schema=False)

PartnerStaff = Annotated[StaffMember, Depends(staff_page(StaffRole.PARTNER))]
DELIVERIES = ("paper", "email", "url")
ORDER_FIELDS = {
    "invalid_count": "count",
    "invalid_units": "units",
    "below_minimum": "units",
    "wrong_step": "units",
    "invalid_expiry": "expires_on",
    "invalid_delivery": "delivery",
    "method_not_agreed": "delivery",
}


def _own(staff: StaffMember, partner: str) -> str:
    if staff.partner_id != partner:
        raise not_yours()
    return partner


def _month(page: Page, month: str) -> str:
    if month.strip():
        return month.strip()
    first = tokyo_date(page.uow.now()).replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def _home(
    page: Page,
    partner: str,
    *,
    values: dict[str, str] | None = None,
    form: Form | None = None,
    month: str = "",
    status: int = 200,
) -> Response:
    month = _month(page, month)
    month_error = None
    found: list[statements.StatementView] = []
    converted = []
    try:
        converted = conversions_of(page.uow, partner=partner, month=month)
        found = statements.list_statements(
            page.uow, month=month, party_kind=PARTNER, party_id=partner
        )
    except MyKeyError as error:
        month_error = message_of(page, error)
    expires = tokyo_date(page.uow.now()) + timedelta(days=180)
    return page.render(
        "console/partner_home.html",
        status=422 if (month_error or (form and form.errors)) else status,
        partner=partner,
        batches=coupons.list_batches(page.uow, partner=partner),
        values=values
        or {"count": "", "units": "", "delivery": "paper", "expires_on": expires.isoformat()}
        | {"key": new_key()},
        errors=form.errors if form else {},
        deliveries=[(d, page.t("console.coupons.delivery." + d)) for d in DELIVERIES],
        month=month,
        month_error=month_error,
        conversions=converted,
        statements=found,
    )


@router.get("")
def home(page: PageDep, staff: PartnerStaff, partner: str, month: str = "") -> Response:
    return _home(page, _own(staff, partner), month=month)


@router.post("/batches")
def order(page: PageDep, staff: PartnerStaff, partner: str, fields: CheckedForm) -> Response:
    own = _own(staff, partner)
    form = Form(page, fields)
    values = {
        "count": form.text("count"),
        "units": form.text("units"),
        "delivery": form.text("delivery", required=True),
        "expires_on": form.text("expires_on", required=True),
        "key": fields.get("key") or new_key(),
    }
    count = form.integer("count", required=True, minimum=1)
    units = form.integer("units", required=True, minimum=1)
    try:
        expires_on = date.fromisoformat(values["expires_on"])
    except ValueError:
        form.errors["expires_on"] = page.t("console.field.date")
    if form.ok and count is not None and units is not None:
        try:
            ordered = coupons.order_batch(
                page.uow,
                partner=own,
                count=count,
                units=units,
                delivery=values["delivery"],
                expires_on=expires_on,
                actor=staff.actor,
                key=values["key"],
                secret_key=page.request.app.state.settings.secret_key,
            )
        except MyKeyError as error:
            form.fail(ORDER_FIELDS.get(error.code, "count"), error)
            values["key"] = new_key()  # answered: what is sent next is a new request
        else:
            return page.redirect(f"/console/p/{own}?ordered={ordered.batch.id}")
    return _home(page, own, values=values, form=form)


@router.get("/batches/{batch_id}.csv")
def batch_csv(page: PageDep, staff: PartnerStaff, partner: str, batch_id: str) -> Response:
    own = _own(staff, partner)
    try:
        batch, codes = coupons.batch_codes(
            page.uow,
            partner=own,
            batch_id=UUID(batch_id),
            secret_key=page.request.app.state.settings.secret_key,
        )
    except (ValueError, MyKeyError):
        raise not_yours() from None
    base = str(page.request.base_url).rstrip("/")
    return Response(
        "\ufeff" + coupons.csv_text(batch, codes, base_url=base),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="coupons-{batch.id}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _statement(page: Page, partner: str, statement_id: str) -> statements.StatementView:
    try:
        view = statements.get_statement(page.uow, statement_id)
    except MyKeyError:
        raise not_yours() from None
    if view.party_kind != PARTNER or view.party_id != partner:
        raise not_yours()
    return view


@router.get("/settlements/{statement_id}.csv")
def settlement_csv(page: PageDep, staff: PartnerStaff, partner: str, statement_id: str) -> Response:
    view = _statement(page, _own(staff, partner), statement_id)
    return Response(
        statements.statement_csv(view),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="settlement-{view.month}-{view.id}.csv"'
        },
    )


@router.get("/settlements/{statement_id}.pdf")
def settlement_pdf(page: PageDep, staff: PartnerStaff, partner: str, statement_id: str) -> Response:
    view = _statement(page, _own(staff, partner), statement_id)
    return Response(
        statement_print.render(view, statement_print.names_of(page.uow, view)),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="settlement-{view.month}-{view.id}.pdf"'
        },
    )
