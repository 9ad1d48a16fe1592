"""The web pages (HTML): Point Navi, sign-in, and what later helpers add (My Page, counter,
consoles). `install(app)` mounts the stylesheet and script, the page routers and the page
error handlers. How to add a page: docs/pages.md.

Post/redirect/get: a form's POST answers with a redirect to a GET view (or, refused, with the
form again). A GET of an address that only takes a form (a reload, a language switch, a
bookmark of a page shown after a form) is redirected to the page it belongs to, the nearest
address above it that a GET shows, never answered with a bare 405. An address that does not
exist is the "page not found" page for a browser (problem+json for the API and for scripts
that ask for JSON)."""

from __future__ import annotations

import inspect
import urllib.parse

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from mykey.web.pages import (
    auth,
    console_council,
    console_partner,
    console_rankings,
    console_town,
    counter,
    mypage,
    mypage_vouchers,
    navi,
)
from mykey.web.pages.base import STATIC, PageProblem, handlers, problem_page, wants_page

ROUTERS: tuple[APIRouter, ...] = (auth.router, navi.router, mypage.router, counter.router)
ROUTERS += (mypage_vouchers.router,)
ROUTERS += (console_town.router, console_rankings.router)
ROUTERS += (console_partner.router, console_council.router)


def _shows(app: FastAPI, path: str, fallbacks: set[str]) -> bool:
    """Does a GET of `path` show a page (not another form-only fallback)?"""
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    for route in app.router.routes:
        if isinstance(route, APIRoute) and route.path in fallbacks:
            continue
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return True
    return False


def _page_above(app: FastAPI, path: str, fallbacks: set[str]) -> str:
    parts = path.rstrip("/").split("/")
    while len(parts) > 1:
        parts.pop()
        above = "/".join(parts) or "/"
        if _shows(app, above, fallbacks):
            return above
    return "/"


def _form_only_paths() -> set[str]:
    gets = {
        r.path
        for router in ROUTERS
        for r in router.routes
        if isinstance(r, APIRoute) and "GET" in (r.methods or ())
    }
    posts = {
        r.path
        for router in ROUTERS
        for r in router.routes
        if isinstance(r, APIRoute) and "POST" in (r.methods or ())
    }
    return posts - gets


def install(app: FastAPI) -> None:
    app.mount("/assets", StaticFiles(directory=STATIC), name="assets")
    for router in ROUTERS:
        app.include_router(router)
    fallbacks = _form_only_paths()

    def to_its_page(request: Request) -> Response:
        """A GET of an address that only takes a form: to the page it belongs to."""
        target = _page_above(request.app, request.url.path, fallbacks)
        lang = request.query_params.get("lang")
        if lang in ("ja", "en"):
            target += "?" + urllib.parse.urlencode({"lang": lang})
        return RedirectResponse(target, status_code=303)

    for path in sorted(fallbacks):
        app.add_api_route(path, to_its_page, methods=["GET"], include_in_schema=False)
    for kind, handler in handlers().items():
        app.add_exception_handler(kind, handler)
    _not_found_as_a_page(app)


def _not_found_as_a_page(app: FastAPI) -> None:
    """A browser at an address that does not exist (a mistyped or outdated link) gets the page
    in its language, with the site's header and a way back, not raw JSON."""
    api_handler = app.exception_handlers[StarletteHTTPException]  # problems.install's

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404 and wants_page(request):
            missing = PageProblem(404, "error.not_found.title", "error.not_found.body")
            return problem_page(request, missing)
        answer = api_handler(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(StarletteHTTPException, http_error)
