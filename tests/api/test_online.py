"""Online payments (R6.6) with the operating share (R7.4): a furusato shop of Tenri holds,
captures, voids and refunds residents' points by their service ID, signed (HTTP, both engines)."""

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

TENRI, OGUNI = "292044", "434248"
SHOP = "tenri-furusato"


class Shop:
    """The online service's server: signs every request."""

    def __init__(self, client: TestClient, database: Database, issued: dict[str, str]) -> None:
        self.client, self.database = client, database
        self.api_key, self.secret = issued["api_key"], issued["signing_secret"]

    def post(self, path: str, *, age: int = 0, secret: str | None = None, **fields: Any) -> Any:
        return self.send("POST", path, json.dumps(fields).encode(), age=age, secret=secret)

    def get(self, path: str, *, shop: str = SHOP) -> Any:
        return self.send("GET", path, b"", shop=shop)

    def send(
        self,
        method: str,
        path: str,
        body: bytes,
        *,
        age: int = 0,
        secret: str | None = None,
        shop: str = SHOP,
    ) -> Any:
        path = f"/api/v1/online/{shop}{path}"
        timestamp = str(int(self.database.clock.now.timestamp()) - age)
        headers = {
            **bearer(self.api_key),
            "Content-Type": "application/json",
            "X-MyKey-Timestamp": timestamp,
            "X-MyKey-Signature": sign(secret or self.secret, method, path, timestamp, body),
        }
        response = self.client.request(method, path, content=body, headers=headers)
        self.database.clock.advance(seconds=1)  # a new timestamp, so a new signature
        return response

    def authorize(self, *, age: int = 0, secret: str | None = None, **fields: Any) -> Response:
        order = {
            "service_id": "F-0001",
            "municipality": TENRI,
            "points": 1000,
            "expires_in_seconds": 3600,
            "order_ref": "ORDER-1",
            **fields,
        }
        return self.post(  # type: ignore[no-any-return]
            "/authorizations", age=age, secret=secret, **order
        )


@pytest.fixture
def setting(
    card_client: TestClient, database: Database, cards: list[SimulatedCard]
) -> dict[str, Any]:
    c = card_client
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    operator = bearer(create_key(uow, role="operator", label="council")[0])
    tenri = bearer(create_key(uow, role="municipality_staff", label="天理", municipality=TENRI)[0])
    for code, name in ((TENRI, "天理市ポイント"), (OGUNI, "小国町ポイント")):
        program = {"point_name": name, "usable_at": ["online", "shop"]}
        put = c.put(f"/api/v1/municipalities/{code}/program", headers=operator, json=program)
        assert put.status_code == 200, put.json()
    fee = c.put(
        f"/api/v1/municipalities/{TENRI}/online-fee",
        headers=tenri,
        json={"online_fee_permille": 75},
    )
    assert fee.status_code == 200, fee.json()
    shop = c.put(
        f"/api/v1/shops/{SHOP}",
        headers=operator,
        json={
            "name": "天理ふるさと便",
            "municipality": TENRI,
            "kind": "online",
            "accepts": [TENRI],
        },
    )
    assert shop.status_code == 200, shop.json()
    issued = c.post(f"/api/v1/online/{SHOP}/keys", headers=operator, json={})
    assert issued.status_code == 201, issued.json()
    c.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(c, cards[0]), "password": PASSWORD, "mykey_id": "MY123456"},
    )
    token = c.post("/api/v1/sessions", json={"mykey_id": "MY123456", "password": PASSWORD}).json()[
        "token"
    ]
    registered = c.post(
        "/api/v1/me/service-ids",
        headers=bearer(token),
        json={"service": SHOP, "external_id": "F-0001"},
    )
    assert registered.status_code == 201, registered.json()
    granted = c.post(
        f"/api/v1/municipalities/{TENRI}/grants",
        headers=tenri,
        json={"mykey_id": "MY123456", "points": 5000, "reason": "テスト付与", "key": "g1"},
    )
    assert granted.status_code == 201, granted.json()
    return {"shop": Shop(c, database, issued.json()), "operator": operator, "tenri": tenri}


def _balances(database: Database) -> dict[str, int]:
    uow = database.uow()
    wallet = ledger.find_account(uow, ledger=TENRI, kind="wallet", owner="MY123456")
    shop = ledger.find_account(uow, ledger=TENRI, kind="shop", owner=SHOP)
    fee = ledger.open_account(uow, ledger=TENRI, kind="settlement", owner=f"fee:{TENRI}")
    return {
        "wallet": ledger.balance(uow, wallet.id).available,
        "shop": ledger.balance(uow, shop.id).posted,
        "fee": ledger.balance(uow, fee.id).posted,
    }


def test_authorize_capture_part_refund_with_fee_and_retries(
    setting: dict[str, Any], database: Database
) -> None:
    shop: Shop = setting["shop"]
    held = shop.authorize(key="o1")
    assert held.status_code == 201, held.json()
    order = held.json()
    assert (order["status"], order["held"], order["balance"]) == ("authorized", 1000, 4000)
    again = shop.authorize(key="o1")
    assert again.json()["replayed"] is True
    assert again.json()["authorization_id"] == order["authorization_id"]
    assert _balances(database)["wallet"] == 4000

    aid = order["authorization_id"]
    captured = shop.post(f"/authorizations/{aid}/capture", points=800, key="c1")
    assert captured.status_code == 200, captured.json()
    cap = captured.json()
    assert (cap["status"], cap["captured"], cap["fee"], cap["balance"]) == (
        "captured",
        800,
        60,  # floor(800 * 75 / 1000)
        4200,  # the 200 not captured came back
    )
    assert shop.post(f"/authorizations/{aid}/capture", points=800, key="c1").json()["replayed"]
    assert _balances(database) == {"wallet": 4200, "shop": 740, "fee": 60}

    cid = cap["capture_id"]
    refunded = shop.post(f"/captures/{cid}/refunds", points=300, key="r1")
    assert refunded.status_code == 201, refunded.json()
    r = refunded.json()
    assert (r["points"], r["fee_back"], r["refunded_total"], r["balance"]) == (300, 23, 300, 4500)
    assert shop.post(f"/captures/{cid}/refunds", points=300, key="r1").json()["replayed"]
    assert _balances(database) == {"wallet": 4500, "shop": 463, "fee": 37}

    over = shop.post(f"/captures/{cid}/refunds", points=501, key="r2")
    assert over.status_code == 409, over.json()
    assert over.json()["code"] == "refund_exceeds_capture"
    rest = shop.post(f"/captures/{cid}/refunds", points=500, key="r3")
    assert rest.status_code == 201, rest.json()
    assert _balances(database) == {"wallet": 5000, "shop": 0, "fee": 0}

    looked = shop.get(f"/authorizations/{aid}")
    assert looked.status_code == 200, looked.json()
    seen = looked.json()
    assert (seen["status"], seen["held"], seen["captured"], seen["fee"], seen["refunded"]) == (
        "captured",
        1000,
        800,
        0,  # the share is kept only on what stays sold: all 800 came back
        800,
    )
    assert (seen["order_ref"], seen["replayed"], seen["balance"]) == ("ORDER-1", False, 5000)
    unknown = shop.get("/authorizations/00000000-0000-4000-8000-000000000000")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_authorization")
    # a service looks only at its own orders, under its own name
    other = shop.get(f"/authorizations/{aid}", shop="oguni-shop")
    assert (other.status_code, other.json()["code"]) == (403, "forbidden")

    second = shop.post(f"/authorizations/{aid}/capture", key="c2")
    assert second.json()["code"] == "already_captured"
    void = shop.post(f"/authorizations/{aid}/void", key="v1")
    assert void.status_code == 409
    assert void.json()["code"] == "already_captured"


def test_void_and_expiry_release_points(setting: dict[str, Any], database: Database) -> None:
    shop: Shop = setting["shop"]
    a = shop.authorize(key="o1", points=2000).json()
    voided = shop.post(f"/authorizations/{a['authorization_id']}/void", key="v1")
    assert voided.status_code == 200, voided.json()
    assert (voided.json()["status"], voided.json()["balance"]) == ("voided", 5000)
    late = shop.post(f"/authorizations/{a['authorization_id']}/capture", key="c1")
    assert late.json()["code"] == "authorization_voided"

    b = shop.authorize(key="o2", points=3000, expires_in_seconds=60).json()
    assert _balances(database)["wallet"] == 2000
    database.clock.advance(seconds=120)
    expired = shop.post(f"/authorizations/{b['authorization_id']}/capture", key="c2")
    assert expired.status_code == 409
    assert expired.json()["code"] == "hold_expired"
    assert ledger.void_expired(database.uow()) == 1
    assert _balances(database)["wallet"] == 5000
    after = shop.post(f"/authorizations/{b['authorization_id']}/capture", key="c3")
    assert after.json()["code"] == "hold_expired"


def test_refusals_change_nothing(
    setting: dict[str, Any], database: Database, card_client: TestClient
) -> None:
    shop: Shop = setting["shop"]
    cases = [
        ({"service_id": "F-9999"}, 404, "unknown_service_id"),
        ({"municipality": OGUNI}, 409, "not_accepted_here"),
        ({"points": 5001}, 409, "insufficient_points"),
        ({"expires_in_seconds": 59}, 422, "invalid_expiry"),
        ({"points": 0}, 422, "invalid_points"),
    ]
    for n, (change, status, code) in enumerate(cases):
        got = shop.authorize(key=f"bad{n}", **change)
        assert (got.status_code, got.json()["code"]) == (status, code), got.json()
        assert got.json()["detail"] and got.json()["detail_ja"], got.json()
    a = shop.authorize(key="ok").json()
    too_much = shop.post(f"/authorizations/{a['authorization_id']}/capture", points=1001, key="x")
    assert too_much.json()["code"] == "capture_exceeds_hold"

    stale = shop.authorize(age=400, key="s1", points=1)
    assert (stale.status_code, stale.json()["code"]) == (401, "stale_timestamp")
    forged = shop.authorize(secret="not the secret", key="s2", points=1)
    assert (forged.status_code, forged.json()["code"]) == (401, "bad_signature")
    # the very same signed request twice: the second is a replay
    path = f"/api/v1/online/{SHOP}/authorizations"
    body = json.dumps(
        {
            "service_id": "F-0001",
            "municipality": TENRI,
            "points": 1,
            "expires_in_seconds": 60,
            "key": "s3",
        }
    ).encode()
    ts = str(int(database.clock.now.timestamp()))
    headers = {
        **bearer(shop.api_key),
        "Content-Type": "application/json",
        "X-MyKey-Timestamp": ts,
        "X-MyKey-Signature": sign(shop.secret, "POST", path, ts, body),
    }
    assert card_client.post(path, content=body, headers=headers).status_code == 201
    replay = card_client.post(path, content=body, headers=headers)
    assert (replay.status_code, replay.json()["code"]) == (401, "replayed_signature")
    plain = {**bearer(shop.api_key), "Content-Type": "application/json"}
    unsigned = card_client.post(path, content=body, headers=plain)
    assert (unsigned.status_code, unsigned.json()["code"]) == (401, "signature_required")
    counter = create_key(database.uow(), role="terminal", label="レジ", provider_id=SHOP)[0]
    shop.api_key, real = counter, shop.api_key  # a counter terminal's key has no signing secret
    not_online = shop.authorize(key="t1", points=1)
    assert (not_online.status_code, not_online.json()["code"]) == (403, "forbidden")
    shop.api_key = real
    # held: 1000 (ok) + 1 (s3); nothing else moved
    assert _balances(database)["wallet"] == 3999
