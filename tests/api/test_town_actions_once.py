"""A municipality's one-off actions have effect once for the municipality, whoever of its staff
sends them (issue #13, item 2): ranking awards, bulk grant jobs, correction proposals, the
accrual year's close and its payouts, and the month's close. A second staff member replaying
gets the stored answer; a new key for an action that is by nature once gets the same answer or
a clear refusal, never a second effect; another town's staff are refused (HTTP, both engines).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from httpx2 import Response

from mykey import ledger
from mykey.demo import MUNICIPALITIES
from mykey.identity import residents
from mykey.identity.keys import create_key
from mykey.ledger import AccountKind
from mykey.municipalities.registry import upsert
from tests.api.conftest import bearer
from tests.builders import jobs_finished
from tests.conftest import Database
from tests.points.test_accruals import make_residents

OGUNI, TENRI = "434248", "292044"
WINNERS = ["OGU00001", "OGU00002", "OGU00003"]
PROGRAM = {
    "point_name": "小国町ポイント",
    "usable_at": ["shop"],
    "rules": [
        {"activity": "health_walk", "name": "健康ウォークラリー", "points": 500},
        {"activity": "care", "name": "介護支援", "points": 100, "accrues": True},
    ],
}


@pytest.fixture(autouse=True)
def quick_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(residents, "_hasher", PasswordHasher(time_cost=1, memory_cost=64))


class Town:
    """Oguni with two staff members (a, b), Tenri's staff, two council operators."""

    def __init__(self, client: TestClient, database: Database) -> None:
        self.client, self.database = client, database
        uow = database.uow()
        upsert(uow, MUNICIPALITIES)

        def key(role: str, label: str, code: str | None = None) -> dict[str, str]:
            return bearer(create_key(uow, role=role, label=label, municipality=code)[0])

        self.a = key("municipality_staff", "小国町 A", OGUNI)
        self.b = key("municipality_staff", "小国町 B", OGUNI)
        self.tenri = key("municipality_staff", "天理市", TENRI)
        self.council = key("operator", "協議会 1")
        self.council_2 = key("operator", "協議会 2")
        put = client.put(
            f"/api/v1/municipalities/{OGUNI}/program", headers=self.council, json=PROGRAM
        )
        assert put.status_code == 200, put.json()
        make_residents(uow, *WINNERS)

    def post(self, path: str, who: dict[str, str], **body: Any) -> Response:
        return self.client.post(f"/api/v1{path}", headers=who, json=body)

    def grant(self, who: str, activity: str, key: str) -> None:
        made = self.post(
            f"/municipalities/{OGUNI}/grants",
            self.a,
            mykey_id=who,
            activity=activity,
            reason="ラリー",
            key=key,
        )
        assert made.status_code == 201, made.json()

    def balance(self, who: str) -> int:
        uow = self.database.uow()
        wallet = ledger.open_account(uow, ledger=OGUNI, kind=AccountKind.WALLET, owner=who)
        return ledger.balance(uow, wallet.id).available

    def transfers(self) -> int:
        return self.database.count("ledger_transfers")

    def check(self) -> None:
        report = ledger.check(self.database.uow())
        assert report.ok, report.problems


@pytest.fixture
def town(card_client: TestClient, database: Database) -> Town:
    return Town(card_client, database)


AWARD = {
    "activity": "health_walk",
    "from": "2026-10-01",
    "to": "2026-10-31",
    "top": 200,
    "points": 5000,
    "reason": "上位者への商店街券",
}


def test_a_second_staff_member_does_not_double_a_ranking_award(town: Town) -> None:
    for n, who in enumerate(WINNERS):
        town.grant(who, "health_walk", f"walk-{n}")
    awards = f"/municipalities/{OGUNI}/rankings/awards"
    first = town.post(awards, town.a, **AWARD, key="award-2026-10")
    assert first.status_code == 200, first.json()
    assert (first.json()["granted"], first.json()["replayed"]) == (3, False)
    after_first = town.transfers()

    # The same body and key from a colleague: the stored award, nobody granted again.
    second = town.post(awards, town.b, **AWARD, key="award-2026-10")
    assert second.status_code == 200, second.json()
    body = second.json()
    assert (body["award_id"], body["replayed"]) == (first.json()["award_id"], True)
    assert (body["granted"], body["already"], body["refused"]) == (0, 3, 0)
    assert body["ranking"] == first.json()["ranking"]

    # The same ranking under a new key is the same award (the same answer) …
    fresh = town.post(awards, town.b, **AWARD, key="award-2026-10-b")
    assert (fresh.json()["award_id"], fresh.json()["already"]) == (first.json()["award_id"], 3)
    # … and asking for something else of it is refused, clearly.
    more = town.post(awards, town.b, **AWARD | {"points": 6000}, key="award-2026-10-c")
    assert (more.status_code, more.json()["code"]) == (409, "ranking_already_awarded")
    assert more.json()["details"]["award_id"] == first.json()["award_id"]
    # Another town's staff may not award Oguni's ranking at all.
    other = town.post(awards, town.tenri, **AWARD, key="award-2026-10")
    assert (other.status_code, other.json()["code"]) == (403, "forbidden")

    assert town.transfers() == after_first
    assert [town.balance(w) for w in WINNERS] == [500 + 5000] * 3
    town.check()


def test_a_second_staff_member_does_not_issue_a_second_set_of_prize_vouchers(town: Town) -> None:
    street = {"name": "小国ゆうステーション通り", "municipality": OGUNI}
    assert town.client.put("/api/v1/streets/oguni-st", headers=town.a, json=street).is_success
    shop = {"name": "駄菓子屋", "municipality": OGUNI, "kind": "shop", "accepts": [OGUNI]}
    shop["street_id"] = "oguni-st"
    assert town.client.put("/api/v1/shops/oguni-1", headers=town.a, json=shop).is_success
    for n, who in enumerate(WINNERS):
        town.grant(who, "health_walk", f"walk-{n}")
    prize = {"count": 10, "face_value": 500, "valid_days": 30, "street_id": "oguni-st"}
    award = AWARD | {"points": 0, "vouchers": prize}
    awards = f"/municipalities/{OGUNI}/rankings/awards"

    first = town.post(awards, town.a, **award, key="prize-2026-10")
    assert first.status_code == 200, first.json()
    assert [len(o["vouchers"]) for o in first.json()["outcomes"]] == [10, 10, 10]
    issued = town.database.count("vouchers")
    # The colleague's replay and a new key for the same ranking give the same vouchers back.
    for who, key in ((town.b, "prize-2026-10"), (town.b, "prize-2026-10-b")):
        again = town.post(awards, who, **award, key=key)
        assert again.status_code == 200, again.json()
        assert again.json()["replayed"] is True
        assert [o["vouchers"] for o in again.json()["outcomes"]] == [
            o["vouchers"] for o in first.json()["outcomes"]
        ]
    assert town.database.count("vouchers") == issued == 30
    town.check()


def send_job(town: Town, who: dict[str, str], key: str, reason: str = "敬老祝い") -> Response:
    """Send a list, and wait for the app's job runner to finish what it queued."""
    sent = town.client.post(
        f"/api/v1/municipalities/{OGUNI}/grant-jobs",
        content=("mykey_id\n" + "\n".join(WINNERS) + "\n").encode(),
        params={"points": 3000, "reason": reason},
        headers={**who, "Content-Type": "text/csv", "Idempotency-Key": key},
    )
    jobs_finished(town.database.engine)
    return sent


def test_a_second_staff_member_does_not_double_a_bulk_grant(town: Town) -> None:
    first = send_job(town, town.a, "keirou-2026")
    assert first.status_code == 202, first.json()
    job = town.client.get(first.headers["Location"], headers=town.a).json()
    assert (job["status"], job["granted"]) == ("done", 3)
    after_first = town.transfers()

    second = send_job(town, town.b, "keirou-2026")
    assert second.status_code == 202, second.json()
    assert (second.json()["id"], second.json()["replayed"]) == (first.json()["id"], True)
    other = send_job(town, town.tenri, "keirou-2026")
    assert (other.status_code, other.json()["code"]) == (403, "forbidden")

    assert town.transfers() == after_first
    assert [town.balance(w) for w in WINNERS] == [3000] * 3
    town.check()


def test_the_same_list_under_another_key_is_the_same_job(town: Town) -> None:
    """Two staff members' console forms (or scripts) each carry a key of their own: the same
    file with the same parameters is still one job; another reason is another job; a job
    refused as a whole gave nothing, so the list may be sent again once the budget allows."""
    first = send_job(town, town.a, "form-of-a")
    assert first.status_code == 202, first.json()
    after_first = town.transfers()
    second = send_job(town, town.b, "form-of-b")
    assert second.status_code == 202, second.json()
    assert (second.json()["id"], second.json()["replayed"]) == (first.json()["id"], True)
    assert town.transfers() == after_first
    assert [town.balance(w) for w in WINNERS] == [3000] * 3

    budget = PROGRAM | {"annual_budget": 5_000}  # counted from now on: 9,000 do not fit
    put = town.client.put(
        f"/api/v1/municipalities/{OGUNI}/program", headers=town.council, json=budget
    )
    assert put.status_code == 200, put.json()
    over = send_job(town, town.a, "december", reason="年末見舞い")
    assert over.status_code == 202, over.json()
    refused = town.client.get(over.headers["Location"], headers=town.a).json()
    assert (refused["status"], refused["granted"]) == ("refused", 0)
    bigger = PROGRAM | {"annual_budget": 30_000}
    put = town.client.put(
        f"/api/v1/municipalities/{OGUNI}/program", headers=town.council, json=bigger
    )
    assert put.status_code == 200, put.json()
    again = send_job(town, town.b, "december-again", reason="年末見舞い")
    assert again.status_code == 202, again.json()
    assert again.json()["id"] != over.json()["id"] and not again.json()["replayed"]
    done = town.client.get(again.headers["Location"], headers=town.b).json()
    assert (done["status"], done["granted"]) == ("done", 3)
    assert [town.balance(w) for w in WINNERS] == [6000] * 3
    town.check()


def test_a_second_staff_member_replaying_a_proposal_gets_the_case(town: Town) -> None:
    town.grant(WINNERS[0], "health_walk", "walk-0")
    uow = town.database.uow()
    wallet = ledger.find_account(uow, ledger=OGUNI, kind=AccountKind.WALLET, owner=WINNERS[0])
    tid = str(ledger.history(uow, wallet.id).entries[0].transfer_id)
    cases = f"/municipalities/{OGUNI}/corrections"
    body = {
        "kind": "move",
        "transfer_id": tid,
        "right_mykey_id": WINNERS[1],
        "reason_code": "wrong_person",
        "note": "窓口で取り違え",
        "key": "case-1",
    }
    first = town.post(cases, town.a, **body)
    assert first.status_code == 201, first.json()
    second = town.post(cases, town.b, **body)
    assert second.status_code == 201, second.json()
    assert (second.json()["id"], second.json()["replayed"]) == (first.json()["id"], True)
    # One case for the town: a new key for the same transfer is refused.
    again = town.post(cases, town.b, **body | {"key": "case-2"})
    assert (again.status_code, again.json()["code"]) == (409, "case_exists")
    other = town.post(cases, town.tenri, **body)
    assert (other.status_code, other.json()["code"]) == (403, "forbidden")
    # The proposer is the first sender, so the colleague may approve it: it moves once.
    approved = town.post(f"{cases}/{first.json()['id']}/approval", town.b)
    assert approved.status_code == 200, approved.json()
    assert (town.balance(WINNERS[0]), town.balance(WINNERS[1])) == (0, 500)
    town.check()


def test_the_accrual_year_closes_and_pays_once_for_the_town(town: Town) -> None:
    town.grant(WINNERS[0], "care", "care-0")
    town.database.clock.now = datetime(2027, 4, 2, 1, 0, tzinfo=UTC)
    close = f"/municipalities/{OGUNI}/accruals/2026/close"
    assert town.post(close, town.tenri).json()["code"] == "forbidden"
    first = town.post(close, town.a)
    assert first.status_code == 200, first.json()
    assert first.json()["donations"] + first.json()["payouts"] == 1
    after_first = town.transfers()
    second = town.post(close, town.b)
    assert second.status_code == 200, second.json()
    assert (second.json()["payouts"], second.json()["donations"]) == (0, 0)
    assert second.json()["already_closed"] == 1
    assert town.transfers() == after_first


def test_a_month_closes_once_whichever_operator_closes_it(town: Town) -> None:
    town.grant(WINNERS[0], "health_walk", "walk-0")
    town.database.clock.now = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    first = town.post("/settlements/2026-10/close", town.council)
    assert (first.status_code, first.json()["status"]) == (200, "closed"), first.json()
    after_first = town.transfers()
    second = town.post("/settlements/2026-10/close", town.council_2)
    assert (second.status_code, second.json()["status"]) == (200, "already_closed")
    assert second.json()["statements"] == first.json()["statements"]
    assert town.transfers() == after_first
    staff = town.post("/settlements/2026-10/close", town.a)
    assert staff.status_code == 403, staff.json()
