"""Correction cases over HTTP: two people, points moved or given back, claims, budget counts."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import text

from mykey import ledger
from mykey.demo import MUNICIPALITIES
from mykey.identity import residents
from mykey.identity.keys import create_key
from mykey.identity.simulator import SimulatedCard
from mykey.ledger import AccountKind
from mykey.municipalities.registry import upsert
from tests.api.conftest import PASSWORD, bearer, proof
from tests.conftest import Database

OGUNI, TENRI = "434248", "292044"
WRONG, RIGHT = "WRONG001", "RIGHT001"
PROGRAM = {
    "point_name": "小国町北里柴三郎ポイント",
    "validity": {"budget": 6},  # granted 2026-10-15: valid until 2027-04-14
    "usable_at": ["shop"],
    "annual_budget": 1000,
    "rules": [{"activity": "health_walk", "name": "健康ウォークラリー", "points": 500}],
}
EXPIRES = "2027-04-14"
KEYS = count()


@pytest.fixture(autouse=True)
def quick_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cheap password hash: these tests are about corrections, not about password storage."""
    monkeypatch.setattr(residents, "_hasher", PasswordHasher(time_cost=1, memory_cost=64))


@pytest.fixture
def staff(database: Database) -> dict[str, str]:
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)

    def staff_key(code: str, label: str) -> str:
        return create_key(uow, role="municipality_staff", label=label, municipality=code)[0]

    return {
        "a": staff_key(OGUNI, "小国町 A"),
        "b": staff_key(OGUNI, "小国町 B"),
        "tenri": staff_key(TENRI, "天理市"),
        "operator": create_key(uow, role="operator", label="council")[0],
    }


def resident(client: TestClient, card: SimulatedCard, mykey_id: str) -> None:
    made = client.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(client, card), "password": PASSWORD, "mykey_id": mykey_id},
    )
    assert made.status_code == 201, made.json()


def login(client: TestClient, mykey_id: str) -> str:
    """A fresh My Page session (the tests move the clock by days; sessions last hours)."""
    token = client.post(
        "/api/v1/sessions", json={"mykey_id": mykey_id, "password": PASSWORD}
    ).json()["token"]
    return str(token)


class People:
    """The residents' My Page sessions, made once per test (after the test has moved its
    clock, as logging in takes a deliberately slow password hash)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}

    def token(self, who: str) -> str:
        if who not in self.tokens:
            self.tokens[who] = login(self.client, who)
        return self.tokens[who]


@pytest.fixture
def town(card_client: TestClient, staff: dict[str, str], cards: list[SimulatedCard]) -> People:
    """Oguni's program and two residents (one will be credited by mistake)."""
    set_up = card_client.put(
        f"/api/v1/municipalities/{OGUNI}/program", headers=bearer(staff["a"]), json=PROGRAM
    )
    assert set_up.status_code == 200, set_up.json()
    resident(card_client, cards[0], WRONG)
    resident(card_client, cards[1], RIGHT)
    return People(card_client)


def grant(client: TestClient, key: str, who: str = WRONG, **body: Any) -> str:
    made = client.post(
        f"/api/v1/municipalities/{OGUNI}/grants",
        headers=bearer(key),
        json={"mykey_id": who, "reason": "秋のラリー", "key": f"g-{next(KEYS)}"}
        | (body or {"activity": "health_walk"}),
    )
    assert made.status_code == 201, made.json()
    return str(made.json()["transfer_id"])


def spend(database: Database, who: str, points: int) -> None:
    """The resident pays at a shop (the ledger's own transfer, as a counter terminal does)."""
    uow = database.uow()
    wallet = ledger.find_account(uow, ledger=OGUNI, kind=AccountKind.WALLET, owner=who)
    shop = ledger.open_account(uow, ledger=OGUNI, kind=AccountKind.SHOP, owner="shop-1")
    ledger.transfer(
        uow, debit=wallet.id, credit=shop.id, amount=points, kind="spend", actor="terminal:T1"
    )


def propose(client: TestClient, api_key: str, code: str = OGUNI, **body: Any) -> Any:
    return client.post(
        f"/api/v1/municipalities/{code}/corrections",
        headers=bearer(api_key),
        json={"reason_code": "wrong_person", "note": "窓口で取り違え", "key": "c-1"} | body,
    )


def decide(client: TestClient, key: str, case: str, what: str = "approval") -> Any:
    return client.post(
        f"/api/v1/municipalities/{OGUNI}/corrections/{case}/{what}", headers=bearer(key)
    )


def points(people: People, who: str) -> dict[str, Any]:
    mine = people.client.get("/api/v1/me/points", headers=bearer(people.token(who)))
    held = mine.json()["holdings"]
    return {h["municipality"]: h for h in held}.get(OGUNI, {"balance": 0, "lots": []})


def budget_count(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT granted FROM program_budget_uses WHERE code = :c AND fiscal_year = 2026"
                ),
                {"c": OGUNI},
            ).scalar_one()
        )


def assert_ledger_checks(database: Database) -> None:
    report = ledger.check(database.uow())
    assert report.ok, report.problems


def test_a_mis_grant_is_moved_with_two_approvals_and_both_residents_see_it(
    card_client: TestClient, staff: dict[str, str], town: People, database: Database
) -> None:
    client = card_client
    transfer = grant(client, staff["a"])
    database.clock.advance(days=10)
    body = {"kind": "move", "transfer_id": transfer, "right_mykey_id": RIGHT.lower()}
    proposed = propose(client, staff["a"], **body)
    assert proposed.status_code == 201, proposed.json()
    case = proposed.json()
    assert (case["status"], case["points"], case["wrong_mykey_id"], case["right_mykey_id"]) == (
        "proposed",
        500,
        WRONG,
        RIGHT,
    )
    assert case["reason_label"] == {
        "ja": "別の人への付与・移行",
        "en": "Credited to the wrong person",
    }
    again = propose(client, staff["a"], **body)
    assert (again.status_code, again.json()["id"], again.json()["replayed"]) == (
        201,
        case["id"],
        True,
    )
    other_body = propose(client, staff["a"], **body | {"note": "別の経緯"})
    assert (other_body.status_code, other_body.json()["code"]) == (409, "idempotency_key_reused")
    twin = propose(client, staff["b"], **body | {"key": "c-b"})
    assert (twin.status_code, twin.json()["code"]) == (409, "case_exists")
    assert points(town, WRONG)["balance"] == 500  # nothing moves on a proposal

    myself = decide(client, staff["a"], case["id"])
    assert (myself.status_code, myself.json()["code"]) == (409, "same_person")
    elsewhere = client.post(
        f"/api/v1/municipalities/{TENRI}/corrections/{case['id']}/approval",
        headers=bearer(staff["tenri"]),
    )
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "unknown_correction")
    not_mine = decide(client, staff["tenri"], case["id"])
    assert (not_mine.status_code, not_mine.json()["code"]) == (403, "forbidden")
    assert points(town, WRONG)["balance"] == 500

    approved = decide(client, staff["b"], case["id"])
    assert approved.status_code == 200, approved.json()
    done = approved.json()
    assert (done["status"], done["moved"], done["funded"], done["claimed"]) == (
        "approved",
        500,
        0,
        0,
    )
    assert [leg["leg"] for leg in done["legs"]] == ["move"]
    assert done["claim"] is None
    retry = decide(client, staff["b"], case["id"])
    assert (retry.status_code, retry.json()["replayed"]) == (200, True)
    late = decide(client, staff["a"], case["id"], "rejection")
    assert (late.status_code, late.json()["code"]) == (409, "case_closed")

    assert points(town, WRONG) == {
        "municipality": OGUNI,
        "point_name": PROGRAM["point_name"],
        "balance": 0,
        "special_event": 0,
        "lots": [],
        "expiring_soon": [],
    }
    right = points(town, RIGHT)
    assert right["balance"] == 500
    assert right["lots"] == [{"funding": "budget", "expires_on": EXPIRES, "remaining": 500}]

    for token, change in ((town.token(WRONG), -500), (town.token(RIGHT), 500)):
        newest = client.get("/api/v1/me/points/history", headers=bearer(token)).json()["entries"][0]
        assert (newest["kind"], newest["change"]) == ("correct", change)
        assert newest["metadata"]["correction_case"] == case["id"]
        assert case["id"][:8] in newest["metadata"]["description_ja"]
        assert "Correction" in newest["metadata"]["description"]
        assert WRONG not in str(newest) and RIGHT not in str(newest)  # nothing of the other
    mine = client.get("/api/v1/me/corrections", headers=bearer(town.token(WRONG))).json()
    assert [(c["id"], c["side"], c["change"], c["owed"]) for c in mine] == [
        (case["id"], "from", -500, 0)
    ]
    theirs = client.get("/api/v1/me/corrections", headers=bearer(town.token(RIGHT))).json()
    assert [(c["side"], c["change"]) for c in theirs] == [("to", 500)]

    council = client.get("/api/v1/corrections?status=approved", headers=bearer(staff["operator"]))
    assert [c["id"] for c in council.json()] == [case["id"]]
    assert (
        client.get("/api/v1/corrections?status=proposed", headers=bearer(staff["operator"])).json()
        == []
    )
    staff_list = client.get(
        f"/api/v1/municipalities/{OGUNI}/corrections", headers=bearer(staff["b"])
    )
    assert [c["id"] for c in staff_list.json()] == [case["id"]]
    assert (
        client.get("/api/v1/corrections", headers=bearer(staff["a"])).json()["code"] == "forbidden"
    )
    assert (
        client.get(
            f"/api/v1/municipalities/{OGUNI}/corrections", headers=bearer(staff["tenri"])
        ).json()["code"]
        == "forbidden"
    )
    assert (
        client.get(
            f"/api/v1/municipalities/{TENRI}/corrections", headers=bearer(staff["tenri"])
        ).json()
        == []
    )
    one = client.get(
        f"/api/v1/municipalities/{OGUNI}/corrections/{case['id']}",
        headers=bearer(staff["operator"]),
    )
    assert one.json()["decided_by"] != one.json()["proposed_by"]
    assert_ledger_checks(database)


def test_points_already_spent_become_a_claim_and_the_right_holder_is_made_whole(
    card_client: TestClient, staff: dict[str, str], town: People, database: Database
) -> None:
    client = card_client
    transfer = grant(client, staff["a"])
    spend(database, WRONG, 300)
    case = propose(
        client, staff["a"], kind="move", transfer_id=transfer, right_mykey_id=RIGHT
    ).json()
    spend(database, WRONG, 50)  # spent between the proposal and the approval: counted too
    database.clock.advance(days=3)
    done = decide(client, staff["b"], case["id"]).json()
    assert (done["moved"], done["funded"], done["claimed"]) == (150, 350, 350)
    assert done["claim"] == {"mykey_id": WRONG, "points": 350, "status": "open"}
    assert [(leg["leg"], leg["points"]) for leg in done["legs"]] == [("fund", 350), ("move", 150)]

    assert points(town, WRONG)["balance"] == 0  # never below zero
    right = points(town, RIGHT)
    assert right["balance"] == 500
    assert right["lots"] == [
        {"funding": "budget", "expires_on": EXPIRES, "remaining": 150},
        {"funding": "budget", "expires_on": EXPIRES, "remaining": 350},
    ]
    assert budget_count(database) == 500 + 350  # the budget paid the spent part again
    mine = client.get("/api/v1/me/corrections", headers=bearer(town.token(WRONG))).json()
    assert [(c["change"], c["owed"]) for c in mine] == [(-150, 350)]
    assert_ledger_checks(database)


def test_a_reverse_gives_the_points_and_the_budget_count_back(
    card_client: TestClient, staff: dict[str, str], town: People, database: Database
) -> None:
    client = card_client
    whole = grant(client, staff["a"], points=600, reason="結婚祝い")
    grant(client, staff["a"], who=RIGHT, points=400, reason="転入")
    assert budget_count(database) == 1000
    over = client.post(
        f"/api/v1/municipalities/{OGUNI}/grants",
        headers=bearer(staff["a"]),
        json={"mykey_id": RIGHT, "points": 1, "reason": "x", "key": "over-1"},
    )
    assert over.json()["code"] == "budget_exceeded"

    with_right = propose(
        client, staff["a"], kind="reverse", transfer_id=whole, right_mykey_id=RIGHT
    )
    assert (with_right.status_code, with_right.json()["code"]) == (422, "invalid_correction")
    case = propose(
        client, staff["a"], kind="reverse", transfer_id=whole, reason_code="ineligible"
    ).json()
    done = decide(client, staff["b"], case["id"]).json()
    assert (done["moved"], done["budget_returned"], done["claimed"]) == (600, 600, 0)
    assert budget_count(database) == 400
    assert points(town, WRONG)["balance"] == 0
    newest = client.get("/api/v1/me/points/history", headers=bearer(town.token(WRONG))).json()
    entry = newest["entries"][0]
    assert (entry["kind"], entry["change"]) == ("reverse", -600)
    assert entry["metadata"]["correction_case"] == case["id"]
    again = propose(client, staff["b"], kind="reverse", transfer_id=whole, key="c-2")
    assert (again.status_code, again.json()["code"]) == (409, "not_correctable")

    # partly spent: what is left goes back, the rest is a claim; the count goes down by that
    part = grant(client, staff["a"], points=300, reason="誤入力")
    spend(database, WRONG, 100)
    assert budget_count(database) == 700
    case = propose(
        client, staff["a"], kind="reverse", transfer_id=part, reason_code="wrong_amount", key="c-3"
    ).json()
    done = decide(client, staff["b"], case["id"]).json()
    assert (done["moved"], done["budget_returned"], done["claimed"]) == (200, 200, 100)
    assert budget_count(database) == 500
    assert points(town, WRONG)["balance"] == 0
    assert grant(client, staff["a"], who=RIGHT, points=500, reason="再付与")  # fits again
    budget = ledger.find_account(database.uow(), ledger=OGUNI, kind=AccountKind.BUDGET, owner=OGUNI)
    # 600 + 400 + 300 + 500 granted, 600 + 200 given back
    assert ledger.balance(database.uow(), budget.id).posted == -1000
    assert_ledger_checks(database)


def test_rejected_or_withdrawn_cases_move_nothing_and_bad_requests_are_refused(
    card_client: TestClient, staff: dict[str, str], town: People, database: Database
) -> None:
    client = card_client
    transfer = grant(client, staff["a"])
    move = {"kind": "move", "transfer_id": transfer, "right_mykey_id": RIGHT}
    for headers, code, body, status, error in (
        (staff["tenri"], OGUNI, move, 403, "forbidden"),
        (staff["tenri"], TENRI, move, 404, "unknown_transfer"),
        (staff["a"], OGUNI, move | {"transfer_id": "nope"}, 404, "unknown_transfer"),
        (staff["a"], OGUNI, move | {"reason_code": "whim"}, 422, "invalid_reason_code"),
        (staff["a"], OGUNI, move | {"kind": "edit"}, 422, "invalid_correction_kind"),
        (staff["a"], OGUNI, move | {"right_mykey_id": None}, 422, "right_holder_required"),
        (staff["a"], OGUNI, move | {"right_mykey_id": "NOBODY00"}, 404, "unknown_mykey_id"),
        (staff["a"], OGUNI, move | {"right_mykey_id": WRONG}, 422, "same_holder"),
        (staff["a"], OGUNI, move | {"note": " "}, 422, "invalid_note"),
        (staff["a"], OGUNI, move | {"key": "bad key"}, 422, "invalid_idempotency_key"),
        (staff["operator"], OGUNI, move, 403, "forbidden"),
    ):
        response = propose(client, headers, code, **body)
        assert (response.status_code, response.json()["code"]) == (status, error), body
    assert client.get("/api/v1/corrections", headers=bearer(staff["operator"])).json() == []

    case = propose(client, staff["a"], **move).json()
    own_reject = decide(client, staff["a"], case["id"], "rejection")
    assert (own_reject.status_code, own_reject.json()["code"]) == (409, "same_person")
    rejected = client.post(
        f"/api/v1/municipalities/{OGUNI}/corrections/{case['id']}/rejection",
        headers=bearer(staff["b"]),
        json={"note": "本人確認の結果、誤りではなかった"},
    )
    assert (rejected.json()["status"], rejected.json()["decision_note"]) == (
        "rejected",
        "本人確認の結果、誤りではなかった",
    )
    after = decide(client, staff["b"], case["id"])
    assert (after.status_code, after.json()["code"]) == (409, "case_closed")
    assert points(town, WRONG)["balance"] == 500
    assert points(town, RIGHT)["balance"] == 0

    second = propose(client, staff["a"], **move | {"key": "c-2"}).json()  # room for a new case
    not_proposer = decide(client, staff["b"], second["id"], "withdrawal")
    assert (not_proposer.status_code, not_proposer.json()["code"]) == (409, "not_proposer")
    assert decide(client, staff["a"], second["id"], "withdrawal").json()["status"] == "withdrawn"
    assert decide(client, staff["b"], second["id"]).json()["code"] == "case_closed"
    assert points(town, WRONG)["balance"] == 500
    statuses = client.get(
        f"/api/v1/municipalities/{OGUNI}/corrections", headers=bearer(staff["b"])
    ).json()
    assert sorted(c["status"] for c in statuses) == ["rejected", "withdrawn"]
    assert client.get("/api/v1/me/corrections", headers=bearer(town.token(WRONG))).json() == []
    bad_status = client.get("/api/v1/corrections?status=open", headers=bearer(staff["operator"]))
    assert (bad_status.status_code, bad_status.json()["code"]) == (422, "invalid_status")
    unknown = decide(client, staff["b"], "not-a-case")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_correction")
    reasons = client.get("/api/v1/correction-reasons").json()
    assert [r["code"] for r in reasons] == [
        "wrong_person",
        "duplicate",
        "wrong_amount",
        "ineligible",
        "other",
    ]
    assert_ledger_checks(database)
