"""Headers every answer carries, and HEAD answered as GET, for every route of the app.

`SecurityHeaders` wraps the whole application (pages, API, static files, /docs, errors, a 500
included), so a route added anywhere is covered without doing anything:

- `Content-Security-Policy`: pages allow only their own script and stylesheet (`'self'`: no
  inline `<script>`, `<style>`, `style=` or `on…=` attributes; docs/pages.md), API answers
  allow nothing at all, PDFs only the browser's viewer, and /docs what Swagger UI needs;
  all of them `frame-ancestors 'none'`;
- `X-Frame-Options: DENY` (for browsers older than frame-ancestors);
- `X-Content-Type-Options: nosniff`; `Referrer-Policy: no-referrer`;
  `Cross-Origin-Opener-Policy: same-origin`;
- `Strict-Transport-Security` only when the environment is production (served over HTTPS).

A `HEAD` request is answered as the `GET` of the same address (status and headers, no body):
Starlette answers HEAD for its own routes but FastAPI's routes only know GET. A GET that has
an effect (a voucher PDF counts a print) asks `is_head(request)` and, for a HEAD, only looks
(a link checker's HEAD must not make the clerk's first print a reprint).
"""

from __future__ import annotations

from collections.abc import MutableMapping

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none';"
    " frame-ancestors 'none'"
)
API_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
# The browser's own PDF viewer runs as a plugin in the document: it needs object-src.
PDF_POLICY = (
    "default-src 'none'; object-src 'self'; base-uri 'none'; form-action 'none';"
    " frame-ancestors 'none'"
)
# Swagger UI (fastapi-offline's files under /static/docs and our starter script): scripts and
# styles of this site only; React sets some styles on elements, which CSP allows; its icons
# are data: images; "Try it out" calls this site.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HSTS = "max-age=63072000; includeSubDomains"
HEAD = "mykey.head"  # in the scope of a HEAD answered as GET
DOCS_PATHS = ("/docs",)


def policy_for(path: str, content_type: str) -> str:
    if path in DOCS_PATHS:
        return DOCS_POLICY
    if content_type.startswith("text/html"):
        return PAGE_POLICY
    if content_type.startswith("application/pdf"):
        return PDF_POLICY
    return API_POLICY


class SecurityHeaders:
    """ASGI middleware: the security headers on every HTTP answer; HEAD as GET."""

    def __init__(self, app: ASGIApp, *, production: bool) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET", HEAD: True}
        path = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                self._add(headers, path)
            elif message["type"] == "http.response.body" and head:
                message = {**message, "body": b""}  # HEAD: the GET's headers, no body
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _add(self, headers: MutableHeaders, path: str) -> None:
        defaults: MutableMapping[str, str] = {
            "Content-Security-Policy": policy_for(path, headers.get("content-type", "")),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        if self.production:
            defaults["Strict-Transport-Security"] = HSTS
        for name, value in defaults.items():
            if name not in headers:  # a route that sets its own keeps it
                headers[name] = value


def is_head(request: Request) -> bool:
    """Is this GET really a HEAD (answered without the body)?"""
    return bool(request.scope.get(HEAD))


def install(app: Starlette, *, production: bool) -> None:
    """Outermost, around Starlette's own error middleware, so that a 500 carries the headers
    too (`add_middleware` would put it inside)."""
    build = app.build_middleware_stack

    def outermost() -> ASGIApp:
        return SecurityHeaders(build(), production=production)

    app.build_middleware_stack = outermost  # type: ignore[method-assign]  # wrap, as Starlette builds it on first use
