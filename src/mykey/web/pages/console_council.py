"""The council operators' console (`/console/council`): municipalities (search, import a
registry file), partners and their agreements, API keys of every role (created and shown
once, revoked), and closing a month with its check.

Only operator accounts are admitted; the use cases are the API's and the CLI's
(municipalities.registry, points.partners, identity.keys, points.partner_keys,
settlement.statements)."""

from __future__ import annotations

import urllib.parse
from dataclasses import asdict
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from mykey.db import tokyo_date
from mykey.errors import MyKeyError
from mykey.identity.keys import Role, create_key, list_keys, revoke_key
from mykey.identity.staff import StaffMember, StaffRole
from mykey.municipalities import registry
from mykey.points.partner_keys import issue_partner_key
from mykey.points.partners import add_agreement, list_partners, set_partner
from mykey.settlement import statements
from mykey.web.pages.base import CheckedForm, Page, PageDep, staff_page
from mykey.web.pages.console_common import Form, checked_upload, message_of

router = APIRouter(prefix="/console/council", include_in_schema=False)

Operator = Annotated[StaffMember, Depends(staff_page(StaffRole.OPERATOR))]
METHODS = ("id_linkage", "coupon_paper", "coupon_email", "coupon_url")
KEY_ROLES = tuple(r.value for r in Role)


@router.get("")
def home(page: PageDep, staff: Operator) -> Response:
    return page.render("console/council_home.html")


# --- municipalities --------------------------------------------------------------------------


IMPORTED, ISSUED, CLOSED = "council.imported", "council.issued", "council.closed"


@router.get("/municipalities")
def municipalities(page: PageDep, staff: Operator, q: str = "", prefecture: str = "") -> Response:
    done = page.take(IMPORTED)
    report = registry.ImportReport(**{**done, "errors": ()}) if isinstance(done, dict) else None
    return _municipalities(page, q=q, prefecture=prefecture, report=report)


def _municipalities(
    page: Page,
    *,
    q: str = "",
    prefecture: str = "",
    report: registry.ImportReport | None = None,
    upload_error: str | None = None,
) -> Response:
    error = None
    total, found = 0, list[registry.MunicipalityRecord]()
    try:
        total, found = registry.search(
            page.uow, prefecture=prefecture or None, query=q or None, limit=100
        )
    except MyKeyError as refused:
        error = message_of(page, refused)
    bad = bool(error or upload_error or (report and report.errors))
    return page.render(
        "console/council_municipalities.html",
        status=422 if bad else 200,
        q=q,
        prefecture=prefecture,
        error=error,
        total=total,
        found=found,
        report=report,
        upload_error=upload_error,
    )


@router.post("/municipalities/import")
async def municipalities_import(page: PageDep, staff: Operator, request: Request) -> Response:
    upload = await checked_upload(request, page)
    data = upload.files.get("file", b"")
    if not data:
        empty = "file" in upload.files
        message = f"console.grants.file_{'empty' if empty else 'missing'}"
        return _municipalities(page, upload_error=page.t(message))
    try:
        report = registry.import_csv(page.uow, data)
    except MyKeyError as refused:
        return _municipalities(page, upload_error=message_of(page, refused))
    if report.errors:  # nothing was imported: the rows to fix, with the form
        return _municipalities(page, report=report)
    page.keep(IMPORTED, {k: v for k, v in asdict(report).items() if k != "errors"})
    return page.redirect("/console/council/municipalities")


# --- partners and agreements -----------------------------------------------------------------

PARTNER_FIELDS = {
    "invalid_partner_id": "partner",
    "invalid_name": "name",
    "invalid_methods": "methods",
}


def _partners(
    page: Page,
    *,
    values: dict[str, Any] | None = None,
    form: Form | None = None,
    terms: dict[str, str] | None = None,
    terms_form: Form | None = None,
    issued: tuple[str, str, str] | None = None,
    saved: bool = False,
) -> Response:
    errors = form.errors if form else {}
    terms_errors = terms_form.errors if terms_form else {}
    tomorrow = tokyo_date(page.uow.now()).isoformat()
    return page.render(
        "console/council_partners.html",
        status=422 if (errors or terms_errors) else 200,
        partners=list_partners(page.uow),
        methods=[(m, page.t("console.method." + m)) for m in METHODS],
        values=values or {"partner": "", "name": "", "methods": []},
        errors=errors,
        terms=terms
        or {"partner": "", "effective_from": tomorrow}
        | dict.fromkeys(("rate_units", "rate_points", "minimum", "step", "daily_limit"), ""),
        terms_errors={f"terms_{k}": v for k, v in terms_errors.items()},
        issued=issued,
        saved=saved,
    )


@router.get("/partners")
def partners(page: PageDep, staff: Operator, saved: int = 0) -> Response:
    return _partners(page, saved=bool(saved))


@router.post("/partners")
async def partner_save(page: PageDep, staff: Operator, request: Request) -> Response:
    upload = await checked_upload(request, page)
    raw = (await request.body()).decode("utf-8", errors="replace")
    chosen = [v for k, v in urllib.parse.parse_qsl(raw) if k == "methods"]
    form = Form(page, upload.fields)
    partner, name = form.text("partner", required=True), form.text("name", required=True)
    values = {"partner": partner, "name": name, "methods": chosen}
    if form.ok:
        try:
            set_partner(page.uow, partner=partner, name=name, methods=chosen)
        except MyKeyError as error:
            form.fail(PARTNER_FIELDS.get(error.code, "partner"), error)
        else:
            return page.redirect("/console/council/partners?saved=1")
    return _partners(page, values=values, form=form)


@router.post("/partners/agreements")
def agreement_add(page: PageDep, staff: Operator, fields: CheckedForm) -> Response:
    form = Form(page, {k.removeprefix("terms_"): v for k, v in fields.items()})
    terms = {k: form.text(k) for k in ("partner", "effective_from", "rate_units")}
    terms |= {k: form.text(k) for k in ("rate_points", "minimum", "step", "daily_limit")}
    numbers = {
        k: form.integer(k, required=k != "daily_limit", minimum=1)
        for k in ("rate_units", "rate_points", "minimum", "step", "daily_limit")
    }
    try:
        start = date.fromisoformat(terms["effective_from"])
    except ValueError:
        form.errors["effective_from"] = page.t("console.field.date")
    if form.ok:
        try:
            add_agreement(
                page.uow,
                partner=terms["partner"],
                effective_from=start,
                rate_units=numbers["rate_units"] or 0,
                rate_points=numbers["rate_points"] or 0,
                minimum=numbers["minimum"] or 0,
                step=numbers["step"] or 0,
                daily_limit=numbers["daily_limit"],
                actor=staff.actor,
            )
        except MyKeyError as error:
            field = str(error.details.get("field", ""))
            if field not in numbers:
                field = "effective_from" if error.code == "invalid_effective_from" else "partner"
            form.fail(field, error)
        else:
            return page.redirect("/console/council/partners?saved=1")
    return _partners(page, terms=terms, terms_form=form)


# --- keys ------------------------------------------------------------------------------------


def _keys(
    page: Page,
    *,
    values: dict[str, str] | None = None,
    form: Form | None = None,
    issued: dict[str, str] | None = None,
    revoked: str | None = None,
) -> Response:
    errors = form.errors if form else {}
    response = page.render(
        "console/council_keys.html",
        status=422 if errors else 200,
        keys=list_keys(page.uow),
        roles=[(r, page.t("console.keyrole." + r)) for r in KEY_ROLES],
        values=values or {"role": "terminal", "label": "", "bound_to": ""},
        errors=errors,
        issued=issued,
        revoked=revoked,
    )
    if issued:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/keys")
def keys(page: PageDep, staff: Operator, revoked: str | None = None) -> Response:
    issued = page.take(ISSUED)  # a new key is shown once, right after it was made
    return _keys(page, revoked=revoked, issued=issued if isinstance(issued, dict) else None)


@router.post("/keys")
def key_create(page: PageDep, staff: Operator, fields: CheckedForm) -> Response:
    form = Form(page, fields)
    values = {
        "role": form.text("role", required=True),
        "label": form.text("label", required=True),
        "bound_to": form.text("bound_to"),
    }
    if form.ok:
        role, bound = values["role"], values["bound_to"] or None
        try:
            if role == Role.PARTNER.value:
                if bound is None:
                    form.errors["bound_to"] = page.t("console.keys.partner_needed")
                    return _keys(page, values=values, form=form)
                made = issue_partner_key(
                    page.uow,
                    partner=bound,
                    label=values["label"],
                    secret_key=page.request.app.state.settings.secret_key,
                )
                issued = {"key": made.api_key, "secret": made.signing_secret, "id": made.key_id}
            else:
                provider = bound if role in ("terminal", "provider_staff") else None
                town = bound if role == "municipality_staff" else None
                if bound is not None and provider is None and town is None:
                    form.errors["bound_to"] = page.t("console.keys.nothing_to_bind")
                    return _keys(page, values=values, form=form)
                secret, principal = create_key(
                    page.uow,
                    role=role,
                    label=values["label"],
                    provider_id=provider,
                    municipality=town,
                )
                issued = {"key": secret, "secret": "", "id": principal.key_id}
        except MyKeyError as error:
            field = "role" if error.code == "invalid_role" else "bound_to"
            form.fail(field, error)
        else:
            page.keep(ISSUED, issued)
            return page.redirect("/console/council/keys")
    return _keys(page, values=values, form=form)


@router.post("/keys/{key_id}/revoke")
def key_revoke(page: PageDep, staff: Operator, key_id: str, fields: CheckedForm) -> Response:
    try:
        revoke_key(page.uow, key_id)
    except MyKeyError:
        return page.redirect("/console/council/keys")
    return page.redirect(f"/console/council/keys?revoked={urllib.parse.quote(key_id)}")


# --- closing a month -------------------------------------------------------------------------


def _settle(
    page: Page,
    month: str,
    *,
    closed: statements.CloseReport | None = None,
    checked: statements.CheckResult | None = None,
    error: str | None = None,
) -> Response:
    found: list[statements.StatementView] = []
    if not error:
        try:
            found = statements.list_statements(page.uow, month=month)
        except MyKeyError as refused:
            error = message_of(page, refused)
    return page.render(
        "console/council_settle.html",
        status=422 if error else 200,
        month=month,
        closed=closed,
        checked=checked,
        error=error,
        statements=found,
    )


def _last_month(page: Page) -> str:
    first = tokyo_date(page.uow.now()).replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


@router.get("/settle")
def settle(page: PageDep, staff: Operator, month: str = "", check: int = 0) -> Response:
    """A month's statements; `check=1` also checks them again (a read: a GET may do it)."""
    month = month.strip() or _last_month(page)
    closed = page.take(CLOSED)
    report = statements.CloseReport(**closed) if isinstance(closed, dict) else None
    if check:
        try:
            checked = statements.check_month(page.uow, month=month)
        except MyKeyError as refused:
            return _settle(page, month, error=message_of(page, refused))
        return _settle(page, month, checked=checked, closed=report)
    return _settle(page, month, closed=report)


@router.post("/settle")
def settle_run(page: PageDep, staff: Operator, fields: CheckedForm) -> Response:
    month = fields.get("month", "").strip()
    to = "/console/council/settle?" + urllib.parse.urlencode({"month": month})
    if fields.get("action") == "check":
        return page.redirect(to + "&check=1")
    try:
        report = statements.close_month(page.uow, month=month, actor=staff.actor)
    except MyKeyError as refused:
        return _settle(page, month, error=message_of(page, refused))
    page.keep(CLOSED, asdict(report))
    return page.redirect(to)
