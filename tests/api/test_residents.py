"""R1 through HTTP with simulator cards: MyKey IDs, logins, sessions, renewed and lost cards."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from mykey.identity.simulator import SimulatedCard
from tests.api.conftest import PASSWORD, bearer, proof
from tests.conftest import Database


@pytest.fixture
def client(card_client: TestClient) -> TestClient:
    return card_client


def create(client: TestClient, card: SimulatedCard, mykey_id: str | None = "my123456") -> str:
    body: dict[str, object] = {"card_proof": proof(client, card), "password": PASSWORD}
    if mykey_id is not None:
        body["mykey_id"] = mykey_id
    response = client.post("/api/v1/mykey-ids", json=body)
    assert response.status_code == 201, response.json()
    return str(response.json()["mykey_id"])


def login(client: TestClient, mykey_id: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/sessions", json={"mykey_id": mykey_id, "password": password})


def test_create_log_in_both_ways_and_log_out(
    client: TestClient, cards: list[SimulatedCard]
) -> None:
    assert create(client, cards[0]) == "MY123456"

    by_password = login(client, "my123456")
    assert by_password.status_code == 201
    token = by_password.json()["token"]
    me = client.get("/api/v1/me", headers=bearer(token)).json()
    assert me["mykey_id"] == "MY123456"
    assert [c["card_key"] for c in me["cards"]] == [cards[0].card_key]

    by_card = client.post("/api/v1/sessions", json={"card_proof": proof(client, cards[0])})
    assert by_card.status_code == 201
    assert by_card.json()["mykey_id"] == "MY123456"

    assert client.delete("/api/v1/sessions/current", headers=bearer(token)).status_code == 204
    after = client.get("/api/v1/me", headers=bearer(token))
    assert after.status_code == 401
    assert after.json()["code"] == "invalid_session"
    assert client.get("/api/v1/me").json()["code"] == "login_required"


def test_a_suggested_id_and_the_refusals_of_creation(
    client: TestClient, cards: list[SimulatedCard]
) -> None:
    suggested = client.get("/api/v1/mykey-ids/suggestions").json()["suggestions"]
    assert len(suggested) == 3
    assert all(len(s) == 8 and s.isalnum() and s.isupper() for s in suggested)
    mine = create(client, cards[0], mykey_id=None)
    assert len(mine) == 8

    again = client.post(
        "/api/v1/mykey-ids", json={"card_proof": proof(client, cards[0]), "password": PASSWORD}
    )
    assert (again.status_code, again.json()["code"]) == (409, "card_already_registered")
    taken = client.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(client, cards[1]), "password": PASSWORD, "mykey_id": mine},
    )
    assert (taken.status_code, taken.json()["code"]) == (409, "mykey_id_taken")
    for bad_id, code in (("SHORT", "invalid_mykey_id"), ("MY-12345", "invalid_mykey_id")):
        response = client.post(
            "/api/v1/mykey-ids",
            json={"card_proof": proof(client, cards[1]), "password": PASSWORD, "mykey_id": bad_id},
        )
        assert (response.status_code, response.json()["code"]) == (422, code)
    weak = client.post(
        "/api/v1/mykey-ids", json={"card_proof": proof(client, cards[1]), "password": "short"}
    )
    assert (weak.status_code, weak.json()["code"]) == (422, "weak_password")


def test_failures_slow_down_then_lock_without_telling_who_exists(
    client: TestClient, database: Database, cards: list[SimulatedCard]
) -> None:
    create(client, cards[0])
    wrong = login(client, "MY123456", "wrong password")
    nobody = login(client, "NOBODY00", "wrong password")
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() | {"instance": ""} == nobody.json() | {"instance": ""}

    login(client, "MY123456", "wrong again")
    login(client, "MY123456", "and again")
    throttled = login(client, "MY123456", PASSWORD)  # right password, but too soon
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "login_throttled"

    database.clock.advance(seconds=2)
    login(client, "MY123456", "fourth")
    database.clock.advance(seconds=4)
    login(client, "MY123456", "fifth")
    database.clock.advance(seconds=60)
    locked = login(client, "MY123456", PASSWORD)
    assert locked.json()["code"] == "login_locked"
    database.clock.advance(minutes=16)
    assert login(client, "MY123456", PASSWORD).status_code == 201


def test_sessions_expire(
    client: TestClient, database: Database, cards: list[SimulatedCard]
) -> None:
    create(client, cards[0])
    token = login(client, "MY123456").json()["token"]
    database.clock.advance(hours=2, seconds=1)
    assert client.get("/api/v1/me", headers=bearer(token)).json()["code"] == "invalid_session"


def test_a_renewed_card_joins_the_id_and_a_lost_one_is_refused_everywhere(
    client: TestClient, cards: list[SimulatedCard]
) -> None:
    old, renewed, reissued = cards
    create(client, old)
    token = login(client, "MY123456").json()["token"]

    by_old_card = client.post(
        "/api/v1/me/cards",
        headers=bearer(token),
        json={"new_card_proof": proof(client, renewed), "old_card_proof": proof(client, old)},
    )
    assert by_old_card.status_code == 201, by_old_card.json()
    wrong_password = client.post(
        "/api/v1/me/cards",
        headers=bearer(token),
        json={"new_card_proof": proof(client, reissued), "password": "not it at all"},
    )
    assert wrong_password.status_code == 401
    by_password = client.post(
        "/api/v1/me/cards",
        headers=bearer(token),
        json={"new_card_proof": proof(client, reissued), "password": PASSWORD},
    )
    assert by_password.status_code == 201
    via_new = client.post("/api/v1/sessions", json={"card_proof": proof(client, reissued)})
    assert via_new.json()["mykey_id"] == "MY123456"
    # each newer card replaced the cards linked before it
    for replaced in (old, renewed):
        refused = client.post("/api/v1/sessions", json={"card_proof": proof(client, replaced)})
        assert (refused.status_code, refused.json()["code"]) == (409, "card_replaced")

    lost = client.post(f"/api/v1/me/cards/{old.card_key}/suspend", headers=bearer(token))
    assert lost.status_code == 204
    refused = client.post("/api/v1/sessions", json={"card_proof": proof(client, old)})
    assert (refused.status_code, refused.json()["code"]) == (409, "card_revoked")
    check = client.post("/api/v1/card/verifications", json=proof(client, old))
    assert check.json()["code"] == "card_revoked"
    me = client.get("/api/v1/me", headers=bearer(token)).json()
    assert {c["card_key"]: c["suspended"] for c in me["cards"]} == {
        old.card_key: True,
        renewed.card_key: False,
        reissued.card_key: False,
    }
    foreign = client.post(f"/api/v1/me/cards/{'0' * 64}/suspend", headers=bearer(token))
    assert (foreign.status_code, foreign.json()["code"]) == (404, "unknown_card")


def test_failures_from_one_address_lock_it_whatever_the_ids(
    client: TestClient, cards: list[SimulatedCard]
) -> None:
    create(client, cards[0])
    for n in range(5):
        login(client, f"GUESS00{n}", "wrong password")
    locked = login(client, "MY123456", PASSWORD)
    assert (locked.status_code, locked.json()["code"]) in (
        (429, "login_locked"),
        (429, "login_throttled"),
    )
    assert locked.json()["details"]["retry_after"] >= 1
