"""Partners order coupon codes and residents redeem them (HTTP, both engines)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from mykey import ledger
from mykey.demo import MUNICIPALITIES
from mykey.identity.keys import create_key
from mykey.identity.simulator import SimulatedCard
from mykey.municipalities.registry import upsert
from mykey.points.coupons import new_code
from tests.api.conftest import PASSWORD, bearer, proof
from tests.api.test_conversions import Partner
from tests.conftest import Database

OGUNI, TENRI = "434248", "292044"
CODE = re.compile(r"[34679ACDEFGHJKMNPQRTUVWXY]{4}(-[34679ACDEFGHJKMNPQRTUVWXY]{4}){3}")


def order(partner: Partner, name: str | None = None, **fields: Any) -> Response:
    path = f"/api/v1/partners/{name or partner.partner}/coupon-batches"
    body = json.dumps(fields).encode()
    response = partner.client.post(path, content=body, headers=partner.headers(body, path=path))
    partner.database.clock.advance(seconds=1)  # a new timestamp, so a new signature
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
        put = client.put(f"/api/v1/municipalities/{code}/program", headers=operator, json=program)
        assert put.status_code == 200
    methods = {"jal": ["id_linkage"], "saison": ["coupon_paper", "coupon_email", "coupon_url"]}
    for partner, agreed_methods in methods.items():
        put = client.put(
            f"/api/v1/partners/{partner}",
            headers=operator,
            json={"name": partner.upper(), "methods": agreed_methods},
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
    return {
        "operator": operator,
        "resident": bearer(token),
        "jal": Partner(client, database, keys["jal"]),
        "saison": Partner(client, database, keys["saison"]),
    }


def redeem(client: TestClient, setting: dict[str, Any], **body: Any) -> Response:
    return client.post("/api/v1/me/coupons/redemptions", headers=setting["resident"], json=body)


def test_paper_coupons_redeemed_into_two_municipalities_and_reserved(
    card_client: TestClient, setting: dict[str, Any], database: Database
) -> None:
    client, saison = card_client, setting["saison"]
    ordered = order(
        saison, count=5, units=2000, delivery="paper", expires_on="2026-10-31", idempotency_key="b1"
    )
    assert ordered.status_code == 201, ordered.json()
    batch = ordered.json()
    codes = [c["code"] for c in batch["coupons"]]
    assert [c["serial"] for c in batch["coupons"]] == [1, 2, 3, 4, 5]
    assert all(CODE.fullmatch(c) for c in codes) and len(set(codes)) == 5
    assert all(c["url"] is None for c in batch["coupons"])
    assert (batch["issued"], batch["redeemed"], batch["expired"]) == (5, 0, 0)

    again = order(
        saison, count=5, units=2000, delivery="paper", expires_on="2026-10-31", idempotency_key="b1"
    )
    assert again.status_code == 201
    assert again.json()["replayed"] is True
    assert [c["code"] for c in again.json()["coupons"]] == codes
    assert database.count("coupon_batches") == 1

    path = f"/api/v1/partners/saison/coupon-batches/{batch['batch_id']}"
    csv = client.get(f"{path}.csv", headers=bearer(saison.api_key))
    assert csv.status_code == 200
    assert csv.content.startswith(b"\xef\xbb\xbf")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "serial,code,units,expires_on"
    assert lines[1:] == [f"{n},{c},2000,2026-10-31" for n, c in enumerate(codes, 1)]

    into_oguni = redeem(client, setting, code=codes[0], municipality=OGUNI, key="r1")
    assert into_oguni.status_code == 201, into_oguni.json()
    body = into_oguni.json()
    assert (body["points"], body["premium"], body["municipality"], body["balance"]) == (
        2000,
        200,
        OGUNI,
        2200,
    )
    typed = codes[1].replace("-", "").lower()  # case and hyphens do not matter
    into_tenri = redeem(
        client, setting, code=f" {typed[:8]} {typed[8:]} ", municipality=TENRI, key="r2"
    )
    assert (into_tenri.status_code, into_tenri.json()["points"]) == (201, 2000)
    reserved = redeem(client, setting, code=codes[2], key="r3")
    assert (reserved.status_code, reserved.json()["municipality"]) == (201, "reserved")

    retry = redeem(client, setting, code=codes[0], municipality=OGUNI, key="r1")
    assert (retry.status_code, retry.json()["replayed"]) == (201, True)
    assert retry.json()["conversion_id"] == body["conversion_id"]
    used = redeem(client, setting, code=codes[0], municipality=TENRI, key="r4")
    assert (used.status_code, used.json()["code"]) == (409, "coupon_used")
    reused = redeem(client, setting, code=codes[3], municipality=OGUNI, key="r1")
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")
    not_member = redeem(client, setting, code=codes[3], municipality="131164", key="r5")
    assert (not_member.status_code, not_member.json()["code"]) == (409, "not_a_member")

    receivables = client.get(
        "/api/v1/partners/saison/receivables", headers=bearer(saison.api_key)
    ).json()
    owed = {r["municipality"]: r["points"] for r in receivables}
    assert owed == {OGUNI: 2000, TENRI: 2000, "reserved": 2000}  # premiums never count
    counts = client.get(path, headers=bearer(saison.api_key)).json()
    assert (counts["issued"], counts["redeemed"], counts["expired"]) == (2, 3, 0)

    database.clock.advance(days=17)  # 2026-11-01 in Tokyo: past 2026-10-31
    token = client.post(
        "/api/v1/sessions", json={"mykey_id": "MY123456", "password": PASSWORD}
    ).json()["token"]
    setting["resident"] = bearer(token)
    expired = redeem(client, setting, code=codes[3], municipality=OGUNI, key="r6")
    assert (expired.status_code, expired.json()["code"]) == (409, "coupon_expired")
    counts = client.get(path, headers=bearer(saison.api_key)).json()
    assert (counts["issued"], counts["redeemed"], counts["expired"]) == (0, 3, 2)
    assert database.count("conversions") == 3
    assert ledger.check(database.uow()).ok


def test_mistyped_unknown_and_refused_coupons_change_nothing(
    card_client: TestClient, setting: dict[str, Any], database: Database
) -> None:
    client, saison = card_client, setting["saison"]
    code = order(
        saison, count=1, units=1000, delivery="email", expires_on="2026-12-31", idempotency_key="e"
    ).json()["coupons"][0]["code"]
    plain = code.replace("-", "")
    other = "3" if plain[4] != "3" else "4"
    substituted = plain[:4] + other + plain[5:]
    i = next(i for i in range(15) if plain[i] != plain[i + 1])
    swapped = plain[:i] + plain[i + 1] + plain[i] + plain[i + 2 :]
    for wrong in (substituted, swapped, plain[:-1], plain + "3", "0" + plain[1:]):
        answer = redeem(client, setting, code=wrong, municipality=OGUNI, key="m")
        assert (answer.status_code, answer.json()["code"]) == (422, "coupon_mistyped"), wrong
    unknown = redeem(client, setting, code=new_code(), municipality=OGUNI, key="m")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_coupon")
    assert database.count("conversions") == 0
    ok = redeem(client, setting, code=code, municipality=OGUNI, key="m")
    assert (ok.status_code, ok.json()["points"]) == (201, 1000)


def test_url_coupons_orders_refused_and_partners_kept_apart(
    card_client: TestClient, setting: dict[str, Any], database: Database
) -> None:
    client, saison, jal = card_client, setting["saison"], setting["jal"]
    url = order(
        saison, count=3, units=1000, delivery="url", expires_on="2026-11-30", idempotency_key="u"
    )
    assert url.status_code == 201, url.json()
    for c in url.json()["coupons"]:
        assert c["url"].endswith(f"/mypage/coupons?code={c['code']}")
    csv = client.get(
        f"/api/v1/partners/saison/coupon-batches/{url.json()['batch_id']}.csv",
        headers=bearer(saison.api_key),
    )
    assert csv.content.decode("utf-8-sig").splitlines()[0] == "serial,code,units,expires_on,url"
    elsewhere = client.get(
        f"/api/v1/partners/jal/coupon-batches/{url.json()['batch_id']}",
        headers=bearer(saison.api_key),
    )
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden")
    spying = client.get(
        f"/api/v1/partners/jal/coupon-batches/{url.json()['batch_id']}",
        headers=bearer(jal.api_key),
    )
    assert (spying.status_code, spying.json()["code"]) == (404, "unknown_coupon_batch")

    good = {"count": 2, "units": 1000, "delivery": "paper", "expires_on": "2026-11-30"}
    for name, change, code in (
        ("jal", {}, "method_not_agreed"),
        ("saison", {"units": 500}, "below_minimum"),
        ("saison", {"units": 1500}, "wrong_step"),
        ("saison", {"count": 0}, "invalid_count"),
        ("saison", {"count": 100_001}, "invalid_count"),
        ("saison", {"delivery": "fax"}, "invalid_delivery"),
        ("saison", {"expires_on": "2026-10-14"}, "invalid_expiry"),
    ):
        who = jal if name == "jal" else saison
        answer = order(who, **{**good, **change, "idempotency_key": f"x-{code}"})
        assert answer.status_code in (409, 422), (code, answer.json())
        assert answer.json()["code"] == code
    path = "/api/v1/partners/saison/coupon-batches"
    body = json.dumps({**good, "idempotency_key": "unsigned"}).encode()
    forged = client.post(path, content=body, headers=saison.headers(body, path=path, secret="x"))
    assert (forged.status_code, forged.json()["code"]) == (401, "bad_signature")
    reused = order(saison, **{**good, "idempotency_key": "u"})
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")
    assert database.count("coupon_batches") == 1
    assert database.count("coupons") == 3
