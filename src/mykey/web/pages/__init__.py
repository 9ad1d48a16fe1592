"""The web pages (HTML): Point Navi, sign-in, and what later helpers add (My Page, counter,
consoles). `install(app)` mounts the stylesheet and script, the page routers and the page
error handlers. How to add a page: docs/pages.md."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

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
from mykey.web.pages.base import STATIC, handlers

ROUTERS: tuple[APIRouter, ...] = (auth.router, navi.router, mypage.router, counter.router)
ROUTERS += (mypage_vouchers.router,)
ROUTERS += (console_town.router, console_rankings.router)
ROUTERS += (console_partner.router, console_council.router)


def install(app: FastAPI) -> None:
    app.mount("/assets", StaticFiles(directory=STATIC), name="assets")
    for router in ROUTERS:
        app.include_router(router)
    for kind, handler in handlers().items():
        app.add_exception_handler(kind, handler)
