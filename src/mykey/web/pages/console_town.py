"""The municipality staff console (`/console/m/{code}`): the program's settings, grants one by
one and in bulk (a CSV file becomes a grant job with a progress bar), shops and their
terminal keys, and the month's settlement statements with their downloads (the rankings and
their awards are in `console_rankings`).

Every route admits only a municipality staff account of that very municipality; the use cases
are the ones the API calls (points.program_setup, points.grants, points.bulk,
points.shops, identity.keys, settlement.statements, settlement.payouts)."""

from __future__ import annotations

import contextlib
import urllib.parse
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from mykey.db import tokyo_date
from mykey.errors import MyKeyError
from mykey.identity.keys import Role, create_key
from mykey.identity.staff import StaffMember, StaffRole
from mykey.municipalities.codes import parse_code
from mykey.points import bulk
from mykey.points.grants import grant_points
from mykey.points.picks import MAX_PICKS, Pick, picks_of, set_picks
from mykey.points.program_setup import Program, get_program, set_up_program
from mykey.points.programs import PLACE_KINDS
from mykey.points.shops import get_shop, list_shops, set_shop
from mykey.settlement import payouts, statement_print, statements
from mykey.web.pages.base import CheckedForm, Page, PageDep, staff_page
from mykey.web.pages.console_common import Form, checked_upload, message_of, new_key, not_yours

router = APIRouter(prefix="/console/m/{code}", include_in_schema=False)
ISSUED, GRANTED = "town.issued", "town.granted"  # shown once after a form (post/redirect/get)

TownStaff = Annotated[StaffMember, Depends(staff_page(StaffRole.MUNICIPALITY_STAFF))]


def _own(staff: StaffMember, code: str) -> str:
    """The municipality of the path, if it is the staff member's own (else a 403 page)."""
    try:
        own = parse_code(code)
    except MyKeyError:
        raise not_yours() from None
    if staff.municipality != own:
        raise not_yours()
    return own


def _program(page: Page, code: str) -> Program | None:
    try:
        return get_program(page.uow, code)
    except MyKeyError:
        return None


def _last_month(page: Page) -> str:
    first = tokyo_date(page.uow.now()).replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


@router.get("")
def home(page: PageDep, staff: TownStaff, code: str) -> Response:
    own = _own(staff, code)
    return page.render("console/town_home.html", code=own, program=_program(page, own), staff=staff)


# --- program settings ----------------------------------------------------------------------


def _program_form(
    page: Page, code: str, values: dict[str, Any], form: Form | None = None, *, saved: bool = False
) -> Response:
    errors = form.errors if form else {}
    return page.render(
        "console/town_program.html",
        status=422 if errors else 200,
        code=code,
        values=values,
        errors=errors,
        kinds=PLACE_KINDS,
        saved=saved,
    )


def _values_of(program: Program | None) -> dict[str, Any]:
    if program is None:
        return {"point_name": "", "terms": "", "validity": "", "usable_at": [], "budget": ""}
    months = program.validity.get("budget")
    return {
        "point_name": program.point_name,
        "terms": program.terms,
        "validity": "" if months is None else str(months),
        "usable_at": list(program.usable_at),
        "budget": "" if program.annual_budget is None else str(program.annual_budget),
    }


@router.get("/program")
def program_form(page: PageDep, staff: TownStaff, code: str, saved: int = 0) -> Response:
    own = _own(staff, code)
    return _program_form(page, own, _values_of(_program(page, own)), saved=bool(saved))


PROGRAM_FIELDS = {
    "invalid_point_name": "point_name",
    "invalid_validity": "validity",
    "invalid_places": "usable_at",
    "invalid_budget": "budget",
    "invalid_points": "budget",  # the annual budget out of range
}


@router.post("/program")
async def program_save(page: PageDep, staff: TownStaff, code: str, request: Request) -> Response:
    own = _own(staff, code)
    upload = await checked_upload(request, page)
    raw = await request.body()
    form = Form(page, upload.fields)
    usable = [v for k, v in _pairs(raw) if k == "usable_at"]
    values: dict[str, Any] = {
        "point_name": form.text("point_name", required=True),
        "terms": upload.fields.get("terms", ""),
        "validity": form.fields.get("validity", "").strip(),
        "usable_at": usable,
        "budget": form.fields.get("budget", "").strip(),
    }
    months = form.integer("validity", minimum=1)
    budget = form.integer("budget", minimum=1)
    if not usable:
        form.errors["usable_at"] = page.t("console.program.places_missing")
    if not form.ok:
        return _program_form(page, own, values, form)
    old = _program(page, own)
    validity = dict(old.validity) if old else {}
    validity["budget"] = months
    try:
        set_up_program(
            page.uow,
            municipality=own,
            point_name=str(values["point_name"]),
            terms=str(values["terms"]),
            validity=validity,
            usable_at=usable,
            premium_permille=old.premium_permille if old else 0,
            rules=old.rules if old else (),
            annual_budget=budget,
            premium_budget=old.premium_budget if old else None,
            accrual_default=old.accrual_default if old else "donation",
        )
    except MyKeyError as error:
        form.fail(PROGRAM_FIELDS.get(error.code, "point_name"), error)
        return _program_form(page, own, values, form)
    return page.redirect(f"/console/m/{own}/program?saved=1")


def _pairs(raw: bytes) -> list[tuple[str, str]]:
    """Every (name, value) of a url-encoded body, repeated names included (checkboxes)."""
    text = raw.decode("utf-8", errors="replace")
    return urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=200)


# --- grants ----------------------------------------------------------------------------------

GRANT_FIELDS = {
    "invalid_mykey_id": "mykey_id",
    "unknown_mykey_id": "mykey_id",
    "unknown_activity": "activity",
    "event_required": "event",
    "invalid_reason": "reason",
    "invalid_grant": "points",
}


def _grants(
    page: Page,
    code: str,
    *,
    one: dict[str, str] | None = None,
    one_form: Form | None = None,
    bulk_form: Form | None = None,
    bulk_values: dict[str, str] | None = None,
    granted: str | None = None,
    status: int = 200,
) -> Response:
    program = _program(page, code)
    rules = [(r.activity, f"{r.name}（{r.points}）") for r in program.rules] if program else []
    return page.render(
        "console/town_grants.html",
        status=status,
        code=code,
        program=program,
        activities=[("", page.t("console.grants.no_activity")), *rules],
        one=one or {"key": new_key()},
        one_errors=one_form.errors if one_form else {},
        bulk=bulk_values or {"key": new_key()},
        bulk_errors=bulk_form.errors if bulk_form else {},
        jobs=[(job, status_key(job)) for job in bulk.list_jobs(page.uow, code, limit=20)],
        granted=granted,
    )


@router.get("/grants")
def grants(page: PageDep, staff: TownStaff, code: str) -> Response:
    granted = page.take(GRANTED)  # "MYKEYID:points", kept out of the URL
    return _grants(page, _own(staff, code), granted=granted if isinstance(granted, str) else None)


@router.post("/grants/one")
def grant_one(page: PageDep, staff: TownStaff, code: str, fields: CheckedForm) -> Response:
    own = _own(staff, code)
    form = Form(page, fields)
    values = {
        "mykey_id": form.text("mykey_id", required=True).upper(),
        "activity": form.text("activity"),
        "points": form.text("points"),
        "reason": form.text("reason", required=True),
        "event": form.text("event"),
        "key": fields.get("key") or new_key(),
    }
    points = form.integer("points", minimum=1)
    if not values["activity"] and points is None and "points" not in form.errors:
        form.errors["points"] = page.t("console.grants.points_or_activity")
    if form.ok:
        try:
            receipt = grant_points(
                page.uow,
                municipality=own,
                mykey_id=values["mykey_id"],
                actor=staff.actor,
                key=values["key"],
                reason=values["reason"],
                activity=values["activity"] or None,
                points=None if values["activity"] else points,
                event=values["event"] or None,
            )
        except MyKeyError as error:
            form.fail(GRANT_FIELDS.get(error.code, "mykey_id"), error)
            values["key"] = new_key()  # answered: what is sent next is a new request
        else:
            page.keep(GRANTED, f"{receipt.mykey_id}:{receipt.points}")
            return page.redirect(f"/console/m/{own}/grants")
    return _grants(page, own, one=values, one_form=form, status=422)


@router.post("/grants/bulk")
async def grant_bulk(
    page: PageDep,
    staff: TownStaff,
    code: str,
    request: Request,
) -> Response:
    own = _own(staff, code)
    upload = await checked_upload(request, page)
    form = Form(page, upload.fields)
    # The bulk form's fields are named bulk_* so that their ids differ from the one-by-one
    # form's on the same page (a label's `for` finds its own field).
    values = {
        "activity": form.text("bulk_activity"),
        "points": form.text("bulk_points"),
        "reason": form.text("bulk_reason"),
        "event": form.text("bulk_event"),
        "key": upload.fields.get("key") or new_key(),
    }
    points = form.integer("bulk_points", minimum=1)
    data = upload.files.get("file", b"")
    if not data:
        empty = "file" in upload.files
        form.errors["file"] = page.t(f"console.grants.file_{'empty' if empty else 'missing'}")
    if form.ok:
        params = bulk.JobParams(
            activity=values["activity"] or None,
            points=points,
            reason=values["reason"] or None,
            event=values["event"] or None,
        )
        try:
            job = bulk.submit_job(
                page.uow,
                municipality=own,
                actor=staff.actor,
                key=values["key"],
                data=data,
                params=params,
            )
        except MyKeyError as error:
            form.fail("file", error)
            values["key"] = new_key()  # answered: what is sent next is a new request
        else:
            return page.redirect(f"/console/m/{own}/grants/jobs/{job.id}")
    return _grants(page, own, bulk_form=form, bulk_values=values, status=422)


def status_key(job: bulk.JobView) -> str:
    """The message key of a job's state. A job refused as a whole (the file or the job's
    choices, not its rows) says so, not "some rows were refused" over no rows."""
    if job.status == "refused" and job.error and not job.refused:
        return "console.job.status.rejected"
    return f"console.job.status.{job.status}"


def _job_state(page: Page, job: bulk.JobView) -> dict[str, Any]:
    running = job.status in ("queued", "running")
    progress = job.progress if running else None
    done, total = (progress.done, progress.total) if progress else (0, job.rows)
    if job.status == "done":
        done = total = max(job.rows, 1)
    # what a clerk reads beside the bar: waiting for a worker, or which step and how far
    if progress is not None and progress.phase in ("reading", "checking", "granting"):
        text = page.t(
            f"console.job.phase.{progress.phase}", done=f"{done:,}", total=f"{max(total, 1):,}"
        )
    elif running:
        text = page.t(f"console.job.phase.{job.status}")
    else:
        text = page.t(status_key(job))
    return {
        "text": text,
        "status": job.status,
        "finished": not running,
        # the bar shows work going on or done; a job that granted nothing has none to show
        "progress": running or job.status == "done",
        "phase": progress.phase if progress else None,
        "done": done,
        "total": max(total, 1),
        "granted": job.granted,
        "points": job.points,
        "refused": job.refused,
    }


@router.get("/grants/jobs/{job_id}")
def job_page(page: PageDep, staff: TownStaff, code: str, job_id: str) -> Response:
    own = _own(staff, code)
    job = _job(page, own, job_id)
    refused = bulk.refusals_of(page.uow, own, job.id, limit=200) if job.refused else []
    error = job.error or {}
    reason = error.get("message") if page.lang == "en" else error.get("message_ja")
    return page.render(
        "console/town_job.html",
        code=own,
        job=job,
        status_key=status_key(job),
        state=_job_state(page, job),
        refused=refused,
        reason=reason,
    )


def _job(page: Page, code: str, job_id: str) -> bulk.JobView:
    try:
        return bulk.get_job(page.uow, code, job_id)
    except MyKeyError:
        raise not_yours() from None


@router.get("/grants/jobs/{job_id}/state")
def job_state(page: PageDep, staff: TownStaff, code: str, job_id: str) -> JSONResponse:
    """The job's progress for the page's own small script (no API key needed: the session)."""
    own = _own(staff, code)
    return JSONResponse(_job_state(page, _job(page, own, job_id)))


@router.get("/grants/jobs/{job_id}/refused.csv")
def job_refusals(page: PageDep, staff: TownStaff, code: str, job_id: str) -> Response:
    own = _own(staff, code)
    job = _job(page, own, job_id)
    rows = bulk.refusals_of(page.uow, own, job.id, limit=100_000)
    return Response(
        bulk.refusals_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="refused-{job.id}.csv"'},
    )


# --- shops and terminals ---------------------------------------------------------------------

SHOP_FIELDS = {
    "invalid_name": "name",
    "invalid_place_kind": "kind",
    "kind_not_usable": "kind",
    "provider_elsewhere": "shop_id",
    "invalid_provider_id": "shop_id",
}


def _shops(
    page: Page,
    code: str,
    *,
    values: dict[str, str] | None = None,
    form: Form | None = None,
    issued: tuple[str, str] | None = None,
    status: int = 200,
) -> Response:
    program = _program(page, code)
    kinds = list(program.usable_at) if program else []
    return page.render(
        "console/town_shops.html",
        status=status,
        code=code,
        shops=[s for s in list_shops(page.uow) if code in (s.municipality, *s.accepts)],
        kinds=[(k, page.t("kind." + k)) for k in kinds],
        values=values or {"shop_id": "", "name": "", "kind": kinds[0] if kinds else ""},
        errors=form.errors if form else {},
        issued=issued,
    )


@router.get("/shops")
def shops_page(page: PageDep, staff: TownStaff, code: str) -> Response:
    issued = page.take(ISSUED)
    if isinstance(issued, list) and len(issued) == 2:
        response = _shops(page, _own(staff, code), issued=(str(issued[0]), str(issued[1])))
        response.headers["Cache-Control"] = "no-store"
        return response
    return _shops(page, _own(staff, code))


@router.post("/shops")
def shop_add(page: PageDep, staff: TownStaff, code: str, fields: CheckedForm) -> Response:
    own = _own(staff, code)
    form = Form(page, fields)
    values = {
        "shop_id": form.text("shop_id", required=True),
        "name": form.text("name", required=True),
        "kind": form.text("kind", required=True),
    }
    if form.ok:
        try:
            existing = get_shop(page.uow, values["shop_id"])
        except MyKeyError:
            existing = None
        if existing is not None and existing.municipality != own:
            form.errors["shop_id"] = page.t("console.shops.taken")
    if form.ok:
        try:
            set_shop(
                page.uow,
                shop_id=values["shop_id"],
                name=values["name"],
                municipality=own,
                kind=values["kind"],
                accepts=[own],
            )
        except MyKeyError as error:
            form.fail(SHOP_FIELDS.get(error.code, "shop_id"), error)
        else:
            return page.redirect(f"/console/m/{own}/shops")
    return _shops(page, own, values=values, form=form, status=422)


@router.post("/shops/{shop_id}/terminal-key")
def terminal_key(
    page: PageDep, staff: TownStaff, code: str, shop_id: str, fields: CheckedForm
) -> Response:
    """A new terminal key for one of the municipality's own shops, shown on this page once."""
    own = _own(staff, code)
    try:
        shop = get_shop(page.uow, shop_id)
    except MyKeyError:
        raise not_yours() from None
    if shop.municipality != own:
        raise not_yours()
    label = fields.get("label", "").strip() or f"terminal of {shop.id} by {staff.username}"
    secret, _principal = create_key(page.uow, role=Role.TERMINAL, label=label, provider_id=shop.id)
    page.keep(ISSUED, [shop.name, secret])  # shown once, by the page the form redirects to
    return page.redirect(f"/console/m/{own}/shops")


# --- settlement statements -------------------------------------------------------------------


@router.get("/settlements")
def settlements(page: PageDep, staff: TownStaff, code: str, month: str = "") -> Response:
    own = _own(staff, code)
    month = month.strip() or _last_month(page)
    error = None
    found: list[statements.StatementView] = []
    try:
        found = statements.list_statements(page.uow, month=month, municipality=own)
    except MyKeyError as refused:
        error = message_of(page, refused)
    return page.render(
        "console/town_settlements.html",
        status=422 if error else 200,
        code=own,
        month=month,
        error=error,
        zengin_error=None,
        statements=found,
        today=tokyo_date(page.uow.now()).isoformat(),
    )


def _statement(page: Page, code: str, statement_id: str) -> statements.StatementView:
    try:
        view = statements.get_statement(page.uow, statement_id)
    except MyKeyError:
        raise not_yours() from None
    if view.municipality != code:
        raise not_yours()
    return view


def _name_of(view: statements.StatementView, ext: str) -> str:
    return f"settlement-{view.month}-{view.municipality}-{view.party_kind}-{view.party_id}.{ext}"


@router.get("/settlements/{statement_id}.csv")
def settlement_csv(page: PageDep, staff: TownStaff, code: str, statement_id: str) -> Response:
    view = _statement(page, _own(staff, code), statement_id)
    return Response(
        statements.statement_csv(view),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_name_of(view, "csv")}"'},
    )


@router.get("/settlements/{statement_id}.pdf")
def settlement_pdf(page: PageDep, staff: TownStaff, code: str, statement_id: str) -> Response:
    view = _statement(page, _own(staff, code), statement_id)
    return Response(
        statement_print.render(view, statement_print.names_of(page.uow, view)),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{_name_of(view, "pdf")}"'},
    )


@router.get("/zengin")
def zengin(
    page: PageDep, staff: TownStaff, code: str, month: str = "", transfer_date: str = ""
) -> Response:
    """The Zengin transfer file paying the shops of a closed month, or the statements page
    again with the reason it cannot be made."""
    own = _own(staff, code)
    error = None
    try:
        day = date.fromisoformat(transfer_date)
    except ValueError:
        error = page.t("console.field.date")
    else:
        try:
            plan, data = payouts.month_payout_file(
                page.uow, municipality=own, month=month, transfer_date=day
            )
        except MyKeyError as refused:
            error = message_of(page, refused)
        else:
            return Response(
                data,
                media_type="text/plain; charset=Shift_JIS",
                headers={
                    "Content-Disposition": (f'attachment; filename="zengin-{own}-{plan.month}.txt"')
                },
            )
    found: list[statements.StatementView] = []
    with contextlib.suppress(MyKeyError):
        found = statements.list_statements(page.uow, month=month, municipality=own)
    return page.render(
        "console/town_settlements.html",
        status=422,
        code=own,
        month=month,
        error=None,
        zengin_error=error,
        statements=found,
        today=transfer_date,
    )


# --- online-shop picks shown on Point Navi (R9.5) ---------------------------------------------

BLANK_ROWS = 3
PICK_FIELDS = ("title", "shop", "price", "url")


def _pick_rows(current: list[Pick]) -> list[dict[str, str]]:
    rows = [
        {"title": p.title, "shop": p.shop, "price": str(p.price_yen), "url": p.url or ""}
        for p in current
    ]
    room = max(0, MAX_PICKS - len(rows))
    return rows + [{"title": "", "shop": "", "price": "", "url": ""}] * min(BLANK_ROWS, room)


def _picks(
    page: Page,
    code: str,
    *,
    rows: list[dict[str, str]] | None = None,
    form: Form | None = None,
    saved: bool = False,
    status: int = 200,
) -> Response:
    return page.render(
        "console/town_picks.html",
        status=status,
        code=code,
        rows=rows if rows is not None else _pick_rows(picks_of(page.uow, code)),
        errors=form.errors if form else {},
        saved=saved,
    )


@router.get("/picks")
def picks_page(page: PageDep, staff: TownStaff, code: str, saved: int = 0) -> Response:
    return _picks(page, _own(staff, code), saved=bool(saved))


@router.post("/picks")
def picks_save(page: PageDep, staff: TownStaff, code: str, fields: CheckedForm) -> Response:
    """Replace the municipality's picks by the filled rows, in order (an empty row is left out;
    all rows empty clears the list). All or nothing."""
    own = _own(staff, code)
    form = Form(page, fields)
    rows: list[dict[str, str]] = []
    picks: list[Pick] = []
    names: list[int] = []  # the form row of each pick, to put a domain error next to it
    count = fields.get("rows", "")
    for n in range(min(int(count), MAX_PICKS) if count.isascii() and count.isdigit() else 0):
        row = {
            key: fields.get(f"{key}_{n}", "").strip() for key in ("title", "shop", "price", "url")
        }
        rows.append(row)
        if not any(row.values()):
            continue
        title = form.text(f"title_{n}", required=True)
        shop = form.text(f"shop_{n}", required=True)
        price = form.integer(f"price_{n}", required=True)
        if title and shop and price is not None:
            picks.append(Pick(title, shop, price, row["url"] or None))
            names.append(n)
    if form.ok:
        try:
            set_picks(page.uow, code=own, picks=picks, actor=f"staff:{staff.username}")
        except MyKeyError as error:
            position = int(error.details.get("position", 1))
            row_of = names[position - 1] if 0 < position <= len(names) else 0
            field = {"invalid_amount": "price", "invalid_pick_url": "url"}.get(error.code, "title")
            form.fail(f"{field}_{row_of}", error)
        else:
            return page.redirect(f"/console/m/{own}/picks?saved=1")
    return _picks(page, own, rows=rows, form=form, status=422)
