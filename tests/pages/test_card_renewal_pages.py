"""A renewed card at the counter and on My Page (R1.4), on both engines: the counter refuses the
replaced card in a clerk's words, for payments and library lookups alike; My Page shows the old
card as replaced, and when, in Japanese and English, and the refused taps in the usage history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mykey import demo
from mykey.config import Settings
from mykey.identity.proofs import VerifiedCard
from mykey.identity.residents import link_new_card
from mykey.identity.simulator import SimulatorCA
from mykey.web.app import create_app
from tests.conftest import Database

OLD, NEW = "MY123456", "MY123456-renewed"  # simulator card names (files in ./var/cards/cards)


@pytest.fixture(params=[0])
def client(
    request: pytest.FixtureRequest,
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    """The demo's data; MY123456's card renewed at 12:01 Tokyo time (a minute after the demo);
    a grace period for replaced cards of `request.param` hours."""
    monkeypatch.chdir(tmp_path)
    ca = SimulatorCA.create(now=database.clock())
    ca.save(tmp_path / "var" / "cards")
    cards = {name: ca.issue(now=database.clock()) for name in (OLD, NEW)}
    (tmp_path / "var" / "cards" / "cards").mkdir()
    for name, card in cards.items():
        (tmp_path / "var" / "cards" / "cards" / f"{name}.json").write_text(card.to_json())
    uow = database.uow()
    demo.load(uow)
    demo.register_residents(uow, {OLD: cards[OLD]})
    demo.register_staff(uow)
    database.clock.advance(minutes=1)
    new = cards[NEW]
    link_new_card(
        uow,
        mykey_id="MY123456",
        new_card=VerifiedCard(new.card_key, new.certificate.not_valid_after_utc),
        password=demo.DEMO_PASSWORD,
    )
    settings = Settings(
        database_url=database.url,
        environment="test",
        card_trust_anchors=str(tmp_path / "var" / "cards" / "ca.pem"),
        replaced_card_grace_hours=request.param,
    )
    app = create_app(settings, clock=database.clock)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def _clerk(client: TestClient, username: str) -> str:
    form = client.get("/login").text
    return client.post(
        "/login",
        data={
            "csrf_token": _csrf(form),
            "username": username,
            "password": demo.DEMO_STAFF_PASSWORD,
            "next": "/counter",
        },
    ).text


REPLACED_JA = "更新前の古いカードです。新しいカードをかざしてください"


def test_the_counter_refuses_the_replaced_card_in_a_clerks_words(
    client: TestClient, database: Database
) -> None:
    home = _clerk(client, "arts-maebashi")
    old = client.post("/counter/tap", data={"csrf_token": _csrf(home), "card": OLD})
    assert REPLACED_JA in old.text
    assert "前橋市ポイント" not in old.text  # no balances shown
    new = client.post("/counter/tap", data={"csrf_token": _csrf(home), "card": NEW})
    assert new.status_code == 200 and "前橋市ポイント" in new.text
    before = database.count("ledger_transfers")
    # The new card's balances were shown; the old card (the same MyKey ID) tapped to confirm.
    binding = re.search(r'name="holder_binding" value="([^"]+)"', new.text)
    assert binding, "the balances page carries the holder binding"
    pay = client.post(
        "/counter/payments",
        data={
            "csrf_token": _csrf(home),
            "card": OLD,
            "municipality": "102016",
            "points": "100",
            "key": "k-old-card",
            "holder_binding": binding.group(1),
        },
    )
    assert REPLACED_JA in pay.text
    assert database.count("ledger_transfers") == before
    english = client.post(
        "/counter/tap?lang=en", data={"csrf_token": _csrf(home), "card": OLD}
    ).text
    assert "This is an old card, replaced by a newer one. Tap the new card" in english
    assert "This card was replaced by a newer card; use the new card." in english  # the detail

    client.post("/logout", data={"csrf_token": _csrf(home)})
    library = _clerk(client, "omuta-library")
    refused = client.post(
        "/counter/lookups?lang=ja", data={"csrf_token": _csrf(library), "card": OLD}
    )
    assert REPLACED_JA in refused.text and "789145" not in refused.text
    found = client.post("/counter/lookups", data={"csrf_token": _csrf(library), "card": NEW})
    assert "789145" in found.text


def test_my_page_shows_the_old_card_replaced_and_when(client: TestClient) -> None:
    form = client.get("/mypage/login/card").text
    old = client.post("/mypage/login/card", data={"csrf_token": _csrf(form), "card": OLD})
    assert old.status_code == 422 and "新しいカードに切り替えられています" in old.text
    signed_in = client.post(
        "/mypage/login/card", data={"csrf_token": _csrf(form), "card": NEW, "next": "/mypage"}
    )
    assert signed_in.status_code == 200 and "MY123456" in signed_in.text

    cards = client.get("/mypage/cards?lang=ja").text
    assert "2026-10-15 12:01 に新しいカードに切り替え済み（使えません）" in cards
    assert cards.count("利用できます") == 1  # the new card
    english = client.get("/mypage/cards?lang=en").text
    assert "Replaced by a newer card on 2026-10-15 12:01 (no longer works)" in english

    usage = client.get("/mypage/usage?lang=en").text
    assert "Card replaced by a newer card" in usage
    assert re.search(r"Failed card check</td><td>[^<]*</td><td></td><td>card_replaced", usage)


@pytest.mark.parametrize("client", [48], indirect=True)
def test_within_the_grace_period_my_page_says_until_when_the_old_card_works(
    client: TestClient, database: Database
) -> None:
    form = client.get("/mypage/login/card").text
    client.post("/mypage/login/card", data={"csrf_token": _csrf(form), "card": OLD})
    cards = client.get("/mypage/cards?lang=ja").text
    assert "2026-10-15 12:01 に新しいカードに切り替え済み（2026-10-17 12:01 まで使えます）" in cards
    english = client.get("/mypage/cards?lang=en").text
    assert "Replaced by a newer card on 2026-10-15 12:01 (works until 2026-10-17 12:01)" in english

    database.clock.advance(hours=48)
    form = client.get("/mypage/login/card").text
    refused = client.post("/mypage/login/card", data={"csrf_token": _csrf(form), "card": OLD})
    assert refused.status_code == 422 and "This card was replaced by a newer card" in refused.text


def test_the_replaced_card_at_the_confirmation_is_told_there_and_the_new_card_pays(
    client: TestClient, database: Database
) -> None:
    """The new card's balances, 100 points confirmed; the customer taps the old card: refused
    on the confirmation itself (not the home page), so the new card can be tapped next, with
    the same confirmation, and pays once."""
    home = _clerk(client, "arts-maebashi")
    shown = client.post("/counter/tap", data={"csrf_token": _csrf(home), "card": NEW})
    binding = re.search(r'name="holder_binding" value="([^"]+)"', shown.text)
    assert binding
    confirm = client.post(
        "/counter/payments/confirm",
        data={
            "csrf_token": _csrf(shown.text),
            "municipality": "102016",
            "points": "100",
            "holder_binding": binding.group(1),
        },
    )
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', confirm.text))
    before = database.count("ledger_transfers")
    old = client.post("/counter/payments", data=fields | {"card": OLD})
    assert old.status_code == 422 and REPLACED_JA in old.text
    assert 'action="/counter/payments"' in old.text  # still the confirmation, for the new card
    again = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', old.text))
    assert again["key"] == fields["key"]
    assert database.count("ledger_transfers") == before
    paid = client.post("/counter/payments", data=again | {"card": NEW}, follow_redirects=False)
    assert paid.status_code == 303 and paid.headers["location"].startswith("/counter/payments/")
    assert database.count("ledger_transfers") == before + 1
