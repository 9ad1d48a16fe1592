"""A database that cannot serve now is not a defect of the request: 503 with Retry-After.

While PostgreSQL is down or restarting, unreachable or out of connections, or SQLite stays
locked by another writer past its busy timeout (`mykey.db.is_unavailable`), every request
answers `503 Service Unavailable` with `Retry-After` — problem+json (`database_unavailable`)
for the API, an HTML page in the visitor's language for the pages — and the server logs one
line per failed request, not a traceback. Any other database error is a defect: it goes on to
the 500 handler and its traceback is logged as before.

Pooled connections that died with the server are not kept: the first one found dead
invalidates the pool and `UnitOfWork.run` runs the use case again on a new connection, so the
first request after the database is back succeeds (docs/operators.md, "Database outages").
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from mykey.channels import Channel
from mykey.db import is_unavailable, unavailable_summary
from mykey.web.pages.base import environment, lang_url, language_of, wants_page
from mykey.web.pages.messages import translate
from mykey.web.problems import problem
from mykey.web.surge import RETRY_AFTER_API, RETRY_AFTER_PAGE

# Seconds a client is asked to wait: a restart or a fail-over takes a few seconds, and a
# counter terminal that retries sooner only adds load. Retried writes carry their idempotency
# key, so a retry has effect once.
RETRY_AFTER = 5

log = logging.getLogger("mykey.web")


def _page(
    request: Request,
    title: str = "error.unavailable.title",
    body: str = "error.unavailable.body",
    retry_after: int = RETRY_AFTER,
    kind: str = "error",
) -> Response:
    lang = language_of(request)
    html = (
        environment()
        .get_template("error.html")
        .render(
            page=None,
            t=lambda key, **v: translate(lang, key, **v),
            lang=lang,
            lang_url=lambda other: lang_url(request, other),
            title=translate(lang, title),
            body=translate(lang, body, seconds=retry_after),
            status=503,
            path=request.url.path,
            kind=kind,
        )
    )
    return HTMLResponse(html, status_code=503, headers={"Retry-After": str(retry_after)})


def channel_busy(request: Request, channel: Channel) -> Response:
    """The answer to a request over its channel's budget (`mykey.web.surge`): at once, 503
    with Retry-After — a calm page for people, problem+json for programs."""
    if wants_page(request):
        # calm: information to wait a little, not an error of the visitor's
        return _page(request, "error.busy.title", "error.busy.body", RETRY_AFTER_PAGE, "info")
    response = problem(
        request,
        status=503,
        code="channel_busy",
        message=f"Too many requests of this kind ({channel.value}) just now; try again in"
        f" {RETRY_AFTER_API} seconds (a change sent again with the same idempotency key takes"
        " effect once).",
        message_ja=f"ただいまこの種類の利用（{channel.value}）が混み合っています。"
        f"{RETRY_AFTER_API}秒ほどしてから再度お試しください"
        "（同じ冪等キーで再送した変更は一度だけ行われます）。",
        extra={"kind": "unavailable", "channel": channel.value, "retry_after": RETRY_AFTER_API},
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_API)
    return response


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """The exception handler for database errors: 503 if the database cannot serve now."""
    if not is_unavailable(exc):
        raise exc  # a defect, not an outage: the 500 handler answers, the traceback is logged
    log.warning(
        "database unavailable: %s %s answered 503 (%s)",
        request.method,
        request.url.path,
        unavailable_summary(exc),
    )
    if wants_page(request):
        return _page(request)
    response = problem(
        request,
        status=503,
        code="database_unavailable",
        message="The service cannot reach its database just now; try again in a few seconds"
        " (a change sent again with the same idempotency key takes effect once).",
        message_ja="ただいまデータベースに接続できません。数秒後に再度お試しください"
        "（同じ冪等キーで再送した変更は一度だけ行われます）。",
        extra={"kind": "unavailable", "retry_after": RETRY_AFTER},
    )
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(DBAPIError, database_unavailable)
    app.add_exception_handler(SQLAlchemyTimeoutError, database_unavailable)
