"""R1 and R2 end to end through HTTP with simulator cards (SQLite and PostgreSQL).

A resident creates a MyKey ID, logs in both ways, links at two libraries of a zone, is looked
up at each, renews the card, loses it (every lookup refused), and finds every step in the
usage history. Each role sees only its own.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from mykey.identity.keys import create_key
from mykey.identity.links import add_provider, add_zone
from mykey.identity.simulator import SimulatedCard
from tests.api.conftest import PASSWORD, bearer, proof
from tests.conftest import Database


@pytest.fixture
def town(database: Database, card_client: TestClient) -> dict[str, Any]:
    uow = database.uow()
    add_zone(uow, zone_id="omuta", name="有明圏域図書館")
    for pid, name, code, zone in (
        ("A1", "大牟田市立図書館", "402028", "omuta"),
        ("B1", "柳川市立図書館", "402079", "omuta"),
        ("X1", "ほかの町の図書館", "131164", None),
    ):
        add_provider(
            uow, provider_id=pid, name=name, kind="library", municipality=code, zone_id=zone
        )
    keys = {
        "A1-terminal": create_key(uow, role="terminal", label="A1 desk", provider_id="A1")[0],
        "B1-terminal": create_key(uow, role="terminal", label="B1 desk", provider_id="B1")[0],
        "B1-staff": create_key(uow, role="provider_staff", label="B1 staff", provider_id="B1")[0],
        "X1-staff": create_key(uow, role="provider_staff", label="X1 staff", provider_id="X1")[0],
        "operator": create_key(uow, role="operator", label="council")[0],
    }
    return {"client": card_client, "keys": keys}


def test_one_card_at_every_library_of_the_zone(
    town: dict[str, Any], cards: list[SimulatedCard]
) -> None:
    client: TestClient = town["client"]
    keys: dict[str, str] = town["keys"]
    card, renewed, _ = cards

    created = client.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(client, card), "password": PASSWORD, "mykey_id": "MY123456"},
    )
    assert created.status_code == 201
    by_password = client.post(
        "/api/v1/sessions", json={"mykey_id": "MY123456", "password": PASSWORD}
    ).json()["token"]
    by_card = client.post("/api/v1/sessions", json={"card_proof": proof(client, card)})
    assert by_card.json()["mykey_id"] == "MY123456"

    # The resident links their library card number at A1 in My Page…
    mine = client.post(
        "/api/v1/me/links",
        headers=bearer(by_password),
        json={"provider_id": "A1", "user_number": "789145"},
    )
    assert mine.status_code == 201
    # …and the staff of B1, in the same zone, link them without a new card proof.
    zone_link = client.post(
        "/api/v1/provider/links",
        headers=bearer(keys["B1-staff"]),
        json={"user_number": "234209", "mykey_id": "my123456"},
    )
    assert zone_link.status_code == 201, zone_link.json()
    # Outside the zone, staff need the card.
    outside = client.post(
        "/api/v1/provider/links",
        headers=bearer(keys["X1-staff"]),
        json={"user_number": "555", "mykey_id": "MY123456"},
    )
    assert (outside.status_code, outside.json()["code"]) == (404, "card_proof_required")

    # At each counter the card gives that library's own number.
    for terminal, number in (("A1-terminal", "789145"), ("B1-terminal", "234209")):
        found = client.post(
            "/api/v1/terminal/lookups",
            headers=bearer(keys[terminal]),
            json={"card_proof": proof(client, card), "purpose": "lending"},
        )
        assert found.status_code == 200, found.json()
        assert found.json()["user_number"] == number

    # A renewed card is the same MyKey ID; the old one, lost, is refused everywhere.
    linked = client.post(
        "/api/v1/me/cards",
        headers=bearer(by_password),
        json={"new_card_proof": proof(client, renewed), "old_card_proof": proof(client, card)},
    )
    assert linked.status_code == 201
    assert (
        client.post(
            f"/api/v1/me/cards/{card.card_key}/suspend", headers=bearer(by_password)
        ).status_code
        == 204
    )
    for terminal in ("A1-terminal", "B1-terminal"):
        refused = client.post(
            "/api/v1/terminal/lookups",
            headers=bearer(keys[terminal]),
            json={"card_proof": proof(client, card)},
        )
        assert (refused.status_code, refused.json()["code"]) == (409, "card_revoked")
    renewed_lookup = client.post(
        "/api/v1/terminal/lookups",
        headers=bearer(keys["A1-terminal"]),
        json={"card_proof": proof(client, renewed)},
    )
    assert renewed_lookup.json()["user_number"] == "789145"

    history = client.get("/api/v1/me/history", headers=bearer(by_password)).json()
    actions = [(e["action"], e["provider_id"]) for e in reversed(history)]
    for step in [
        ("create", None),
        ("login", None),
        ("link", "A1"),
        ("link", "B1"),
        ("lookup", "A1"),
        ("lookup", "B1"),
        ("card_linked", None),
        ("card_suspended", None),
        ("failed_proof", None),
    ]:
        assert step in actions, step
    lending = [e for e in history if e["action"] == "lookup" and e["provider_id"] == "B1"]
    assert lending[0]["purpose"] == "lending"
    assert lending[0]["actor"].startswith("terminal:")
    operator_view = client.get(
        "/api/v1/operator/mykey-ids/MY123456/history", headers=bearer(keys["operator"])
    )
    assert [e["id"] for e in operator_view.json()] == [e["id"] for e in history]


def test_each_role_sees_only_its_own(town: dict[str, Any], cards: list[SimulatedCard]) -> None:
    client: TestClient = town["client"]
    keys: dict[str, str] = town["keys"]
    card, other, _ = cards
    client.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(client, card), "password": PASSWORD, "mykey_id": "MY123456"},
    )
    client.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(client, other), "password": PASSWORD, "mykey_id": "OTHER001"},
    )
    token = client.post(
        "/api/v1/sessions", json={"mykey_id": "MY123456", "password": PASSWORD}
    ).json()["token"]
    client.post(
        "/api/v1/me/links", headers=bearer(token), json={"provider_id": "A1", "user_number": "1"}
    )

    # B1's terminal never reads A1's numbers: for B1 this card is simply not linked.
    at_b1 = client.post(
        "/api/v1/terminal/lookups",
        headers=bearer(keys["B1-terminal"]),
        json={"card_proof": proof(client, card)},
    )
    assert (at_b1.status_code, at_b1.json()["code"]) == (404, "not_linked")
    assert "1" not in str(at_b1.json().get("details", ""))
    # Keys do only their own role's work.
    wrong_role = client.post(
        "/api/v1/terminal/lookups",
        headers=bearer(keys["B1-staff"]),
        json={"card_proof": proof(client, card)},
    )
    assert (wrong_role.status_code, wrong_role.json()["code"]) == (403, "forbidden")
    not_operator = client.get(
        "/api/v1/operator/mykey-ids/MY123456/history", headers=bearer(keys["A1-terminal"])
    )
    assert not_operator.json()["code"] == "forbidden"
    no_key = client.post("/api/v1/terminal/lookups", json={"card_proof": proof(client, card)})
    assert (no_key.status_code, no_key.json()["code"]) == (401, "invalid_api_key")
    forged = client.post(
        "/api/v1/terminal/lookups",
        headers=bearer(keys["A1-terminal"][:-2] + "xx"),
        json={"card_proof": proof(client, card)},
    )
    assert forged.status_code == 401
    # A resident sees their own links and history, not another's.
    other_token = client.post(
        "/api/v1/sessions", json={"mykey_id": "OTHER001", "password": PASSWORD}
    ).json()["token"]
    assert client.get("/api/v1/me/links", headers=bearer(other_token)).json() == []
    assert all(
        e["action"] in ("create", "login")
        for e in client.get("/api/v1/me/history", headers=bearer(other_token)).json()
    )
    # A user number belongs to one MyKey ID at a provider.
    taken = client.post(
        "/api/v1/me/links",
        headers=bearer(other_token),
        json={"provider_id": "A1", "user_number": "1"},
    )
    assert (taken.status_code, taken.json()["code"]) == (409, "user_number_taken")


def test_service_ids_find_the_mykey_id(
    town: dict[str, Any], database: Database, cards: list[SimulatedCard]
) -> None:
    from mykey.identity.links import mykey_id_for_service

    client: TestClient = town["client"]
    client.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(client, cards[0]), "password": PASSWORD, "mykey_id": "MY123456"},
    )
    token = client.post(
        "/api/v1/sessions", json={"mykey_id": "MY123456", "password": PASSWORD}
    ).json()["token"]
    added = client.post(
        "/api/v1/me/service-ids",
        headers=bearer(token),
        json={"service": "jal", "external_id": "JMB-12345678"},
    )
    assert added.status_code == 201
    assert client.get("/api/v1/me/service-ids", headers=bearer(token)).json() == [
        {"service": "jal", "external_id": "JMB-12345678"}
    ]
    assert (
        mykey_id_for_service(database.uow(), service="jal", external_id="JMB-12345678")
        == "MY123456"
    )


def test_staff_link_with_the_card_unlink_and_an_operator_suspends(
    town: dict[str, Any], cards: list[SimulatedCard]
) -> None:
    client: TestClient = town["client"]
    keys: dict[str, str] = town["keys"]
    card = cards[0]
    client.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(client, card), "password": PASSWORD, "mykey_id": "MY123456"},
    )
    at_desk = client.post(
        "/api/v1/provider/links",
        headers=bearer(keys["X1-staff"]),
        json={"user_number": "X-0042", "card_proof": proof(client, card)},
    )
    assert at_desk.status_code == 201
    assert at_desk.json()["mykey_id"] == "MY123456"
    again = client.post(
        "/api/v1/provider/links",
        headers=bearer(keys["X1-staff"]),
        json={"user_number": "X-0043", "card_proof": proof(client, card)},
    )
    assert (again.status_code, again.json()["code"]) == (409, "already_linked")
    gone = client.delete("/api/v1/provider/links/MY123456", headers=bearer(keys["X1-staff"]))
    assert gone.status_code == 204
    twice = client.delete("/api/v1/provider/links/MY123456", headers=bearer(keys["X1-staff"]))
    assert (twice.status_code, twice.json()["code"]) == (404, "not_linked")

    suspended = client.post(
        f"/api/v1/operator/cards/{card.card_key}/suspend", headers=bearer(keys["operator"])
    )
    assert suspended.status_code == 204
    refused = client.post("/api/v1/sessions", json={"card_proof": proof(client, card)})
    assert refused.json()["code"] == "card_revoked"
    history = client.get(
        "/api/v1/operator/mykey-ids/MY123456/history", headers=bearer(keys["operator"])
    ).json()
    assert [e["action"] for e in history][:4] == [
        "failed_proof",
        "card_suspended",
        "unlink",
        "link",
    ]


def test_a_lookup_names_its_holder_and_may_expect_the_same_one(
    town: dict[str, Any], cards: list[SimulatedCard]
) -> None:
    """Issue #13: a library lookup says whose number it is (masked) and gives a binding; a
    later lookup that expects that holder refuses another card."""
    client: TestClient = town["client"]
    keys: dict[str, str] = town["keys"]
    for card, mykey_id in ((cards[0], "MY123456"), (cards[1], "MY654321")):
        made = client.post(
            "/api/v1/mykey-ids",
            json={"card_proof": proof(client, card), "password": PASSWORD, "mykey_id": mykey_id},
        )
        assert made.status_code == 201, made.json()
        token = client.post(
            "/api/v1/sessions", json={"mykey_id": mykey_id, "password": PASSWORD}
        ).json()["token"]
        client.post(
            "/api/v1/me/links",
            headers=bearer(token),
            json={"provider_id": "A1", "user_number": f"U{mykey_id[2:]}"},
        )
    found = client.post(
        "/api/v1/terminal/lookups",
        headers=bearer(keys["A1-terminal"]),
        json={"card_proof": proof(client, cards[0])},
    )
    assert found.status_code == 200, found.json()
    assert (found.json()["user_number"], found.json()["holder"]) == ("U123456", "MY12****")
    expected = found.json()["holder_binding"]["token"]
    other = client.post(
        "/api/v1/terminal/lookups",
        headers=bearer(keys["A1-terminal"]),
        json={"card_proof": proof(client, cards[1]), "expected_holder": expected},
    )
    assert other.status_code == 409 and other.json()["code"] == "wrong_card"
    # told in words that fit a library (no points were shown there)
    assert "先ほど表示したお客様" in other.json()["detail_ja"]
    assert "points were shown" not in other.json()["detail_en"]
    same = client.post(
        "/api/v1/terminal/lookups",
        headers=bearer(keys["A1-terminal"]),
        json={"card_proof": proof(client, cards[0]), "expected_holder": expected},
    )
    assert same.status_code == 200 and same.json()["user_number"] == "U123456"
