"""Renewal (R1.4) through HTTP on both engines: once a renewed card of the same person is linked
to the MyKey ID, the older card stops paying and looking up (at once, or after the grace period
`MYKEY_REPLACED_CARD_GRACE_HOURS`), with its own refusal `card_replaced`; the new card works; the
refused attempts are in the usage history; My Page and `GET /api/v1/me` show the card replaced,
and when. A lost card's suspension keeps working as it did."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mykey.config import Settings
from mykey.demo import MUNICIPALITIES
from mykey.identity.keys import create_key
from mykey.identity.links import add_provider
from mykey.identity.simulator import SimulatedCard, SimulatorCA
from mykey.municipalities.registry import upsert
from mykey.web.app import create_app
from tests.api.conftest import PASSWORD, bearer, proof
from tests.conftest import Database

MAEBASHI = "102016"
WHO = "MY111111"

MakeClient = Callable[[int], TestClient]


@pytest.fixture
def make_client(database: Database, ca: SimulatorCA, tmp_path: Path) -> Iterator[MakeClient]:
    """The app on the test database and clock, trusting the simulator CA, with a grace period
    for replaced cards of this many hours."""
    ca.save(tmp_path / "ca")
    clients: list[TestClient] = []

    def make(grace_hours: int) -> TestClient:
        settings = Settings(
            database_url=database.url,
            environment="test",
            card_trust_anchors=str(tmp_path / "ca" / "ca.pem"),
            replaced_card_grace_hours=grace_hours,
        )
        app = create_app(settings, clock=database.clock)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:  # their lifespans end: each app's background work lets go its lock
        client.__exit__(None, None, None)
        client.app.state.engine.dispose()  # type: ignore[attr-defined]


def _town(c: TestClient, database: Database, old: SimulatedCard) -> dict[str, str]:
    """A program of Maebashi, a museum that takes it and a library, each with a terminal; a
    resident with 3,000 points, linked at the library, and a session of theirs."""
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    staff = create_key(uow, role="municipality_staff", label="前橋市", municipality=MAEBASHI)[0]
    program = {
        "point_name": "前橋市ポイント",
        "validity": {"budget": None},
        "usable_at": ["museum", "shop"],
        "rules": [],
    }
    put = c.put(f"/api/v1/municipalities/{MAEBASHI}/program", headers=bearer(staff), json=program)
    assert put.status_code == 200, put.json()
    museum = c.put(
        "/api/v1/shops/arts-maebashi",
        headers=bearer(staff),
        json={
            "name": "アーツ前橋",
            "municipality": MAEBASHI,
            "kind": "museum",
            "accepts": [MAEBASHI],
        },
    )
    assert museum.status_code == 200, museum.json()
    add_provider(
        uow, provider_id="A1", name="前橋市立図書館", kind="library", municipality=MAEBASHI
    )
    made = c.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(c, old), "password": PASSWORD, "mykey_id": WHO},
    )
    assert made.status_code == 201, made.json()
    token = c.post("/api/v1/sessions", json={"mykey_id": WHO, "password": PASSWORD}).json()["token"]
    linked = c.post(
        "/api/v1/me/links",
        headers=bearer(token),
        json={"provider_id": "A1", "user_number": "789145"},
    )
    assert linked.status_code == 201, linked.json()
    granted = c.post(
        f"/api/v1/municipalities/{MAEBASHI}/grants",
        headers=bearer(staff),
        json={"mykey_id": WHO, "points": 3000, "reason": "テスト付与", "key": "g-1"},
    )
    assert granted.status_code == 201, granted.json()
    return {
        "token": token,
        "staff": staff,
        "museum": create_key(uow, role="terminal", label="受付", provider_id="arts-maebashi")[0],
        "library": create_key(uow, role="terminal", label="A1 desk", provider_id="A1")[0],
    }


def _renew(
    c: TestClient, database: Database, token: str, old: SimulatedCard, new: SimulatedCard
) -> datetime:
    """Link the new card with the old card's proof, a minute later; returns when."""
    database.clock.advance(minutes=1)
    done = c.post(
        "/api/v1/me/cards",
        headers=bearer(token),
        json={"new_card_proof": proof(c, new), "old_card_proof": proof(c, old)},
    )
    assert done.status_code == 201, done.json()
    return database.clock.now


def _every_use(c: TestClient, town: dict[str, str], card: SimulatedCard, n: int) -> list[Any]:
    """The card used for everything a card does: balances and a payment at the museum, a
    voucher, a library lookup, a grant at an event desk, a sign-in, a bare verification."""
    museum, library = bearer(town["museum"]), bearer(town["library"])
    return [
        c.post("/api/v1/terminal/balances", headers=museum, json={"card_proof": proof(c, card)}),
        c.post(
            "/api/v1/terminal/payments",
            headers=museum,
            json={
                "card_proof": proof(c, card),
                "municipality": MAEBASHI,
                "points": 100,
                "key": f"pay-{n}",
            },
        ),
        c.post(
            "/api/v1/terminal/vouchers",
            headers=museum,
            json={
                "card_proof": proof(c, card),
                "municipality": MAEBASHI,
                "points": 100,
                "key": f"voucher-{n}",
            },
        ),
        c.post(
            "/api/v1/terminal/lookups",
            headers=library,
            json={"card_proof": proof(c, card), "purpose": "lending"},
        ),
        c.post(
            f"/api/v1/municipalities/{MAEBASHI}/grants",
            headers=bearer(town["staff"]),
            json={
                "card_proof": proof(c, card),
                "points": 10,
                "reason": "イベント参加",
                "key": f"grant-{n}",
            },
        ),
        c.post("/api/v1/sessions", json={"card_proof": proof(c, card)}),
        c.post("/api/v1/card/verifications", json=proof(c, card)),
    ]


def _balance(c: TestClient, token: str) -> int:
    held = c.get("/api/v1/me/points", headers=bearer(token)).json()
    return sum(h["balance"] for h in held["holdings"] if h["municipality"] == MAEBASHI)


def _ok(answers: list[Any]) -> None:
    assert [a.status_code for a in answers] == [200, 201, 201, 200, 201, 201, 200], [
        a.json() for a in answers
    ]


def test_a_renewed_card_replaces_the_old_one_at_once(
    make_client: MakeClient, database: Database, cards: list[SimulatedCard]
) -> None:
    c = make_client(0)
    old, new, _ = cards
    town = _town(c, database, old)
    _ok(_every_use(c, town, old, 1))  # before the renewal the old card does everything
    assert _balance(c, town["token"]) == 3000 - 100 - 100 + 10

    renewed_at = _renew(c, database, town["token"], old, new)
    before = (database.count("ledger_transfers"), database.count("mykey_usage"))
    refused = _every_use(c, town, old, 2)
    assert [(r.status_code, r.json()["code"]) for r in refused] == [(409, "card_replaced")] * 7
    assert (
        refused[1].json()["detail"]
        == "このカードは新しいカードに切り替えられています。新しいカードをお使いください。"
    )
    english = c.post(
        "/api/v1/terminal/balances",
        headers=bearer(town["museum"]) | {"Accept-Language": "en"},
        json={"card_proof": proof(c, old)},
    )
    assert english.json()["detail"] == "This card was replaced by a newer card; use the new card."
    assert database.count("ledger_transfers") == before[0]  # nothing paid, issued or granted
    assert _balance(c, town["token"]) == 2810

    # every refused use is in the resident's usage history, with its reason
    history = c.get("/api/v1/me/history", headers=bearer(town["token"])).json()
    refusals = [e for e in history if e["action"] == "failed_proof"]
    assert len(refusals) == 8 and {e["purpose"] for e in refusals} == {"card_replaced"}
    assert {e["actor"].split(":")[0] for e in refusals} >= {"terminal", "client"}
    assert database.count("mykey_usage") == before[1] + 8
    assert [e["purpose"] for e in history if e["action"] == "card_replaced"] == [old.card_key[:12]]

    # the new card does all of it, for the same MyKey ID
    _ok(_every_use(c, town, new, 3))
    assert _balance(c, town["token"]) == 2810 - 200 + 10
    lookup = c.post(
        "/api/v1/terminal/lookups",
        headers=bearer(town["library"]),
        json={"card_proof": proof(c, new)},
    )
    assert lookup.json()["user_number"] == "789145"

    me = c.get("/api/v1/me", headers=bearer(town["token"])).json()
    shown = {card["card_key"]: card for card in me["cards"]}
    assert shown[old.card_key]["replaced_by"] == new.card_key
    assert shown[old.card_key]["replaced_at"] == shown[new.card_key]["linked_at"]
    assert datetime.fromisoformat(shown[old.card_key]["replaced_at"]) == renewed_at
    assert datetime.fromisoformat(shown[old.card_key]["usable_until"]) == renewed_at
    assert shown[new.card_key]["replaced_at"] is None
    assert not shown[old.card_key]["suspended"]


def test_within_the_grace_period_the_old_card_still_works(
    make_client: MakeClient, database: Database, cards: list[SimulatedCard]
) -> None:
    c = make_client(24)
    old, new, _ = cards
    town = _town(c, database, old)
    renewed_at = _renew(c, database, town["token"], old, new)

    database.clock.advance(hours=23, minutes=59, seconds=59)
    _ok(_every_use(c, town, old, 1))  # the last second of the grace period
    _ok(_every_use(c, town, new, 2))
    token = c.post("/api/v1/sessions", json={"mykey_id": WHO, "password": PASSWORD}).json()
    me = c.get("/api/v1/me", headers=bearer(token["token"])).json()
    until = {card["card_key"]: card["usable_until"] for card in me["cards"]}[old.card_key]
    assert datetime.fromisoformat(until) == renewed_at + timedelta(hours=24)

    database.clock.advance(seconds=1)  # 24 hours after the new card was linked
    refused = _every_use(c, town, old, 3)
    assert [r.json()["code"] for r in refused] == ["card_replaced"] * 7
    _ok(_every_use(c, town, new, 4))


def test_a_lost_card_is_still_suspended_and_a_replaced_card_stays_replaced(
    make_client: MakeClient, database: Database, cards: list[SimulatedCard]
) -> None:
    c = make_client(24)
    old, renewed, reissued = cards
    town = _town(c, database, old)
    _renew(c, database, town["token"], old, renewed)
    # the old card is lost within the grace period: suspended, it is refused at once
    lost = c.post(f"/api/v1/me/cards/{old.card_key}/suspend", headers=bearer(town["token"]))
    assert lost.status_code == 204
    assert [r.json()["code"] for r in _every_use(c, town, old, 1)] == ["card_revoked"] * 7

    # the renewed card is lost too: a reissued card, linked with the password, replaces it;
    # the suspended cards stay refused
    database.clock.advance(minutes=10)
    lost = c.post(f"/api/v1/me/cards/{renewed.card_key}/suspend", headers=bearer(town["token"]))
    assert lost.status_code == 204
    linked = c.post(
        "/api/v1/me/cards",
        headers=bearer(town["token"]),
        json={"new_card_proof": proof(c, reissued), "password": PASSWORD},
    )
    assert linked.status_code == 201, linked.json()
    _ok(_every_use(c, town, reissued, 2))
    me = c.get("/api/v1/me", headers=bearer(town["token"])).json()
    assert [(x["suspended"], x["replaced_by"]) for x in me["cards"]] == [
        (True, renewed.card_key),
        (True, reissued.card_key),
        (False, None),
    ]
    # linking a card twice changes nothing
    again = c.post(
        "/api/v1/me/cards",
        headers=bearer(town["token"]),
        json={"new_card_proof": proof(c, reissued), "password": PASSWORD},
    )
    assert again.status_code == 201 and again.json()["replaced_at"] is None
    assert database.count("card_replacements") == 2
