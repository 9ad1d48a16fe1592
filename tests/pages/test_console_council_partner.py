"""The council and partner consoles over HTTP on both engines: keys shown once and revoked,
partners and agreements, a coupon batch ordered and downloaded by its own partner only,
month closing; other roles and parties are refused and nothing changes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mykey.config import Settings
from mykey.errors import MyKeyError
from mykey.identity.keys import authenticate
from mykey.identity.staff import add_staff
from mykey.municipalities.registry import MunicipalityRecord, upsert
from mykey.points.partners import get_partner, set_partner
from mykey.web.app import create_app
from tests.conftest import Database

PASSWORD = "staff password 1"


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    uow = database.uow()
    upsert(uow, [MunicipalityRecord("131164", "東京都", "豊島区", "としまく")])
    set_partner(uow, partner="jal", name="JAL", methods=["coupon_paper"])
    set_partner(uow, partner="ana", name="ANA", methods=["coupon_paper"])
    add_staff(uow, username="council", password=PASSWORD, role="operator")
    add_staff(uow, username="jal", password=PASSWORD, role="partner", partner_id="jal")
    add_staff(uow, username="ana", password=PASSWORD, role="partner", partner_id="ana")
    app = create_app(Settings(database_url=database.url, environment="test"), clock=database.clock)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def login(client: TestClient, username: str) -> None:
    client.cookies.clear()
    token = csrf(client.get("/login").text)
    client.post("/login", data={"csrf_token": token, "username": username, "password": PASSWORD})


def test_an_operator_issues_a_key_once_and_revokes_it(
    client: TestClient, database: Database
) -> None:
    login(client, "council")
    token = csrf(client.get("/console/council/keys").text)
    made = client.post(
        "/console/council/keys",
        data={"csrf_token": token, "role": "municipality_staff", "label": "豊島区 窓口"}
        | {"bound_to": "131164"},
    )
    key = re.search(r'data-testid="issued-key">([^<]+)<', made.text)
    assert made.status_code == 200 and key
    assert authenticate(database.uow(), key.group(1)).municipality == "131164"
    listing = client.get("/console/council/keys").text
    assert key.group(1) not in listing and "豊島区 窓口" in listing
    key_id = key.group(1).split("_")[1]
    client.post(f"/console/council/keys/{key_id}/revoke", data={"csrf_token": token})
    with pytest.raises(MyKeyError):
        authenticate(database.uow(), key.group(1))
    bad = client.post(
        "/console/council/keys",
        data={"csrf_token": token, "role": "municipality_staff", "label": "x"}
        | {"bound_to": "999999"},
    )
    assert bad.status_code == 422 and 'id="bound_to-error"' in bad.text
    partner = client.post(
        "/console/council/keys",
        data={"csrf_token": token, "role": "partner", "label": "JAL", "bound_to": "jal"},
    )
    assert 'data-testid="signing-secret"' in partner.text
    assert database.count("api_keys") == 2


def test_an_operator_adds_terms_and_bad_terms_change_nothing(
    client: TestClient, database: Database
) -> None:
    login(client, "council")
    token = csrf(client.get("/console/council/partners?lang=en").text)
    terms = {"csrf_token": token, "terms_partner": "jal", "terms_effective_from": "2026-12-01"}
    terms |= {"terms_rate_units": "1", "terms_rate_points": "1", "terms_minimum": "100"}
    terms |= {"terms_step": "100", "terms_daily_limit": ""}
    added = client.post("/console/council/partners/agreements", data=terms)
    assert added.status_code == 200 and "Saved." in added.text
    assert len(get_partner(database.uow(), "jal").agreements) == 1
    bad = client.post(
        "/console/council/partners/agreements", data=terms | {"terms_rate_units": "0"}
    )
    assert bad.status_code == 422 and 'id="terms_rate_units-error"' in bad.text
    assert len(get_partner(database.uow(), "jal").agreements) == 1
    renamed = client.post(
        "/console/council/partners",
        data={"csrf_token": token, "partner": "NOT OK", "name": "x", "methods": "id_linkage"},
    )
    assert renamed.status_code == 422 and 'id="partner-error"' in renamed.text


def test_a_partner_orders_and_downloads_its_own_coupons_only(
    client: TestClient, database: Database
) -> None:
    login(client, "council")
    token = csrf(client.get("/console/council/partners").text)
    terms = {"csrf_token": token, "terms_partner": "jal", "terms_rate_units": "1"}
    terms |= {"terms_rate_points": "1", "terms_minimum": "100", "terms_step": "100"}
    terms |= {"terms_effective_from": database.clock().date().isoformat()}
    assert client.post("/console/council/partners/agreements", data=terms).status_code == 200
    login(client, "jal")
    home = client.get("/console/p/jal").text
    order = {"csrf_token": csrf(home), "key": "order-1", "count": "3", "units": "150"}
    order |= {"delivery": "paper", "expires_on": "2027-03-31"}
    wrong = client.post("/console/p/jal/batches", data=order)
    assert wrong.status_code == 422 and 'id="units-error"' in wrong.text
    for _ in range(2):
        done = client.post("/console/p/jal/batches", data=order | {"units": "200"})
        assert done.status_code == 200
    assert database.count("coupon_batches") == 1 and database.count("coupons") == 3
    link = re.search(r'href="(/console/p/jal/batches/[^"]+\.csv)"', done.text)
    assert link
    csv = client.get(link.group(1))
    assert csv.status_code == 200 and len(csv.text.strip().splitlines()) == 4
    login(client, "ana")
    assert client.get(link.group(1)).status_code == 403
    assert client.get(link.group(1).replace("/p/jal/", "/p/ana/")).status_code == 403
    assert client.get("/console/p/jal").status_code == 403
    assert client.get("/console/council").status_code == 403


def test_closing_a_month_once_and_checking_it(client: TestClient) -> None:
    login(client, "council")
    token = csrf(client.get("/console/council/settle").text)
    closed = client.post("/console/council/settle", data={"csrf_token": token, "month": "2026-01"})
    assert closed.status_code == 200 and "2026-01 を締めました" in closed.text
    again = client.post("/console/council/settle", data={"csrf_token": token, "month": "2026-01"})
    assert "締め済みです" in again.text
    checked = client.post(
        "/console/council/settle",
        data={"csrf_token": token, "month": "2026-01", "action": "check"},
    )
    assert "記録と一致しています" in checked.text
    bad = client.post("/console/council/settle", data={"csrf_token": token, "month": "2026"})
    assert bad.status_code == 422 and 'id="month-error"' in bad.text
    found = client.get("/console/council/municipalities?q=豊島")
    assert "131164" in found.text

    def upload(body: str) -> Any:
        return client.post(
            "/console/council/municipalities/import",
            data={"csrf_token": token},
            files={"file": ("m.csv", body.encode(), "text/csv")},
        )

    # a row with a wrong check digit: nothing is imported, the line is named
    refused = upload("lgcode,pref,city,citykana\r\n472018,沖縄県,那覇市,なはし\r\n472019,x,y,z\r\n")
    assert refused.status_code == 422
    assert "何も取り込んでいません" in refused.text and "<li>行 3: " in refused.text
    assert "472018" not in client.get("/console/council/municipalities?q=那覇").text
    imported = upload("lgcode,pref,city,citykana\r\n472018,沖縄県,那覇市,なはし\r\n")
    assert imported.status_code == 200, imported.text
    assert "1 行を取り込みました（新規 1、更新 0）" in imported.text
    assert "472018" in client.get("/console/council/municipalities?q=那覇").text


def test_console_forms_redirect_to_a_page_that_a_reload_does_not_resend(
    client: TestClient, database: Database
) -> None:
    """Issue #13 (post/redirect/get): a new key is shown once on the page the form redirects
    to; reloading that page neither makes another key nor shows the secret again. Closing a
    month and importing also answer with a redirect; their GET pages switch language."""
    login(client, "council")
    token = csrf(client.get("/console/council/keys").text)
    made = client.post(
        "/console/council/keys",
        data={"csrf_token": token, "role": "operator", "label": "夜間"},
        follow_redirects=False,
    )
    assert made.status_code == 303 and made.headers["location"] == "/console/council/keys"
    shown = client.get("/console/council/keys")
    key = re.search(r'data-testid="issued-key">([^<]+)<', shown.text)
    assert key and shown.headers["cache-control"] == "no-store"
    reloaded = client.get("/console/council/keys?lang=en")
    assert reloaded.status_code == 200 and key.group(1) not in reloaded.text
    assert database.count("api_keys") == 1

    closed = client.post(
        "/console/council/settle",
        data={"csrf_token": token, "month": "2026-01"},
        follow_redirects=False,
    )
    assert closed.status_code == 303
    shown = client.get(closed.headers["location"] + "&lang=ja")
    assert shown.text.count("2026-01 を締めました") == 1
    english = client.get(closed.headers["location"] + "&lang=en")
    assert english.status_code == 200 and 'lang="en"' in english.text
    imported = client.post(
        "/console/council/municipalities/import",
        data={"csrf_token": token},
        files={"file": ("m.csv", b"lgcode,pref,city,citykana\r\n472018,x,y,z\r\n", "text/csv")},
        follow_redirects=False,
    )
    assert imported.status_code == 303
