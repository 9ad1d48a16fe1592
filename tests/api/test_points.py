"""A municipality sets up its program, staff grant points, the resident sees them (HTTP)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mykey.demo import MUNICIPALITIES
from mykey.identity.keys import create_key
from mykey.identity.simulator import SimulatedCard
from mykey.municipalities.registry import upsert
from tests.api.conftest import PASSWORD, bearer, proof
from tests.conftest import Database

OGUNI, TENRI = "434248", "292044"
PROGRAM = {
    "point_name": "小国町北里柴三郎ポイント",
    "terms": "1ポイント＝1円。町内の加盟店で使えます。",
    "validity": {"budget": None, "partner": 6},
    "usable_at": ["shop", "hot_spring", "museum"],
    "rules": [
        {"activity": "volunteer", "name": "ボランティア", "points": 200},
        {"activity": "health_walk", "name": "健康ウォークラリー", "points": 500},
    ],
}


@pytest.fixture
def staff(database: Database) -> dict[str, str]:
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    return {
        "oguni": create_key(uow, role="municipality_staff", label="小国町", municipality=OGUNI)[0],
        "tenri": create_key(uow, role="municipality_staff", label="天理市", municipality=TENRI)[0],
        "operator": create_key(uow, role="operator", label="council")[0],
    }


def resident(client: TestClient, card: SimulatedCard) -> str:
    client.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(client, card), "password": PASSWORD, "mykey_id": "MY123456"},
    )
    token = client.post(
        "/api/v1/sessions", json={"mykey_id": "MY123456", "password": PASSWORD}
    ).json()["token"]
    return str(token)


def test_program_grants_and_the_residents_points(
    card_client: TestClient, staff: dict[str, str], cards: list[SimulatedCard]
) -> None:
    client = card_client
    set_up = client.put(
        f"/api/v1/municipalities/{OGUNI}/program", headers=bearer(staff["oguni"]), json=PROGRAM
    )
    assert set_up.status_code == 200, set_up.json()
    assert set_up.json()["municipality"] == "熊本県小国町"
    tenri = PROGRAM | {"point_name": "天理市ポイント", "rules": []}
    assert (
        client.put(
            f"/api/v1/municipalities/{TENRI}/program", headers=bearer(staff["operator"]), json=tenri
        ).status_code
        == 200
    )
    assert [p["code"] for p in client.get("/api/v1/programs").json()] == [TENRI, OGUNI]
    token = resident(client, cards[0])

    walk = client.post(
        f"/api/v1/municipalities/{OGUNI}/grants",
        headers=bearer(staff["oguni"]),
        json={
            "mykey_id": "my123456",
            "activity": "health_walk",
            "reason": "秋のラリー",
            "key": "g-1",
        },
    )
    assert walk.status_code == 201, walk.json()
    assert (walk.json()["points"], walk.json()["balance"]) == (500, 500)
    assert walk.json()["expires_on"] == "2027-03-31"  # end of the fiscal year (test clock: 2026-10)
    again = client.post(
        f"/api/v1/municipalities/{OGUNI}/grants",
        headers=bearer(staff["oguni"]),
        json={
            "mykey_id": "my123456",
            "activity": "health_walk",
            "reason": "秋のラリー",
            "key": "g-1",
        },
    )
    assert again.json()["replayed"] is True
    assert again.json()["transfer_id"] == walk.json()["transfer_id"]
    wedding = client.post(
        f"/api/v1/municipalities/{TENRI}/grants",
        headers=bearer(staff["tenri"]),
        json={"mykey_id": "MY123456", "points": 3000, "reason": "結婚祝い", "key": "w-1"},
    )
    assert wedding.status_code == 201

    mine = client.get("/api/v1/me/points", headers=bearer(token)).json()
    assert mine["reserved"] == 0
    held = {h["municipality"]: h for h in mine["holdings"]}
    assert held[OGUNI]["point_name"] == "小国町北里柴三郎ポイント"
    assert held[OGUNI]["balance"] == 500
    assert held[OGUNI]["lots"] == [
        {"funding": "budget", "expires_on": "2027-03-31", "remaining": 500}
    ]
    assert held[TENRI]["balance"] == 3000
    history = client.get("/api/v1/me/points/history?limit=1", headers=bearer(token)).json()
    assert [(e["municipality"], e["change"]) for e in history["entries"]] == [(TENRI, 3000)]
    older = client.get(
        f"/api/v1/me/points/history?before={history['next_before']}", headers=bearer(token)
    ).json()
    assert [(e["municipality"], e["change"]) for e in older["entries"]] == [(OGUNI, 500)]


def test_refusals_change_nothing(
    card_client: TestClient, staff: dict[str, str], cards: list[SimulatedCard]
) -> None:
    client = card_client
    client.put(
        f"/api/v1/municipalities/{OGUNI}/program", headers=bearer(staff["oguni"]), json=PROGRAM
    )
    token = resident(client, cards[0])
    grants = f"/api/v1/municipalities/{OGUNI}/grants"
    for headers, body, status, code in (
        (
            staff["tenri"],
            {"mykey_id": "MY123456", "points": 1, "reason": "x", "key": "k1"},
            403,
            "forbidden",
        ),
        (
            staff["oguni"],
            {"mykey_id": "MY123456", "activity": "karaoke", "reason": "x", "key": "k2"},
            404,
            "unknown_activity",
        ),
        (
            staff["oguni"],
            {"mykey_id": "NOBODY00", "points": 5, "reason": "x", "key": "k3"},
            404,
            "unknown_mykey_id",
        ),
        (
            staff["oguni"],
            {
                "mykey_id": "MY123456",
                "points": 5,
                "activity": "volunteer",
                "reason": "x",
                "key": "k4",
            },
            422,
            "invalid_grant",
        ),
        (
            staff["oguni"],
            {"mykey_id": "MY123456", "points": 0, "reason": "x", "key": "k5"},
            422,
            "invalid_points",
        ),
        (
            staff["oguni"],
            {"mykey_id": "MY123456", "points": 5, "reason": "x", "key": "bad key"},
            422,
            "invalid_idempotency_key",
        ),
    ):
        response = client.post(grants, headers=bearer(headers), json=body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    assert (
        client.post(
            f"/api/v1/municipalities/{TENRI}/grants",
            headers=bearer(staff["tenri"]),
            json={"mykey_id": "MY123456", "points": 5, "reason": "x", "key": "k6"},
        ).json()["code"]
        == "no_program"
    )
    bad_program = client.put(
        f"/api/v1/municipalities/{OGUNI}/program",
        headers=bearer(staff["oguni"]),
        json=PROGRAM | {"usable_at": ["casino"]},
    )
    assert (bad_program.status_code, bad_program.json()["code"]) == (422, "invalid_places")
    other_town = client.put(
        f"/api/v1/municipalities/{TENRI}/program", headers=bearer(staff["oguni"]), json=PROGRAM
    )
    assert other_town.json()["code"] == "forbidden"
    assert client.get("/api/v1/me/points", headers=bearer(token)).json()["holdings"] == []


def test_rule_limits_and_the_annual_budget(
    card_client: TestClient, staff: dict[str, str], database: Database, cards: list[SimulatedCard]
) -> None:
    client = card_client
    program = PROGRAM | {
        "annual_budget": 1000,
        "rules": [
            {"activity": "event", "name": "イベント参加", "points": 100, "limit": "event"},
            {"activity": "exercise", "name": "健康体操", "points": 20, "limit": "day"},
            {"activity": "checkup", "name": "特定健診", "points": 500, "limit": "year"},
        ],
    }
    assert (
        client.put(
            f"/api/v1/municipalities/{OGUNI}/program", headers=bearer(staff["oguni"]), json=program
        ).json()["annual_budget"]
        == 1000
    )
    resident(client, cards[0])
    n = iter(range(100))

    def grant(**body: object) -> tuple[int, str | None]:
        response = client.post(
            f"/api/v1/municipalities/{OGUNI}/grants",
            headers=bearer(staff["oguni"]),
            json={"mykey_id": "MY123456", "reason": "test", "key": f"k-{next(n)}"} | body,
        )
        return response.status_code, response.json().get("code")

    assert grant(activity="event") == (422, "event_required")
    assert grant(activity="event", event="花火大会")[0] == 201
    assert grant(activity="event", event="花火大会") == (409, "limit_reached")
    assert grant(activity="event", event="清掃活動")[0] == 201
    assert grant(activity="exercise")[0] == 201
    assert grant(activity="exercise") == (409, "limit_reached")
    database.clock.advance(days=1)
    assert grant(activity="exercise")[0] == 201
    assert grant(activity="checkup")[0] == 201
    assert grant(activity="checkup") == (409, "limit_reached")
    # 100 + 100 + 20 + 20 + 500 = 740 of 1,000 granted this fiscal year
    assert grant(points=261) == (409, "budget_exceeded")
    assert grant(points=260)[0] == 201
    assert grant(points=1) == (409, "budget_exceeded")
    database.clock.advance(days=200)  # into the next fiscal year (April)
    assert grant(points=500)[0] == 201  # a new year, a new budget
    assert grant(activity="checkup")[0] == 201  # and a new yearly limit
    assert grant(points=1) == (409, "budget_exceeded")


def test_a_grant_at_an_event_desk_by_card(
    card_client: TestClient, staff: dict[str, str], cards: list[SimulatedCard]
) -> None:
    client = card_client
    client.put(
        f"/api/v1/municipalities/{OGUNI}/program", headers=bearer(staff["oguni"]), json=PROGRAM
    )
    resident(client, cards[0])
    at_desk = client.post(
        f"/api/v1/municipalities/{OGUNI}/grants",
        headers=bearer(staff["oguni"]),
        json={
            "card_proof": proof(client, cards[0]),
            "activity": "volunteer",
            "reason": "清掃",
            "key": "d-1",
        },
    )
    assert at_desk.status_code == 201, at_desk.json()
    assert (at_desk.json()["mykey_id"], at_desk.json()["points"]) == ("MY123456", 200)
    unknown_card = client.post(
        f"/api/v1/municipalities/{OGUNI}/grants",
        headers=bearer(staff["oguni"]),
        json={
            "card_proof": proof(client, cards[1]),
            "activity": "volunteer",
            "reason": "x",
            "key": "d-2",
        },
    )
    assert (unknown_card.status_code, unknown_card.json()["code"]) == (404, "card_not_registered")
    both = client.post(
        f"/api/v1/municipalities/{OGUNI}/grants",
        headers=bearer(staff["oguni"]),
        json={
            "mykey_id": "MY123456",
            "card_proof": proof(client, cards[0]),
            "points": 1,
            "reason": "x",
            "key": "d-3",
        },
    )
    assert (both.status_code, both.json()["code"]) == (422, "invalid_grant")


def test_an_event_desk_grant_looks_its_key_up_before_the_card_proof(
    card_client: TestClient, staff: dict[str, str], database: Database, cards: list[SimulatedCard]
) -> None:
    """The answer to a grant by card is lost; the desk sends the very same bytes again (the
    card proof's challenge used): the first receipt, `replayed`, nothing granted twice. A
    refused grant by card keeps the tap and its refusal; a failed proof is not kept under
    the key, so the right tap may follow with it."""
    client = card_client
    program = PROGRAM | {
        "annual_budget": 250,
        "rules": [{"activity": "event", "name": "イベント参加", "points": 100, "limit": "event"}],
    }
    client.put(
        f"/api/v1/municipalities/{OGUNI}/program", headers=bearer(staff["oguni"]), json=program
    )
    resident(client, cards[0])
    url = f"/api/v1/municipalities/{OGUNI}/grants"

    def desk(body: dict[str, object]) -> tuple[int, dict[str, object]]:
        got = client.post(url, headers=bearer(staff["oguni"]), json=body)
        return got.status_code, got.json()

    body = {
        "card_proof": proof(client, cards[0]),
        "activity": "event",
        "event": "花火大会",
        "reason": "参加",
        "key": "desk-lost",
    }
    first = desk(body)
    assert first[0] == 201, first
    transfers, uses = database.count("ledger_transfers"), database.count("card_challenge_uses")
    again = desk(body)
    assert again[0] == 201, again
    assert again[1]["replayed"] is True
    assert again[1]["transfer_id"] == first[1]["transfer_id"]
    assert (database.count("ledger_transfers"), database.count("card_challenge_uses")) == (
        transfers,
        uses,
    )
    by_id = {k: v for k, v in body.items() if k != "card_proof"} | {"mykey_id": "MY123456"}
    assert desk(by_id)[1]["replayed"] is True  # the same request, the resident named by ID
    other = desk(body | {"event": "清掃活動"})
    assert (other[0], other[1]["code"]) == (409, "idempotency_key_reused")
    assert database.count("card_proof_attempts") == 0

    # refused by the budget: the tap stays usable, and the refusal is kept under the key
    tapped = proof(client, cards[0])
    over = desk({"card_proof": tapped, "points": 200, "reason": "x", "key": "desk-over"})
    assert (over[0], over[1]["code"]) == (409, "budget_exceeded")
    assert database.count("card_challenge_uses") == uses
    kept = desk(
        {"card_proof": proof(client, cards[0]), "points": 200, "reason": "x", "key": "desk-over"}
    )
    assert (kept[0], kept[1]["code"]) == (409, "budget_exceeded")
    assert kept[1]["details"]["replayed"] is True
    fits = desk({"card_proof": tapped, "points": 150, "reason": "x", "key": "desk-fits"})
    assert fits[0] == 201, fits  # the same tap, put right

    # a forged proof is recorded and not kept: the honest tap then grants under the same key
    forged = proof(client, cards[0]) | {"signature": proof(client, cards[1])["signature"]}
    bad = desk(body | {"card_proof": forged, "event": "秋祭り", "key": "desk-forged"})
    assert (bad[0], bad[1]["code"]) == (409, "bad_signature")
    assert database.count("card_proof_attempts") == 1
    client.put(
        f"/api/v1/municipalities/{OGUNI}/program",
        headers=bearer(staff["oguni"]),
        json=program | {"annual_budget": 1000},
    )
    honest = desk(
        body | {"card_proof": proof(client, cards[0]), "event": "秋祭り", "key": "desk-forged"}
    )
    assert honest[0] == 201, honest
