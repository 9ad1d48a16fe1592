"""Partners convert residents' points by ID linkage, signed with HMAC (HTTP, both engines)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from mykey import ledger
from mykey.demo import MUNICIPALITIES
from mykey.identity.keys import create_key
from mykey.identity.simulator import SimulatedCard
from mykey.municipalities.registry import upsert
from mykey.points.partner_keys import sign
from tests.api.conftest import PASSWORD, bearer, proof
from tests.conftest import Database

OGUNI, TENRI, TOSHIMA = "434248", "292044", "131164"
NOT_REGISTERED = "011002"  # a valid code (Sapporo) that the demo list does not hold


class Partner:
    """A partner's server: signs every request with its key and signing secret."""

    def __init__(self, client: TestClient, database: Database, issued: dict[str, str]) -> None:
        self.client, self.database = client, database
        self.api_key, self.secret = issued["api_key"], issued["signing_secret"]
        self.partner = issued["partner"]

    def headers(
        self, body: bytes, *, path: str, secret: str | None = None, age: int = 0
    ) -> dict[str, str]:
        timestamp = str(int(self.database.clock.now.timestamp()) - age)
        signature = sign(secret or self.secret, "POST", path, timestamp, body)
        return {
            **bearer(self.api_key),
            "Content-Type": "application/json",
            "X-MyKey-Timestamp": timestamp,
            "X-MyKey-Signature": signature,
        }

    def convert(self, partner: str | None = None, **fields: Any) -> Response:
        path = f"/api/v1/partners/{partner or self.partner}/conversions"
        body = json.dumps(fields).encode()
        response = self.client.post(path, content=body, headers=self.headers(body, path=path))
        self.database.clock.advance(seconds=1)  # a new timestamp, so a new signature
        return response


@pytest.fixture
def setting(
    card_client: TestClient, database: Database, cards: list[SimulatedCard]
) -> dict[str, Any]:
    client = card_client
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    operator = bearer(create_key(uow, role="operator", label="council")[0])
    for code, name, premium in ((OGUNI, "小国町ポイント", 100), (TENRI, "天理市ポイント", 0)):
        program = {"point_name": name, "usable_at": ["shop"], "premium_permille": premium}
        assert (
            client.put(
                f"/api/v1/municipalities/{code}/program", headers=operator, json=program
            ).status_code
            == 200
        )
    for partner, methods in (("jal", ["id_linkage"]), ("saison", ["coupon_paper"])):
        put = client.put(
            f"/api/v1/partners/{partner}",
            headers=operator,
            json={"name": partner.upper(), "methods": methods},
        )
        assert put.status_code == 200, put.json()
        agreed = client.post(
            f"/api/v1/partners/{partner}/agreements",
            headers=operator,
            json={
                "effective_from": "2026-10-15",
                "rate_units": 1000,
                "rate_points": 1000,
                "minimum": 1000,
                "step": 1000,
                "daily_limit": 10000,
            },
        )
        assert agreed.status_code == 201, agreed.json()
    keys = {
        p: client.post(f"/api/v1/partners/{p}/keys", headers=operator, json={}).json()
        for p in ("jal", "saison")
    }
    client.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(client, cards[0]), "password": PASSWORD, "mykey_id": "MY123456"},
    )
    token = client.post(
        "/api/v1/sessions", json={"mykey_id": "MY123456", "password": PASSWORD}
    ).json()["token"]
    registered = client.post(
        "/api/v1/me/service-ids",
        headers=bearer(token),
        json={"service": "jal", "external_id": "JL-0001"},
    )
    assert registered.status_code == 201
    return {
        "operator": operator,
        "resident": bearer(token),
        "jal": Partner(client, database, keys["jal"]),
        "saison": Partner(client, database, keys["saison"]),
    }


def test_conversions_into_two_municipalities_premium_and_receivables(
    card_client: TestClient, setting: dict[str, Any], database: Database
) -> None:
    client, jal = card_client, setting["jal"]
    oguni = jal.convert(service_id="JL-0001", units=3000, municipality=OGUNI, idempotency_key="c1")
    assert oguni.status_code == 201, oguni.json()
    body = oguni.json()
    assert (body["points"], body["premium"], body["municipality"], body["balance"]) == (
        3000,
        300,
        OGUNI,
        3300,
    )
    tenri = jal.convert(service_id="JL-0001", units=2000, municipality=TENRI, idempotency_key="c2")
    assert (tenri.json()["points"], tenri.json()["premium"]) == (2000, 0)
    retry = jal.convert(service_id="JL-0001", units=3000, municipality=OGUNI, idempotency_key="c1")
    assert retry.status_code == 201
    assert retry.json()["replayed"] is True
    assert retry.json()["conversion_id"] == body["conversion_id"]
    reused = jal.convert(service_id="JL-0001", units=4000, municipality=OGUNI, idempotency_key="c1")
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")
    # The partner rotates its key; a retry of the same conversion with the new key still
    # converts once: the idempotency key belongs to the partner, not to one of its keys.
    rotated = Partner(
        client,
        jal.database,
        client.post("/api/v1/partners/jal/keys", headers=setting["operator"], json={}).json(),
    )
    again = rotated.convert(
        service_id="JL-0001", units=3000, municipality=OGUNI, idempotency_key="c1"
    )
    assert (again.json()["replayed"], again.json()["conversion_id"]) == (
        True,
        body["conversion_id"],
    )

    mine = client.get("/api/v1/me/points", headers=setting["resident"]).json()
    held = {h["municipality"]: h for h in mine["holdings"]}
    assert held[OGUNI]["balance"] == 3300
    assert sorted((lot["funding"], lot["remaining"]) for lot in held[OGUNI]["lots"]) == [
        ("partner", 3000),
        ("premium", 300),
    ]
    assert held[OGUNI]["lots"][0]["expires_on"] == "2027-04-14"  # 6 months
    owed = client.get("/api/v1/partners/jal/receivables", headers=bearer(jal.api_key)).json()
    assert sorted((r["municipality"], r["points"]) for r in owed) == [(TENRI, 2000), (OGUNI, 3000)]
    listed = client.get(
        "/api/v1/partners/jal/conversions?month=2026-10", headers=bearer(jal.api_key)
    )
    assert [c["points"] for c in listed.json()] == [3000, 2000]
    assert (
        client.get(
            "/api/v1/partners/jal/conversions?month=2026-11", headers=setting["operator"]
        ).json()
        == []
    )
    other = client.get(
        "/api/v1/partners/jal/receivables", headers=bearer(setting["saison"].api_key)
    )
    assert (other.status_code, other.json()["code"]) == (403, "forbidden")
    partners = client.get("/api/v1/partners", headers=setting["operator"]).json()
    assert [(p["id"], len(p["agreements"])) for p in partners] == [("jal", 1), ("saison", 1)]
    assert ledger.check(database.uow()).ok


def test_every_refusal_is_clear_and_changes_nothing(
    card_client: TestClient, setting: dict[str, Any], database: Database
) -> None:
    jal, saison = setting["jal"], setting["saison"]
    ok = {"service_id": "JL-0001", "units": 1000, "municipality": OGUNI}
    cases = [
        ({"service_id": "JL-9999"}, 404, "unknown_service_id"),
        ({"municipality": NOT_REGISTERED}, 404, "unknown_municipality"),
        ({"municipality": TOSHIMA}, 409, "not_a_member"),
        ({"municipality": "12345"}, 422, "invalid_municipality_code"),
        ({"units": 1500}, 422, "wrong_step"),
        ({"units": 0}, 422, "invalid_units"),
        ({"units": 11000}, 409, "daily_limit_reached"),
    ]
    for n, (change, status, code) in enumerate(cases):
        answer = jal.convert(**(ok | change), idempotency_key=f"bad-{n}")
        assert (answer.status_code, answer.json().get("code")) == (status, code), change
    not_agreed = saison.convert(**ok, idempotency_key="s1")
    assert (not_agreed.status_code, not_agreed.json()["code"]) == (409, "method_not_agreed")
    elsewhere = saison.convert("jal", **ok, idempotency_key="s2")
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden")
    resident = card_client.post(
        "/api/v1/partners/jal/conversions",
        headers=setting["resident"],
        json=ok | {"idempotency_key": "x"},
    )
    assert resident.status_code == 401
    assert database.count("conversions") == 0
    assert database.count("ledger_transfers") == 0

    below = card_client.post(
        "/api/v1/partners/jal/agreements",
        headers=setting["operator"],
        json={
            "effective_from": "2026-10-20",
            "rate_units": 1000,
            "rate_points": 1000,
            "minimum": 2000,
            "step": 1000,
            "daily_limit": 10000,
        },
    )
    assert below.status_code == 201
    database.clock.advance(days=5)
    under = jal.convert(**ok, idempotency_key="under")
    assert (under.status_code, under.json()["code"]) == (409, "below_minimum")
    assert jal.convert(**(ok | {"units": 2000}), idempotency_key="fine").status_code == 201


def test_hmac_signatures(
    card_client: TestClient, setting: dict[str, Any], database: Database
) -> None:
    client, jal = card_client, setting["jal"]
    path = "/api/v1/partners/jal/conversions"
    body = json.dumps(
        {"service_id": "JL-0001", "units": 1000, "municipality": TENRI, "idempotency_key": "h1"}
    ).encode()

    def post(headers: dict[str, str], content: bytes = body) -> Response:
        return client.post(path, content=content, headers=headers)

    def code(response: Response) -> tuple[int, str]:
        return response.status_code, response.json()["code"]

    assert code(post(jal.headers(body, path=path, secret="not-the-secret"))) == (
        401,
        "bad_signature",
    )
    tampered = body.replace(b"1000", b"9000")
    assert code(post(jal.headers(body, path=path), tampered)) == (401, "bad_signature")
    assert code(post(jal.headers(body, path=path, age=360))) == (401, "stale_timestamp")
    unsigned = {**bearer(jal.api_key), "Content-Type": "application/json"}
    assert code(post(unsigned)) == (401, "signature_required")
    assert database.count("conversions") == 0

    signed = jal.headers(body, path=path)
    good = post(signed)
    assert good.status_code == 201, good.json()
    assert code(post(signed)) == (401, "replayed_signature")
    database.clock.advance(seconds=2)
    again = post(jal.headers(body, path=path))  # a retry, signed again: the same conversion
    assert again.status_code == 201
    assert again.json()["replayed"] is True
    assert again.json()["conversion_id"] == good.json()["conversion_id"]
    assert database.count("conversions") == 1


def test_reserved_points_by_http(
    card_client: TestClient, setting: dict[str, Any], database: Database
) -> None:
    client, jal, me = card_client, setting["jal"], setting["resident"]
    reserved = jal.convert(service_id="JL-0001", units=5000, idempotency_key="r1")
    assert reserved.status_code == 201, reserved.json()
    assert (reserved.json()["municipality"], reserved.json()["balance"]) == ("reserved", 5000)
    assert client.get("/api/v1/me/points", headers=me).json()["reserved"] == 5000

    assigned = client.post(
        "/api/v1/me/reserved/assignments",
        headers=me,
        json={"municipality": OGUNI, "points": 2000, "key": "a1"},
    )
    assert assigned.status_code == 201, assigned.json()
    assert (assigned.json()["premium"], assigned.json()["reserved_left"]) == (200, 3000)
    too_much = client.post(
        "/api/v1/me/reserved/assignments",
        headers=me,
        json={"municipality": OGUNI, "points": 4000, "key": "a2"},
    )
    assert (too_much.status_code, too_much.json()["code"]) == (409, "insufficient_reserved")
    default = client.put(
        "/api/v1/me/default-municipality", headers=me, json={"municipality": TENRI}
    )
    assert default.json() == {"municipality": TENRI}
    view = client.get("/api/v1/me/reserved", headers=me).json()
    assert view["points"] == 3000 and view["default_municipality"] == TENRI
    assert [(lot["partner"], lot["remaining"]) for lot in view["lots"]] == [("jal", 3000)]
