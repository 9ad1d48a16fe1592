"""Signing in and out: staff (`/login`) and residents (`/mypage/login`), one `/logout`.

A successful login replaces the page session by a new one (new cookie, new CSRF token);
a failed one says so without telling whether the name exists, and failures are throttled.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from mykey.errors import ErrorKind, MyKeyError
from mykey.identity import residents
from mykey.identity.staff import StaffMember, attach_resident, end_page_session, login_staff
from mykey.web.pages.base import (
    SESSION_COOKIE,
    CheckedForm,
    Page,
    PageDep,
    safe_next,
    staff_page,
)
from mykey.web.problems import retry_after

router = APIRouter(include_in_schema=False)

STAFF_FORM = {
    "heading": "login.staff.title",
    "intro": "login.staff.intro",
    "action": "/login",
    "user_field": "username",
    "user_label": "login.username",
    "user_hint": "login.username.hint",
}
RESIDENT_FORM = {
    "heading": "login.resident.title",
    "intro": "login.resident.intro",
    "action": "/mypage/login",
    "user_field": "mykey_id",
    "user_label": "login.mykey_id",
    "user_hint": "login.mykey_id.hint",
}


def _client(page: Page) -> str:
    return page.request.client.host if page.request.client else "unknown"


def _form(
    page: Page,
    spec: dict[str, str],
    *,
    next_path: str,
    user_value: str = "",
    field_errors: dict[str, str] | None = None,
    failure: str | None = None,
    status: int = 200,
) -> Response:
    field_errors = field_errors or {}
    errors = list(field_errors.items())
    return page.render(
        "auth/login.html",
        status=status,
        next=next_path,
        user_value=user_value,
        field_errors=field_errors,
        errors=errors,
        failure=failure,
        **spec,
    )


def _missing(page: Page, fields: dict[str, str], user_field: str) -> dict[str, str]:
    errors = {}
    if not fields.get(user_field, "").strip():
        errors[user_field] = page.t(f"login.{user_field}.missing")
    if not fields.get("password"):
        errors["password"] = page.t("login.password.missing")
    return errors


def _refusal(page: Page, error: MyKeyError) -> tuple[str, int]:
    message = error.message if page.lang == "en" else error.message_ja
    return message, 429 if error.kind is ErrorKind.THROTTLED else 401


def _throttled(error: MyKeyError, response: Response) -> Response:
    """A throttled login's page says when to come back (Retry-After), as the API does."""
    if error.kind is ErrorKind.THROTTLED:
        response.headers["Retry-After"] = str(retry_after(error))
    return response


@router.get("/login")
def staff_login_form(page: PageDep, next: str | None = None) -> Response:
    return _form(page, STAFF_FORM, next_path=safe_next(next, "/staff"))


@router.post("/login")
def staff_login(page: PageDep, fields: CheckedForm) -> Response:
    next_path = safe_next(fields.get("next"), "/staff")
    username = fields.get("username", "").strip()
    missing = _missing(page, fields, "username")
    if missing:
        return _form(
            page,
            STAFF_FORM,
            next_path=next_path,
            user_value=username,
            field_errors=missing,
            status=422,
        )
    try:
        token, _ = login_staff(
            page.uow,
            username=username,
            password=fields["password"],
            client=_client(page),
            old_token=page.request.cookies.get(SESSION_COOKIE),
        )
    except MyKeyError as error:
        message, status = _refusal(page, error)
        return _throttled(
            error,
            _form(
                page,
                STAFF_FORM,
                next_path=next_path,
                user_value=username,
                failure=message,
                status=status,
            ),
        )
    page.set_session_cookie(token)
    return page.redirect(next_path + ("&" if "?" in next_path else "?") + "signed_in=1")


@router.get("/mypage/login")
def resident_login_form(page: PageDep, next: str | None = None) -> Response:
    return _form(page, RESIDENT_FORM, next_path=safe_next(next, "/mypage"))


@router.post("/mypage/login")
def resident_login(page: PageDep, fields: CheckedForm) -> Response:
    next_path = safe_next(fields.get("next"), "/mypage")
    mykey_id = fields.get("mykey_id", "").strip()
    missing = _missing(page, fields, "mykey_id")
    if missing:
        return _form(
            page,
            RESIDENT_FORM,
            next_path=next_path,
            user_value=mykey_id,
            field_errors=missing,
            status=422,
        )
    try:
        session = residents.login_with_password(
            page.uow, mykey_id=mykey_id, password=fields["password"], client=_client(page)
        )
        token = attach_resident(
            page.uow,
            resident_token=session.token,
            old_token=page.request.cookies.get(SESSION_COOKIE),
        )
    except MyKeyError as error:
        message, status = _refusal(page, error)
        return _throttled(
            error,
            _form(
                page,
                RESIDENT_FORM,
                next_path=next_path,
                user_value=mykey_id,
                failure=message,
                status=status,
            ),
        )
    page.set_session_cookie(token)
    return page.redirect(next_path + ("&" if "?" in next_path else "?") + "signed_in=1")


@router.post("/logout")
def logout(page: PageDep, fields: CheckedForm) -> Response:
    token = page.request.cookies.get(SESSION_COOKIE)
    if token:
        end_page_session(page.uow, token)
    page.clear_session_cookie()
    return page.redirect("/navi?signed_out=1")


@router.get("/staff")
def staff_home(
    page: PageDep,
    staff: Annotated[StaffMember, Depends(staff_page())],
    signed_in: int = 0,
) -> Response:
    return page.render("staff/home.html", staff=staff, signed_in=bool(signed_in))


# /mypage itself is in mypage.py (My Page).
