"""What every page route uses: the language, the page session, rendering, CSRF and roles.

A page route asks for `Page` (and, for staff pages, `staff_page(*roles)`; for forms,
`CheckedForm`) and returns `page.render("folder/name.html", **values)`. See docs/pages.md.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from mykey.db import UnitOfWork
from mykey.identity.staff import (
    PAGE_SESSION_LIFETIME,
    PageSessionView,
    StaffMember,
    StaffRole,
    csrf_matches,
    page_session,
    set_page_notes,
    start_anonymous_session,
)
from mykey.web.deps import Uow
from mykey.web.pages.messages import translate

Lang = Literal["ja", "en"]
LANGS: tuple[Lang, ...] = ("ja", "en")
LANG_COOKIE = "mykey_lang"
# How long a page keeps what it shows after a form (post/redirect/get): long enough to reload
# or switch the language, short enough that nobody reopens it later (docs/resident-pages.md).
NOTE_LIFETIME = timedelta(minutes=2)
SESSION_COOKIE = "mykey_session"
CSRF_FIELD = "csrf_token"
WEB = Path(__file__).resolve().parent.parent
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def environment() -> Environment:
    """The one Jinja environment of the pages (tests use it to list templates)."""
    return _env


def lang_url(request: Request, lang: Lang) -> str:
    """The address of the requested page in another language (`?lang=` also sets the cookie)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    query.append(("lang", lang))
    return f"{request.url.path}?{urllib.parse.urlencode(query)}"


def language_of(request: Request) -> Lang:
    """`?lang=` if given, else the cookie (the visitor's own switch, remembered), else the
    browser's language on a first visit (Japanese or English, whichever its Accept-Language
    ranks higher), else Japanese."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate == "en":
            return "en"
        if candidate == "ja":
            return "ja"
    return browser_language(request.headers.get("accept-language", "")) or "ja"


def browser_language(header: str) -> Lang | None:
    """Japanese or English, whichever an Accept-Language header ranks higher (its q-values,
    then its order, RFC 9110 §12.5.4: `en-US,en;q=0.9,ja;q=0.8` is English, `fr,en;q=0.5`
    English, `ja,en` Japanese); None if it names neither."""
    best: tuple[float, int, Lang] | None = None
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, parameters = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGS:
            continue
        weight = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight <= 0:
            continue
        lang: Lang = "en" if primary == "en" else "ja"
        if best is None or (weight, -position) > (best[0], best[1]):
            best = (weight, -position, lang)
    return best[2] if best else None


def wants_page(request: Request) -> bool:
    """A page (HTML) rather than the API (problem+json): not under /api/, and not a script
    that asks for JSON only (the console's progress poll)."""
    if request.url.path.startswith("/api/"):
        return False
    accept = request.headers.get("accept", "").lower()
    return "text/html" in accept or "json" not in accept


class PageProblem(Exception):  # noqa: N818 -- a page to show, not a defect
    """A refusal shown as a page (403, 404, a CSRF mismatch …), in the visitor's language.
    `title`/`body` are message keys."""

    def __init__(self, status: int, title: str, body: str, **values: object) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.body = body
        self.values = values


class LoginRequired(Exception):  # noqa: N818 -- a redirect, not a defect
    """The page needs a signed-in staff member or resident: go to `login_path` and back."""

    def __init__(self, login_path: str, back_to: str) -> None:
        super().__init__(login_path)
        self.login_path = login_path
        self.back_to = back_to


@dataclass
class Page:
    """One page request: language, session, and the response cookies to set."""

    request: Request
    uow: UnitOfWork
    lang: Lang
    session: PageSessionView | None
    cookies: dict[str, str] = field(default_factory=dict)
    cleared: list[str] = field(default_factory=list)
    _notes: dict[str, Any] | None = field(default=None, repr=False)

    def t(self, key: str, /, **values: object) -> str:
        return translate(self.lang, key, **values)

    @property
    def staff(self) -> StaffMember | None:
        return self.session.staff if self.session else None

    @property
    def mykey_id(self) -> str | None:
        return self.session.mykey_id if self.session else None

    def csrf_token(self) -> str:
        """The CSRF token for a form on this page (an anonymous session starts if needed)."""
        if self.session is None:
            token, csrf = start_anonymous_session(self.uow)
            self.session = PageSessionView("", csrf, None, None)
            self.set_session_cookie(token)
        return self.session.csrf_token

    def set_session_cookie(self, token: str) -> None:
        self.cookies[SESSION_COOKIE] = token

    def clear_session_cookie(self) -> None:
        self.cleared.append(SESSION_COOKIE)

    def lang_url(self, lang: Lang) -> str:
        """This page's address in another language."""
        return lang_url(self.request, lang)

    # --- notes: what a page shows after a form (post/redirect/get) -----------------------

    def _all_notes(self) -> dict[str, Any]:
        if self._notes is None:
            raw = self.session.notes if self.session else None
            try:
                loaded = json.loads(raw) if raw else {}
            except ValueError:
                loaded = {}
            self._notes = loaded if isinstance(loaded, dict) else {}
        return self._notes

    def _save_notes(self) -> None:
        if self.session is None or not self.session.token_hash:
            return
        notes = self._all_notes()
        for name in [n for n in notes if self.recall(n) is None]:  # past their time: gone
            del notes[name]
        text = json.dumps(notes, ensure_ascii=False, default=str) if notes else None
        set_page_notes(self.uow, self.session.token_hash, text)

    def keep(self, name: str, value: Any, *, lifetime: timedelta = NOTE_LIFETIME) -> None:
        """Keep `value` (JSON) in the page session, server-side, for a while: what the page a
        form redirects to shows (post/redirect/get), never put in the URL."""
        if self.session is None:
            self.csrf_token()  # a session to keep it in
        until = (self.uow.now() + lifetime).isoformat()
        self._all_notes()[name] = {"until": until, "value": value}
        self._save_notes()

    def recall(self, name: str) -> Any | None:
        """A kept value, while it lasts."""
        note = self._all_notes().get(name)
        if not isinstance(note, dict):
            return None
        try:
            alive = datetime.fromisoformat(str(note.get("until"))) > self.uow.now()
        except ValueError:
            alive = False
        return note.get("value") if alive else None

    def forget(self, *names: str) -> None:
        notes = self._all_notes()
        if any(name in notes for name in names):
            for name in names:
                notes.pop(name, None)
            self._save_notes()

    def take(self, name: str) -> Any | None:
        """A kept value, shown once: it is forgotten as it is read."""
        value = self.recall(name)
        self.forget(name)
        return value

    def _finish(self, response: Response) -> Response:
        secure = self.request.url.scheme == "https"
        if self.request.query_params.get("lang") in LANGS:
            response.set_cookie(
                LANG_COOKIE, self.lang, max_age=365 * 86400, samesite="lax", secure=secure
            )
        for name, value in self.cookies.items():
            response.set_cookie(
                name,
                value,
                max_age=int(PAGE_SESSION_LIFETIME.total_seconds()),
                httponly=True,
                samesite="lax",
                secure=secure,
                path="/",
            )
        for name in self.cleared:
            if name not in self.cookies:
                response.delete_cookie(name, path="/", httponly=True, samesite="lax")
        return response

    def render(self, template: str, /, status: int = 200, **values: Any) -> Response:
        """The page. `no_store=True` for one that shows a resident's data or a secret: the
        browser keeps no copy to show again with Back or from its history."""
        no_store = bool(values.pop("no_store", False))
        html = _env.get_template(template).render(
            page=self, t=self.t, lang=self.lang, lang_url=self.lang_url, **values
        )
        response = HTMLResponse(html, status_code=status)
        # in the browser's language on a first visit: a cache keeps a copy per language
        response.headers["Vary"] = "Accept-Language, Cookie"
        if no_store:
            response.headers["Cache-Control"] = "no-store"
        return self._finish(response)

    def redirect(self, to: str) -> Response:
        """See other (303): after a POST, or to the login page."""
        return self._finish(RedirectResponse(to, status_code=303))


def get_page(request: Request, uow: Uow) -> Page:
    token = request.cookies.get(SESSION_COOKIE)
    session = page_session(uow, token) if token else None
    page = Page(request, uow, language_of(request), session)
    if token and session is None:
        page.clear_session_cookie()  # ended or expired: forget it
    return page


PageDep = Annotated[Page, Depends(get_page)]


def staff_page(*roles: StaffRole) -> Callable[..., StaffMember]:
    """A dependency for staff pages: signed in (else to /login), and of one of these roles
    (else a 403 page). Give no roles to admit every staff role."""

    def check(page: PageDep) -> StaffMember:
        staff = page.staff
        if staff is None:
            raise LoginRequired("/login", str(page.request.url.path))
        if roles and staff.role not in roles:
            raise PageProblem(403, "error.forbidden.title", "error.forbidden.body")
        return staff

    return check


def resident_page(page: PageDep) -> str:
    """A dependency for My Page: the signed-in resident's MyKey ID (else to /mypage/login)."""
    if page.mykey_id is None:
        query = page.request.url.query  # kept: a coupon URL's code survives the login
        back = str(page.request.url.path) + (f"?{query}" if query else "")
        raise LoginRequired("/mypage/login", back)
    return page.mykey_id


CurrentResident = Annotated[str, Depends(resident_page)]


async def form_fields(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body as a dict (last value wins)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(urllib.parse.parse_qsl(body, keep_blank_values=True, max_num_fields=200))


async def checked_form(request: Request, page: PageDep) -> dict[str, str]:
    """The fields of a POSTed form whose CSRF token matches the page session's, or a 403
    page that says what happened and what to do."""
    fields = await form_fields(request)
    if not csrf_matches(page.session, fields.get(CSRF_FIELD)):
        raise PageProblem(403, "error.csrf.title", "error.csrf.body")
    return fields


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


def safe_next(value: str | None, default: str) -> str:
    """A path on this site to go back to after login (never another site)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def problem_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageProblem)
    lang = language_of(request)
    html = _env.get_template("error.html").render(
        page=None,
        t=lambda key, **v: translate(lang, key, **v),
        lang=lang,
        lang_url=lambda other: lang_url(request, other),
        title=translate(lang, exc.title, **exc.values),
        body=translate(lang, exc.body, **exc.values),
        status=exc.status,
        path=request.url.path,
    )
    return HTMLResponse(html, status_code=exc.status)


def _login_required(request: Request, exc: Exception) -> Response:
    """To the sign-in page and back; in the language asked for (`/counter?lang=en` signs in
    in English)."""
    assert isinstance(exc, LoginRequired)
    fields = {"next": exc.back_to}
    lang = request.query_params.get("lang")
    if lang in LANGS:
        fields["lang"] = lang
    return RedirectResponse(f"{exc.login_path}?{urllib.parse.urlencode(fields)}", status_code=303)


HANDLERS: Mapping[type[Exception], Callable[[Request, Exception], Response]] = {
    PageProblem: problem_page,
    LoginRequired: _login_required,
}


def handlers() -> dict[
    type[Exception], Callable[[Request, Exception], Coroutine[Any, Any, Response]]
]:
    """The exception handlers to install on the app (async wrappers)."""

    def wrap(
        handler: Callable[[Request, Exception], Response],
    ) -> Callable[[Request, Exception], Coroutine[Any, Any, Response]]:
        async def run(request: Request, exc: Exception) -> Response:
            return handler(request, exc)

        return run

    return {kind: wrap(handler) for kind, handler in HANDLERS.items()}
