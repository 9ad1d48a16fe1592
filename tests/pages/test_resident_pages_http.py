"""My Page and the counter over HTTP on both engines, with simulator cards of the test's own
CA: refusals change nothing, a suspended card is refused at the counter in a clerk's words,
the terminal's session keeps nothing of the resident, and every page checks the role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mykey import demo
from mykey.config import Settings
from mykey.identity.residents import cards_of, suspend_card
from mykey.identity.simulator import SimulatorCA
from mykey.web.app import create_app
from tests.conftest import Database


@pytest.fixture
def client(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The demo's data, with two simulator cards in ./var/cards (the pages' card folder)."""
    monkeypatch.chdir(tmp_path)
    ca = SimulatorCA.create(now=database.clock())
    ca.save(tmp_path / "var" / "cards")
    cards = {name: ca.issue(now=database.clock()) for name in ("MY123456", "A01B02C3")}
    (tmp_path / "var" / "cards" / "cards").mkdir()
    for name, card in cards.items():
        (tmp_path / "var" / "cards" / "cards" / f"{name}.json").write_text(card.to_json())
    uow = database.uow()
    demo.load(uow)
    demo.register_residents(uow, cards)
    demo.register_staff(uow)
    settings = Settings(
        database_url=database.url,
        environment="test",
        card_trust_anchors=str(tmp_path / "var" / "cards" / "ca.pem"),
    )
    app = create_app(settings, clock=database.clock)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def _staff(client: TestClient, username: str) -> str:
    token = _csrf(client.get("/login").text)
    done = client.post(
        "/login",
        data={
            "csrf_token": token,
            "username": username,
            "password": demo.DEMO_STAFF_PASSWORD,
            "next": "/counter",
        },
    )
    return done.text


def _transfers(database: Database) -> int:
    return database.count("ledger_transfers")


def test_the_counter_refuses_in_a_clerks_words_and_keeps_no_resident(
    client: TestClient, database: Database
) -> None:
    home = _staff(client, "arts-maebashi")
    tapped = client.post("/counter/tap", data={"csrf_token": _csrf(home), "card": "MY123456"})
    assert tapped.status_code == 200, re.findall(r"<p>([^<]+)</p>", tapped.text)
    assert "前橋市ポイント" in tapped.text
    with database.engine.connect() as conn:  # the terminal's session: the clerk, no resident
        rows = conn.execute(
            text(
                "SELECT staff_username, resident_session FROM page_sessions WHERE ended_at IS NULL"
            )
        ).all()
    assert ("arts-maebashi", None) in [tuple(r) for r in rows]
    assert all(r[1] is None for r in rows)

    before = _transfers(database)
    too_much = client.post(
        "/counter/payments",
        data={
            "csrf_token": _csrf(home),
            "card": "MY123456",
            "municipality": "102016",
            "points": "999999",
            "key": "k-too-much",
        },
    )
    assert too_much.status_code == 422
    assert "ポイントが足りません" in too_much.text
    no_card = client.post(
        "/counter/payments",
        data={"csrf_token": _csrf(home), "municipality": "102016", "points": "1", "key": "k-2"},
    )
    assert no_card.status_code == 422 and "カードが読み取れませんでした" in no_card.text
    assert _transfers(database) == before

    paid = client.post(
        "/counter/payments",
        data={
            "csrf_token": _csrf(home),
            "card": "MY123456",
            "municipality": "102016",
            "points": "100",
            "key": "k-pay",
        },
    )
    assert paid.status_code == 200 and "100 ポイントを受け取りました" in paid.text
    again = client.post(  # the same form sent twice pays once
        "/counter/payments",
        data={
            "csrf_token": _csrf(home),
            "card": "MY123456",
            "municipality": "102016",
            "points": "100",
            "key": "k-pay",
        },
    )
    assert again.status_code == 200
    assert _transfers(database) == before + 1

    uow = database.uow()
    card_key = cards_of(uow, "MY123456")[0].card_key
    suspend_card(uow, mykey_id="MY123456", card_key=card_key, actor="resident:MY123456")
    refused = client.post("/counter/tap", data={"csrf_token": _csrf(home), "card": "MY123456"})
    assert refused.status_code == 422 and "利用停止中" in refused.text


def test_the_counter_is_for_shop_staff_only(client: TestClient) -> None:
    assert client.get("/counter", follow_redirects=False).headers["location"].startswith("/login")
    _staff(client, "toshima")  # municipality staff
    assert client.get("/counter").status_code == 403


def test_my_page_card_login_suspension_and_csrf(client: TestClient, database: Database) -> None:
    form = client.get("/mypage/login/card").text
    bad = client.post("/mypage/login/card", data={"csrf_token": _csrf(form), "card": "../x"})
    assert (
        bad.status_code == 422 and client.get("/mypage", follow_redirects=False).status_code == 303
    )

    done = client.post(
        "/mypage/login/card",
        data={"csrf_token": _csrf(form), "card": "A01B02C3", "next": "/mypage"},
    )
    assert done.status_code == 200 and "A01B02C3" in done.text
    card_key = cards_of(database.uow(), "A01B02C3")[0].card_key
    confirm = client.get(f"/mypage/cards/{card_key}/suspend")
    assert confirm.status_code == 200
    forged = client.post(f"/mypage/cards/{card_key}/suspend", data={"confirm": "yes"})
    assert forged.status_code == 403
    assert not cards_of(database.uow(), "A01B02C3")[0].suspended
    client.post(
        f"/mypage/cards/{card_key}/suspend",
        data={"csrf_token": _csrf(confirm.text), "confirm": "yes"},
    )
    assert cards_of(database.uow(), "A01B02C3")[0].suspended
    other = cards_of(database.uow(), "MY123456")[0].card_key
    assert client.get(f"/mypage/cards/{other}/suspend").status_code == 404  # not mine
