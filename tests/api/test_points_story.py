"""Issue #4 end to end over HTTP (both engines): a program, grants one by one and in bulk,
conversions by ID linkage and by every coupon delivery into two towns and into reserved points,
an assignment, the 14-day sweep and a correction case; then every balance, lot, expiry, premium
and receivable as the rules say."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from typing import Any

from fastapi.testclient import TestClient

from mykey import ledger
from mykey.demo import MUNICIPALITIES
from mykey.identity.keys import create_key
from mykey.identity.simulator import SimulatedCard
from mykey.ledger import AccountKind
from mykey.municipalities.registry import upsert
from mykey.points.expiry import DailyJobs
from mykey.points.reserved import sweep_reserved
from tests.api.conftest import PASSWORD, bearer, proof
from tests.api.test_conversions import Partner
from tests.builders import jobs_finished, residents_in_bulk
from tests.conftest import Database

OGUNI, TENRI = "434248", "292044"
ME, NEIGHBOUR = "MY123456", "BULK0001"


def ok(answer: Any, status: int = 201) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def login(client: TestClient) -> dict[str, str]:
    session = client.post("/api/v1/sessions", json={"mykey_id": ME, "password": PASSWORD})
    return bearer(ok(session)["token"])


def signed(partner: Partner, path: str, fields: dict[str, Any]) -> Any:
    body = json.dumps(fields).encode()
    answer = partner.client.post(path, content=body, headers=partner.headers(body, path=path))
    partner.database.clock.advance(seconds=1)
    return ok(answer)


def test_issue_4_from_program_to_correction(
    card_client: TestClient, database: Database, cards: list[SimulatedCard]
) -> None:
    client, uow = card_client, database.uow()
    upsert(uow, MUNICIPALITIES)
    operator = bearer(create_key(uow, role="operator", label="council")[0])
    oguni_a = bearer(create_key(uow, role="municipality_staff", label="a", municipality=OGUNI)[0])
    oguni_b = bearer(create_key(uow, role="municipality_staff", label="b", municipality=OGUNI)[0])

    # The towns set up their programs; the council its partners and agreements.
    ok(
        client.put(
            f"/api/v1/municipalities/{OGUNI}/program",
            headers=oguni_a,
            json={
                "point_name": "小国町北里柴三郎ポイント",
                "usable_at": ["shop", "hot_spring"],
                "premium_permille": 100,
                "rules": [{"activity": "volunteer", "name": "ボランティア", "points": 200}],
            },
        ),
        200,
    )
    ok(
        client.put(
            f"/api/v1/municipalities/{TENRI}/program",
            headers=operator,
            json={"point_name": "天理市ポイント", "usable_at": ["shop"]},
        ),
        200,
    )
    terms = {"rate_units": 1000, "rate_points": 1000, "minimum": 1000, "step": 1000}
    partners = {}
    for name, methods in (
        ("jal", ["id_linkage"]),
        ("saison", ["coupon_paper", "coupon_email", "coupon_url"]),
    ):
        ok(
            client.put(
                f"/api/v1/partners/{name}",
                headers=operator,
                json={"name": name, "methods": methods},
            ),
            200,
        )
        ok(
            client.post(
                f"/api/v1/partners/{name}/agreements",
                headers=operator,
                json={"effective_from": "2026-10-15", **terms},
            )
        )
        issued = ok(client.post(f"/api/v1/partners/{name}/keys", headers=operator, json={}))
        partners[name] = Partner(client, database, issued)

    # A resident with a card and a MyKey ID; two neighbours known only by MyKey ID.
    ok(
        client.post(
            "/api/v1/mykey-ids",
            json={"card_proof": proof(client, cards[0]), "password": PASSWORD, "mykey_id": ME},
        )
    )
    me = login(client)
    residents_in_bulk(uow, [NEIGHBOUR, "BULK0002"])
    ok(
        client.post(
            "/api/v1/me/service-ids", headers=me, json={"service": "jal", "external_id": "JL-7"}
        )
    )

    # Grants: one at the desk, then the town's seniors in bulk.
    grants = f"/api/v1/municipalities/{OGUNI}/grants"
    ok(
        client.post(
            grants,
            headers=oguni_a,
            json={"mykey_id": ME, "activity": "volunteer", "reason": "清掃", "key": "v-1"},
        )
    )
    job = client.post(
        f"/api/v1/municipalities/{OGUNI}/grant-jobs",
        params={"points": 1000, "reason": "敬老"},
        content=f"mykey_id\n{ME}\n{NEIGHBOUR}\nBULK0002\n".encode(),
        headers={**oguni_a, "Content-Type": "text/csv", "Idempotency-Key": "seniors"},
    )
    jobs_finished(database.engine)  # the app's runner takes the job at once
    job = ok(client.get(ok(job, 202)["links"]["self"], headers=oguni_a), 200)
    assert (job["status"], job["granted"], job["points"]) == ("done", 3, 3000)

    # Conversions: ID linkage into Oguni (premium 10 %) and into reserved points …
    jal, saison = partners["jal"], partners["saison"]
    path = "/api/v1/partners/jal/conversions"
    into = signed(
        jal,
        path,
        {"service_id": "JL-7", "units": 3000, "municipality": OGUNI, "idempotency_key": "j1"},
    )
    assert (into["points"], into["premium"]) == (3000, 300)
    signed(jal, path, {"service_id": "JL-7", "units": 2000, "idempotency_key": "j2"})
    # … and one coupon of each delivery: paper into Tenri, e-mail into Oguni, URL reserved.
    codes = {}
    for delivery in ("paper", "email", "url"):
        batch = signed(
            saison,
            "/api/v1/partners/saison/coupon-batches",
            {
                "count": 1,
                "units": 1000,
                "delivery": delivery,
                "expires_on": "2027-03-31",
                "idempotency_key": delivery,
            },
        )
        codes[delivery] = batch["coupons"][0]["code"]
    redeem = "/api/v1/me/coupons/redemptions"
    ok(
        client.post(
            redeem, headers=me, json={"code": codes["paper"], "municipality": TENRI, "key": "r1"}
        )
    )
    ok(
        client.post(
            redeem,
            headers=me,
            json={"code": codes["email"].lower(), "municipality": OGUNI, "key": "r2"},
        )
    )
    ok(client.post(redeem, headers=me, json={"code": codes["url"], "key": "r3"}))
    assert ok(client.get("/api/v1/me/points", headers=me), 200)["reserved"] == 3000

    # 1,000 reserved points assigned to Tenri now (the oldest: JAL's); the rest waits 15 days
    # and is swept to the default municipality, with Oguni's premium; a second sweep: nothing.
    ok(
        client.post(
            "/api/v1/me/reserved/assignments",
            headers=me,
            json={"municipality": TENRI, "points": 1000, "key": "a1"},
        )
    )
    ok(client.put("/api/v1/me/default-municipality", headers=me, json={"municipality": OGUNI}), 200)
    database.clock.advance(days=15)
    daily = DailyJobs(database.uow, database.clock)  # what `mykey serve` runs once a day
    daily.run_once()
    assert daily.last_sweep is not None
    assert (daily.last_sweep.residents, daily.last_sweep.points) == (1, 2000)
    assert sweep_reserved(database.uow()).points == 0  # a second run: nothing left
    me = login(client)  # two weeks later: a new session

    # A grant to the wrong resident, moved by a case that a second staff member approves.
    wrong = ok(
        client.post(
            grants,
            headers=oguni_a,
            json={"mykey_id": ME, "points": 1000, "reason": "結婚祝い", "key": "m-1"},
        )
    )
    case = ok(
        client.post(
            f"/api/v1/municipalities/{OGUNI}/corrections",
            headers=oguni_a,
            json={
                "kind": "move",
                "transfer_id": wrong["transfer_id"],
                "right_mykey_id": NEIGHBOUR,
                "reason_code": "wrong_person",
                "note": "隣人と取り違え",
                "key": "case-1",
            },
        )
    )
    refused = client.post(
        f"/api/v1/municipalities/{OGUNI}/corrections/{case['id']}/approval",
        headers=oguni_a,
        json={},
    )
    assert refused.status_code == 409
    ok(
        client.post(
            f"/api/v1/municipalities/{OGUNI}/corrections/{case['id']}/approval",
            headers=oguni_b,
            json={},
        ),
        200,
    )

    # Everything as the rules say.
    held = {
        h["municipality"]: h
        for h in ok(client.get("/api/v1/me/points", headers=me), 200)["holdings"]
    }
    assert ok(client.get("/api/v1/me/points", headers=me), 200)["reserved"] == 0
    assert held[TENRI]["balance"] == 1000 + 1000  # paper coupon + JAL's assigned 1,000
    oguni = held[OGUNI]
    assert oguni["balance"] == 200 + 1000 + 3300 + 1100 + 2200  # 7,800
    by_funding: dict[str, int] = defaultdict(int)
    expiries: dict[str, set[date]] = defaultdict(set)
    for lot in oguni["lots"]:
        by_funding[lot["funding"]] += lot["remaining"]
        expiries[lot["funding"]].add(date.fromisoformat(lot["expires_on"]))
    assert dict(by_funding) == {"budget": 1200, "partner": 6000, "premium": 600}
    assert expiries["budget"] == {date(2027, 3, 31)}  # administrative points: fiscal year end
    # converted points and their premium: 6 months from the day they reached Oguni
    assert expiries["partner"] == expiries["premium"] == {date(2027, 4, 14), date(2027, 4, 29)}

    owed = {
        (r["partner"], r["municipality"]): r["points"]
        for name in ("jal", "saison")
        for r in ok(client.get(f"/api/v1/partners/{name}/receivables", headers=operator), 200)
        if r["points"]
    }
    assert owed == {
        ("jal", OGUNI): 3000 + 1000,  # ID linkage + swept; premiums are never owed
        ("jal", TENRI): 1000,
        ("saison", TENRI): 1000,
        ("saison", OGUNI): 1000 + 1000,
    }
    neighbour = database.uow()
    wallet = ledger.open_account(neighbour, ledger=OGUNI, kind=AccountKind.WALLET, owner=NEIGHBOUR)
    assert ledger.balance(neighbour, wallet.id).available == 1000 + 1000  # bulk + corrected
    history = ok(client.get("/api/v1/me/points/history", headers=me), 200)["entries"]
    assert any(e["metadata"].get("correction_case") == case["id"] for e in history)
