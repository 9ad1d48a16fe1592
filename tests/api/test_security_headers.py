"""Security headers (issue #13, item 18) on every kind of answer, HSTS in production only, and
HEAD answered as GET, for pages and GET API routes.

A counter page framed by another site could trick a clerk; a page allowing inline script runs
whatever gets injected into it. Every answer carries a Content-Security-Policy with
`frame-ancestors 'none'` (pages: scripts and styles of this site only), X-Frame-Options,
X-Content-Type-Options, Referrer-Policy; HTTPS sites add HSTS.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mykey import demo
from mykey.config import Settings
from mykey.identity.keys import create_key
from mykey.identity.simulator import SimulatedCard
from mykey.web.app import create_app
from tests.api.conftest import bearer, proof
from tests.conftest import LOG_SIGNER, Database

TOSHIMA = "131164"
COMMON = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _signed_in(app: Any, form: str, **fields: str) -> TestClient:
    client = TestClient(app)
    token = _csrf(client.get(form).text)
    done = client.post(form, data={"csrf_token": token, **fields}, follow_redirects=False)
    assert done.status_code == 303, done.text[:500]
    return client


@pytest.fixture
def answers(
    card_client: TestClient, database: Database, cards: list[SimulatedCard]
) -> Iterator[dict[str, Any]]:
    """One answer of each kind, as a browser or a client gets it."""
    c, uow = card_client, database.uow()
    demo.load(uow)
    demo.register_residents(uow, {"MY123456": cards[0]})
    demo.register_staff(uow)
    staff = bearer(create_key(uow, role="municipality_staff", label="t", municipality=TOSHIMA)[0])
    terminal = bearer(create_key(uow, role="terminal", label="c", provider_id="toshima-museum")[0])
    granted = c.post(
        f"/api/v1/municipalities/{TOSHIMA}/grants",
        headers=staff,
        json={"mykey_id": "MY123456", "points": 3000, "reason": "x", "key": "g-1"},
    )
    assert granted.status_code == 201, granted.text
    issued = c.post(
        "/api/v1/terminal/vouchers",
        headers=terminal,
        json={
            "card_proof": proof(c, cards[0]),
            "municipality": TOSHIMA,
            "points": 1000,
            "key": "v-1",
        },
    )
    assert issued.status_code == 201, issued.text
    number = issued.json()["vouchers"][0]["number"]
    resident = _signed_in(c.app, "/mypage/login", mykey_id="MY123456", password=demo.DEMO_PASSWORD)
    console = _signed_in(c.app, "/login", username="toshima", password=demo.DEMO_STAFF_PASSWORD)
    clerk = _signed_in(c.app, "/login", username="arts-maebashi", password=demo.DEMO_STAFF_PASSWORD)
    yield {
        "navi": c.get("/navi/map"),
        "my page": resident.get("/mypage"),
        "counter": clerk.get("/counter"),
        "console": console.get(f"/console/m/{TOSHIMA}"),
        "api json": c.get("/api/v1/programs"),
        "problem+json": c.get("/api/v1/shops/no-such-shop"),
        "pdf": c.get(f"/api/v1/vouchers/{number}.pdf", headers=terminal),
        "docs": c.get("/docs"),
        "static": c.get("/assets/mykey.css"),
        "swagger static": c.get("/static/docs/swagger-ui-bundle.js"),
        "home": c.get("/"),
    }
    for client in (resident, console, clerk):
        client.close()


KINDS = {
    "navi": "text/html",
    "my page": "text/html",
    "counter": "text/html",
    "console": "text/html",
    "home": "text/html",
    "docs": "text/html",
    "api json": "application/json",
    "problem+json": "application/problem+json",
    "pdf": "application/pdf",
    "static": "text/css",
    "swagger static": "javascript",
}


def _directives(policy: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def test_every_kind_of_answer_carries_the_security_headers(answers: dict[str, Any]) -> None:
    assert set(answers) == set(KINDS)
    for kind, response in answers.items():
        assert response.status_code in (200, 404), (kind, response.status_code)
        assert KINDS[kind] in response.headers["content-type"], kind
        for name, value in COMMON.items():
            assert response.headers.get(name) == value, (kind, name)
        assert "strict-transport-security" not in response.headers, kind  # not production
        policy = _directives(response.headers["content-security-policy"])
        assert policy["frame-ancestors"] == ["'none'"], kind
        assert policy["default-src"] == ["'none'"], kind
        assert policy["base-uri"] == ["'none'"], kind
        for directive in ("script-src", "style-src"):
            # no inline code, no eval, nothing from elsewhere: this site's own files or nothing
            assert set(policy.get(directive, [])) <= {"'self'"}, (kind, directive)
        if KINDS[kind] == "text/html":
            assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]


def test_pages_have_no_inline_script_style_or_handlers(answers: dict[str, Any]) -> None:
    for kind in ("navi", "my page", "counter", "console", "home", "docs"):
        html = answers[kind].text
        assert answers[kind].status_code == 200, kind
        assert "<style" not in html, kind
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), kind
        assert not re.search(r"\sstyle=", html), kind
        assert not re.search(r"\son[a-z]+=", html), kind


def test_hsts_only_in_production(database: Database) -> None:
    settings = Settings(
        database_url=database.url,
        environment="production",
        secret_key="a production secret of enough length 0123456789",
        log_signing_key=LOG_SIGNER.key_string(),
    )
    app = create_app(settings, clock=database.clock)
    with TestClient(app) as client:
        for path in ("/navi", "/api/v1/programs", "/api/v1/nothing-here", "/assets/mykey.js"):
            hsts = client.get(path).headers.get("strict-transport-security", "")
            assert hsts.startswith("max-age=63072000"), path
    app.state.engine.dispose()


def test_head_answers_as_get_for_pages_and_api_reads(
    card_client: TestClient, database: Database
) -> None:
    demo.load(database.uow())
    c = card_client
    for path in (
        "/",
        "/navi",
        "/navi/map",
        "/login",
        "/mypage/login",
        "/docs",
        "/api/v1/programs",
        "/api/v1/shops/toshima-museum",
        "/api/v1/shops/no-such-shop",
        f"/api/v1/municipalities/{TOSHIMA}/program",
        "/healthz",
        "/openapi.json",
        "/assets/mykey.css",
    ):
        got, head = c.get(path), c.head(path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        for name in ("content-type", "content-length", "content-security-policy"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
    # a path that only takes POST still says so
    assert c.head("/api/v1/terminal/payments").status_code == 405


def test_every_page_has_our_icon_where_browsers_ask_for_it(
    answers: dict[str, Any], card_client: TestClient
) -> None:
    """Browsers ask every site for /favicon.ico (a PDF or JSON opened in a tab too); it used to
    be a 404 problem+json on every page load. Every page links our own icon."""
    for kind in ("navi", "my page", "counter", "console", "home", "docs"):
        assert '<link rel="icon" href="/favicon.ico">' in answers[kind].text, kind
    icon = card_client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert icon.headers["x-content-type-options"] == "nosniff"
    assert card_client.head("/favicon.ico").status_code == 200


def test_an_address_that_does_not_exist_is_a_page_for_a_browser(card_client: TestClient) -> None:
    """A mistyped or outdated page link showed raw problem+json; now the site's "page not
    found" page in the visitor's language (under the pages' policy), and still problem+json
    for the API and for a script that asks for JSON."""
    browser = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("/navi/no-such-page", "/mypage/no/such/page", "/assets/no-such.css"):
        page = card_client.get(path, headers=browser)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html"), path
        assert "ページが見つかりません" in page.text, path
        assert "'self'" in page.headers["content-security-policy"], path
    english = card_client.get("/navi/no-such-page?lang=en", headers=browser)
    assert "Page not found" in english.text
    for path, accept in (("/api/v1/no-such", browser["accept"]), ("/navi/x", "application/json")):
        api = card_client.get(path, headers={"accept": accept})
        assert api.status_code == 404
        assert api.headers["content-type"] == "application/problem+json"
        assert api.json()["code"] == "not_found"


def test_a_500_carries_the_security_headers_too(database: Database) -> None:
    """Starlette answers an unexpected exception outside the app's own middleware; the headers
    used to be missing from exactly those answers."""
    app = create_app(Settings(database_url=database.url, environment="test"))

    @app.get("/broken-on-purpose")
    def broken() -> None:
        raise RuntimeError("a defect")

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/broken-on-purpose")
    app.state.engine.dispose()
    assert answer.status_code == 500
    assert answer.json()["code"] == "internal_error"
    for name, value in COMMON.items():
        assert answer.headers.get(name) == value, name
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


def test_a_witness_answers_with_the_headers_too(database: Database) -> None:
    """`mykey witness serve` (another municipality's copy of the log) is a server of its own:
    the same headers, HEAD as GET, and no Swagger UI pulled from a CDN."""
    from mykey.history.cosign import Cosigner
    from mykey.history.witness import WitnessConfig
    from mykey.web.witness_app import create_witness_app

    config = WitnessConfig(
        log_url="http://127.0.0.1:9", log_key=LOG_SIGNER.verifier(), cosigner=Cosigner.generate("w")
    )
    app = create_witness_app(database.engine, config)
    with TestClient(app) as client:
        for path in ("/status", "/checkpoint", "/openapi.json"):
            answer = client.get(path)
            assert answer.status_code in (200, 404), path
            for name, value in COMMON.items():
                assert answer.headers.get(name) == value, (path, name)
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
            assert client.head(path).status_code == answer.status_code, path
        assert client.get("/docs").status_code == 404
