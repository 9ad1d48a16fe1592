"""The municipality console's rankings (`/console/m/{code}/rankings`, R4.5): the ranking of a
period, and awards made from it: points, prize vouchers (N vouchers of D points valid at a
shopping street or chosen shops for V days, from the budget), or both; each award's page
lists its winners with a PDF of each winner's vouchers and a ZIP of all of them.

Only a municipality staff account of that municipality is admitted; the use cases are the
API's and the CLI's (points.rankings, points.voucher_print)."""

from __future__ import annotations

import urllib.parse
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mykey.db import tokyo_date
from mykey.errors import MyKeyError
from mykey.points import voucher_print
from mykey.points.rankings import (
    AwardReport,
    Ranking,
    award_ranking,
    get_award,
    list_awards,
    rank,
)
from mykey.points.shops import list_shops, list_streets
from mykey.points.vouchers import PrizeTerms
from mykey.web.pages.base import CheckedForm, Page, PageDep
from mykey.web.pages.console_common import Form, checked_upload, new_key, not_yours
from mykey.web.pages.console_town import TownStaff, _own, _program
from mykey.web.security import is_head

router = APIRouter(prefix="/console/m/{code}", include_in_schema=False)

SHOPS_FIELD = "voucher_shops"
AWARD_FIELDS = {  # a refusal of the use case: the form field it is about
    "invalid_reason": "reason",
    "invalid_voucher_place": "voucher_street",
    "unknown_street": "voucher_street",
    "unknown_shop": SHOPS_FIELD,
    "invalid_activity": "activity",
    "invalid_period": "start",
}


# A bad number names its field (`details.field`, docs/errors.md): the form field it is about.
NUMBER_FIELDS = {
    "points": "points",
    "voucher_count": "voucher_count",
    "face_value": "voucher_value",
    "valid_days": "voucher_days",
    "top": "top",
    "minimum": "minimum",
}


def _field_of(error: MyKeyError, default: str) -> str:
    number = NUMBER_FIELDS.get(str(error.details.get("field", "")))
    return number or AWARD_FIELDS.get(error.code, default)


def _first_of_fiscal_year(today: date) -> date:
    return date(today.year if today.month >= 4 else today.year - 1, 4, 1)


def _query(page: Page, fields: dict[str, str]) -> dict[str, str]:
    today = tokyo_date(page.uow.now())
    return {
        "activity": fields.get("activity", ""),
        "start": fields.get("start", "") or _first_of_fiscal_year(today).isoformat(),
        "end": fields.get("end", "") or today.isoformat(),
        "top": fields.get("top", "") or "10",
        "minimum": fields.get("minimum", "") or "1",
    }


def _dates(form: Form, values: dict[str, str]) -> tuple[date, date] | None:
    try:
        return date.fromisoformat(values["start"]), date.fromisoformat(values["end"])
    except ValueError:
        form.errors["start"] = form.page.t("console.field.date")
        return None


def _page(
    page: Page,
    code: str,
    values: dict[str, str],
    *,
    form: Form,
    result: Ranking | None,
    prize: dict[str, object] | None = None,
    status: int = 200,
) -> Response:
    program = _program(page, code)
    rules = [(r.activity, r.name) for r in program.rules] if program else []
    streets = [(s.id, s.name) for s in list_streets(page.uow, municipality=code)]
    shops = [(s.id, s.name) for s in list_shops(page.uow, municipality=code)]
    return page.render(
        "console/town_rankings.html",
        status=status,
        code=code,
        values=values,
        errors=form.errors,
        activities=[("", page.t("console.rankings.every_activity")), *rules],
        result=result,
        prize=prize or {"key": new_key(), "voucher_days": "90", SHOPS_FIELD: []},
        streets=[("", page.t("console.awards.pick_shops")), *streets],
        has_streets=bool(streets),
        shops=shops,
        awards=list_awards(page.uow, municipality=code),
    )


@router.get("/rankings")
def rankings(page: PageDep, staff: TownStaff, code: str, request: Request) -> Response:
    own = _own(staff, code)
    values = _query(page, dict(request.query_params))
    form = Form(page, values)
    count = form.integer("top", required=True, minimum=1)
    minimum = form.integer("minimum", required=True, minimum=0)
    period = _dates(form, values)
    result = None
    if form.ok and count is not None and minimum is not None and period is not None:
        try:
            result = rank(page.uow, own, values["activity"] or None, *period, count, minimum)
        except MyKeyError as error:
            form.fail(_field_of(error, "start"), error)
    status = 422 if form.errors else 200
    return _page(page, own, values, form=form, result=result, status=status)


def _pairs(raw: bytes) -> list[tuple[str, str]]:
    """Every (name, value) of a url-encoded body, repeated names included (checkboxes)."""
    text = raw.decode("utf-8", errors="replace")
    return urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=300)


@router.post("/rankings/awards")
async def give(page: PageDep, staff: TownStaff, code: str, request: Request) -> Response:
    """Award the ranking of the posted conditions; then see the award's page (or this page
    again, with what is wrong next to each field, and nothing given)."""
    own = _own(staff, code)
    upload = await checked_upload(request, page)
    fields = upload.fields
    chosen = sorted({v for k, v in _pairs(await request.body()) if k == SHOPS_FIELD and v})
    values = _query(page, fields)
    form = Form(page, {**fields, **values})
    prize: dict[str, object] = {
        "reason": form.text("reason", required=True),
        "points": form.text("points"),
        "voucher_count": form.text("voucher_count"),
        "voucher_value": form.text("voucher_value"),
        "voucher_days": form.text("voucher_days"),
        "voucher_street": form.text("voucher_street"),
        SHOPS_FIELD: chosen,
        "key": fields.get("key") or new_key(),
    }
    count = form.integer("top", required=True, minimum=1)
    minimum = form.integer("minimum", required=True, minimum=0)
    period = _dates(form, values)
    points = form.integer("points", minimum=1) or 0
    pieces = form.integer("voucher_count", minimum=1)
    terms = None
    if pieces is not None:
        value = form.integer("voucher_value", required=True, minimum=1)
        days = form.integer("voucher_days", required=True, minimum=1)
        street = str(prize["voucher_street"]) or None
        if value is not None and days is not None:
            terms = PrizeTerms(pieces, value, days, street, tuple(chosen))
    elif not points and "points" not in form.errors and "voucher_count" not in form.errors:
        form.errors["points"] = page.t("console.awards.nothing")
    if form.ok and count is not None and minimum is not None and period is not None:
        try:
            report = award_ranking(
                page.uow,
                municipality=own,
                activity=values["activity"] or None,
                start=period[0],
                end=period[1],
                top=count,
                minimum=minimum,
                points=points,
                reason=str(prize["reason"]),
                actor=staff.actor,
                key=str(prize["key"]),
                vouchers=terms,
            )
        except MyKeyError as error:
            form.fail(_field_of(error, "reason"), error)
        else:
            return _to_award(page, own, report)
    return _page(page, own, values, form=form, result=None, prize=prize, status=422)


def _refusals_note(award_id: str) -> str:
    return f"award-refusals:{award_id}"


def _to_award(page: Page, own: str, report: AwardReport) -> Response:
    """The award's page (post/redirect/get), with why each refused winner got nothing kept
    for it (a page note, not the URL)."""
    refused = {
        o.mykey_id: [o.message_ja or "", o.message or "", o.code or ""]
        for o in report.outcomes
        if o.status == "refused"
    }
    if refused:
        page.keep(_refusals_note(report.award_id), refused)
    else:
        page.forget(_refusals_note(report.award_id))
    given = f"{report.granted}:{report.already}:{report.refused}"
    return page.redirect(f"/console/m/{own}/rankings/awards/{report.award_id}?given={given}")


@router.post("/rankings/awards/{award_id}/again")
def give_again(
    page: PageDep, staff: TownStaff, code: str, award_id: str, fields: CheckedForm
) -> Response:
    """The saved award sent again as it was (a new key: the award is the ranking's, whoever
    sends it): the winners refused before (the annual budget, say) are given their prize if it
    now fits; nobody is given twice."""
    own = _own(staff, code)
    del fields  # the CSRF token only
    try:
        award = get_award(page.uow, award_id, municipality=own)
    except MyKeyError:
        raise not_yours() from None
    report = award_ranking(
        page.uow,
        municipality=own,
        activity=award.activity,
        start=award.start,
        end=award.end,
        top=award.top,
        minimum=award.minimum,
        points=award.points,
        reason=award.reason,
        actor=staff.actor,
        key=new_key(),
        vouchers=award.prize,
    )
    return _to_award(page, own, report)


def _given(text: str) -> tuple[int, int, int] | None:
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


@router.get("/rankings/awards/{award_id}")
def award_page(
    page: PageDep, staff: TownStaff, code: str, award_id: str, given: str = ""
) -> Response:
    own = _own(staff, code)
    try:
        award = get_award(page.uow, award_id, municipality=own)
    except MyKeyError:
        raise not_yours() from None
    where = ""
    if award.prize is not None:
        names = {s.id: s.name for s in list_shops(page.uow, municipality=own)}
        streets = {s.id: s.name for s in list_streets(page.uow, municipality=own)}
        if award.prize.street_id is not None:
            street = streets.get(award.prize.street_id, award.prize.street_id)
            where = page.t("console.award.where_street", name=street)
        else:
            where = "、".join(names.get(s, s) for s in award.prize.shop_ids)
    kept = page.recall(_refusals_note(award.award_id)) if given else None
    why = {
        str(who): str(text[0] if page.lang == "ja" else text[1])
        for who, text in (kept.items() if isinstance(kept, dict) else ())
        if isinstance(text, list) and len(text) == 3
    }
    return page.render(
        "console/town_award.html",
        code=own,
        award=award,
        where=where,
        given=_given(given),
        refused=why,
        issued=sum(w.vouchers for w in award.winners),
    )


def _download(content: bytes, media_type: str, name: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/rankings/awards/{award_id}/vouchers/{mykey_id}.pdf")
def winner_pdf(
    page: PageDep, staff: TownStaff, code: str, award_id: str, mykey_id: str
) -> Response:
    """One winner's prize vouchers, one PDF (each print counted, reprints marked)."""
    own = _own(staff, code)
    viewer = voucher_print.Viewer(municipality=own, counting=not is_head(page.request))
    try:
        content = voucher_print.print_prize(page.uow, award_id, mykey_id, viewer=viewer)
    except MyKeyError:
        raise not_yours() from None
    winner = "".join(ch for ch in mykey_id if ch.isascii() and ch.isalnum())
    return _download(content, "application/pdf", f"prize-{winner}.pdf")


@router.get("/rankings/awards/{award_id}/vouchers.zip")
def winners_zip(page: PageDep, staff: TownStaff, code: str, award_id: str) -> Response:
    """Every winner's prize vouchers: a ZIP with one PDF per winner, in rank order."""
    own = _own(staff, code)
    viewer = voucher_print.Viewer(municipality=own, counting=not is_head(page.request))
    try:
        content = voucher_print.print_prizes_zip(page.uow, award_id, viewer=viewer)
    except MyKeyError:
        raise not_yours() from None
    return _download(content, "application/zip", f"prizes-{own}.zip")
