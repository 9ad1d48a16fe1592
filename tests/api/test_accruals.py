"""Accruals and rankings over HTTP: the resident chooses, staff close the year, pay, rank and
award; another municipality's staff are refused."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from mykey import ledger
from mykey.identity.simulator import SimulatedCard
from tests.api.conftest import PASSWORD, bearer
from tests.api.test_points import OGUNI, PROGRAM, resident, staff  # noqa: F401 -- fixture
from tests.conftest import Database

CARE = PROGRAM | {
    "rules": [
        {"activity": "care", "name": "介護支援ボランティア", "points": 100, "accrues": True},
        {"activity": "health_walk", "name": "健康ウォークラリー", "points": 500},
    ],
    "accrual_default": "donation",
}


def test_accrual_close_payout_ranking_and_award(
    card_client: TestClient,
    staff: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    client = card_client
    oguni, tenri = bearer(staff["oguni"]), bearer(staff["tenri"])
    set_up = client.put(f"/api/v1/municipalities/{OGUNI}/program", headers=oguni, json=CARE)
    assert set_up.status_code == 200, set_up.json()
    assert set_up.json()["rules"][0]["accrues"] is True
    assert set_up.json()["accrual_default"] == "donation"
    me = bearer(resident(client, cards[0]))

    for n in range(2):
        granted = client.post(
            f"/api/v1/municipalities/{OGUNI}/grants",
            headers=oguni,
            json={"mykey_id": "MY123456", "activity": "care", "reason": "介護", "key": f"c-{n}"},
        )
        assert granted.status_code == 201, granted.json()
        assert granted.json()["accrued"] is True
    assert granted.json()["balance"] == 200
    points = client.get("/api/v1/me/points", headers=me).json()
    assert points["holdings"] == []  # accrued points are not spendable
    assert points["accrued"] == [{"municipality": OGUNI, "fiscal_year": 2026, "points": 200}]

    choice = f"/api/v1/me/accruals/{OGUNI}/choice"
    assert client.put(choice, headers=me, json={"choice": "cash"}).json()["code"] == (
        "invalid_accrual_choice"
    )
    assert client.put(choice, json={"choice": "payout"}).status_code == 401
    assert client.put(choice, headers=me, json={"choice": "payout"}).json()["choice"] == "payout"

    close = f"/api/v1/municipalities/{OGUNI}/accruals/2026/close"
    assert client.post(close, headers=tenri).json()["code"] == "forbidden"
    assert client.post(close, headers=oguni).json()["code"] == "year_not_over"
    database.clock.now = datetime(2027, 4, 2, 1, 0, tzinfo=UTC)
    closed = client.post(close, headers=oguni)
    assert closed.status_code == 200, closed.json()
    assert (closed.json()["payouts"], closed.json()["payout_points"]) == (1, 200)
    assert client.post(close, headers=oguni).json()["already_closed"] == 1
    login = {"mykey_id": "MY123456", "password": PASSWORD}  # the old session has lapsed
    me = bearer(client.post("/api/v1/sessions", json=login).json()["token"])

    mine = client.get("/api/v1/me/accruals", headers=me).json()
    assert mine["accruing"] == []
    assert [(c["outcome"], c["points"], c["status"]) for c in mine["closed"]] == [
        ("payout", 200, "pending")
    ]
    payouts = f"/api/v1/municipalities/{OGUNI}/accruals/payouts"
    assert client.get(payouts, headers=tenri).json()["code"] == "forbidden"
    listed = client.get(payouts, headers=oguni, params={"status": "pending"}).json()
    assert [(p["mykey_id"], p["points"]) for p in listed] == [("MY123456", 200)]
    paid = f"{payouts}/2026/MY123456/paid"
    assert client.post(paid, headers=tenri, json={"reference": "x"}).json()["code"] == "forbidden"
    first = client.post(paid, headers=oguni, json={"reference": "振込 42"}).json()
    assert (first["already_paid"], first["payout"]["status"]) == (False, "paid")
    assert client.post(paid, headers=oguni, json={"reference": "振込 42"}).json()["already_paid"]
    assert client.get(f"{payouts}?status=pending", headers=oguni).json() == []
    assert client.get("/api/v1/me/accruals", headers=me).json()["closed"][0]["status"] == "paid"

    rankings = f"/api/v1/municipalities/{OGUNI}/rankings"
    query = {"activity": "care", "from": "2026-04-01", "to": "2027-03-31", "top": 200}
    ranked = client.get(rankings, headers=oguni, params=query | {"minimum": 200})
    assert ranked.status_code == 200, ranked.json()
    assert ranked.json()["from"] == "2026-04-01"
    assert [(r["rank"], r["mykey_id"], r["points"]) for r in ranked.json()["rows"]] == [
        (1, "MY123456", 200)
    ]
    assert client.get(rankings, headers=oguni, params=query | {"minimum": 201}).json()["rows"] == []
    assert client.get(rankings, headers=tenri, params=query).json()["code"] == "forbidden"
    operator = client.get(rankings, headers=bearer(staff["operator"]), params=query)
    assert operator.json()["code"] == "forbidden"
    assert client.get(rankings, headers=oguni, params=query | {"top": 0}).status_code == 422

    awards = f"{rankings}/awards"
    body = query | {"points": 5000, "reason": "上位者への商店街券", "key": "award-2026"}
    awarded = client.post(awards, headers=oguni, json=body)
    assert awarded.status_code == 200, awarded.json()
    assert (awarded.json()["granted"], awarded.json()["already"]) == (1, 0)
    again = client.post(awards, headers=oguni, json=body).json()
    assert (again["granted"], again["already"]) == (0, 1)
    assert client.post(awards, headers=tenri, json=body).json()["code"] == "forbidden"
    reused = client.post(awards, headers=oguni, json=body | {"points": 1})
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")
    wallet = client.get("/api/v1/me/points", headers=me).json()["holdings"]
    assert [(h["municipality"], h["balance"]) for h in wallet] == [(OGUNI, 5000)]
    report = ledger.check(database.uow())
    assert report.ok, report.problems
