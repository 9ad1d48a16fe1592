"""Bulk grants over HTTP (R4.4): a town hall grants 80,000 residents from one file, or none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mykey import ledger
from mykey.config import Settings
from mykey.demo import MUNICIPALITIES
from mykey.identity.keys import create_key
from mykey.ledger import AccountKind
from mykey.municipalities.registry import upsert
from mykey.points.program_setup import Rule, set_up_program
from mykey.web.app import create_app
from tests.api.conftest import bearer
from tests.builders import jobs_finished, residents_in_bulk
from tests.conftest import Database

TSU, OGUNI = "242012", "434248"
SENIORS = 80_000


@pytest.fixture
def tsu(database: Database) -> Iterator[tuple[TestClient, dict[str, str]]]:
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    for code, name in ((TSU, "津市ポイント"), (OGUNI, "小国町北里柴三郎ポイント")):
        set_up_program(
            uow,
            municipality=code,
            point_name=name,
            terms="",
            validity={},
            usable_at=["shop"],
            rules=[Rule("senior", "敬老ポイント", 1000, "year"), Rule("walk", "ウォーク", 500)],
            annual_budget=100_000_000 if code == TSU else 3000,
        )
    keys = {
        "tsu": create_key(uow, role="municipality_staff", label="津市", municipality=TSU)[0],
        "tsu2": create_key(uow, role="municipality_staff", label="津市2", municipality=TSU)[0],
        "oguni": create_key(uow, role="municipality_staff", label="小国町", municipality=OGUNI)[0],
    }
    app = create_app(Settings(database_url=database.url, environment="test"), clock=database.clock)
    with TestClient(app) as client:
        yield client, keys
    app.state.engine.dispose()


def send(
    client: TestClient, staff: str, code: str, body: bytes, key: str, **params: object
) -> dict[str, object]:
    answer = client.post(
        f"/api/v1/municipalities/{code}/grant-jobs",
        params={k: v for k, v in params.items() if v is not None},
        content=body,
        headers={**bearer(staff), "Content-Type": "text/csv", "Idempotency-Key": key},
    )
    assert answer.status_code == 202, answer.text
    job: dict[str, object] = answer.json()
    assert answer.headers["Location"] == job["links"]["self"]  # type: ignore[index]
    jobs_finished(client.app.state.engine)  # type: ignore[attr-defined]
    polled = client.get(str(job["links"]["self"]), headers=bearer(staff))  # type: ignore[index]
    assert polled.status_code == 200
    result: dict[str, object] = polled.json()
    return result | {"replayed": job["replayed"]}


def wallet(database: Database, code: str, who: str) -> int:
    uow = database.uow()
    account = ledger.open_account(uow, ledger=code, kind=AccountKind.WALLET, owner=who)
    return ledger.balance(uow, account.id).available


def test_eighty_thousand_seniors_in_one_job(
    database: Database, tsu: tuple[TestClient, dict[str, str]]
) -> None:
    client, staff = tsu
    ids = [f"S{n:07d}" for n in range(SENIORS)]
    residents_in_bulk(database.uow(), ids)
    eligible = ("mykey_id\r\n" + "\r\n".join(ids) + "\r\n").encode()

    job = send(client, staff["tsu"], TSU, eligible, "seniors-2026", activity="senior")

    assert job["status"] == "done", job
    assert (job["rows"], job["granted"], job["points"], job["refused"]) == (
        SENIORS,
        SENIORS,
        SENIORS * 1000,
        0,
    )
    assert wallet(database, TSU, "S0000000") == 1000
    assert wallet(database, TSU, f"S{SENIORS - 1:07d}") == 1000
    uow = database.uow()
    budget = ledger.find_account(uow, ledger=TSU, kind=AccountKind.BUDGET, owner=TSU)
    assert ledger.balance(uow, budget.id).posted == -SENIORS * 1000

    # The same key again (a lost answer, retried) is the same job and grants nothing more.
    again = send(client, staff["tsu"], TSU, eligible, "seniors-2026", activity="senior")
    assert (again["id"], again["status"], again["replayed"]) == (job["id"], "done", True)
    assert ledger.balance(uow, budget.id).posted == -SENIORS * 1000

    # Another job for the same once-a-year activity is refused whole: everyone has had it.
    twice = send(client, staff["tsu2"], TSU, eligible[:2000], "seniors-again", activity="senior")
    assert twice["status"] == "refused"
    first = client.get(
        f"/api/v1/municipalities/{TSU}/grant-jobs/{twice['id']}/refusals",
        params={"limit": 3},
        headers=bearer(staff["tsu2"]),
    ).json()
    assert [(r["line"], r["code"]) for r in first] == [(n, "limit_reached") for n in (2, 3, 4)]
    assert ledger.balance(uow, budget.id).posted == -SENIORS * 1000
    report = ledger.check(uow)
    assert report.ok, report.problems


def test_a_file_with_refused_rows_grants_nothing_and_says_why(
    database: Database, tsu: tuple[TestClient, dict[str, str]]
) -> None:
    client, staff = tsu
    residents_in_bulk(database.uow(), ["TSU00001", "TSU00002", "TSU00003"])
    grants = (
        "mykey_id,points,reason\n"
        "TSU00001,300,清掃ボランティア\n"
        "tsu00002,1500,\n"  # no reason on the row: the job's reason
        "BAD-ID,100,x\n"
        "TSU00001,100,重複\n"
        "NOSUCH01,100,x\n"
        "TSU00003,-5,x\n"
        "TSU00003,100\n"
    ).encode()

    job = send(client, staff["tsu"], TSU, grants, "mixed-1", reason="地域活動")

    assert (job["status"], job["rows"], job["granted"], job["refused"]) == ("refused", 7, 0, 5)
    refused = client.get(
        f"/api/v1/municipalities/{TSU}/grant-jobs/{job['id']}/refusals",
        headers=bearer(staff["tsu"]),
    ).json()
    assert [(r["line"], r["mykey_id"], r["code"]) for r in refused] == [
        (4, "BAD-ID", "invalid_mykey_id"),
        (5, "TSU00001", "duplicate_row"),
        (6, "NOSUCH01", "unknown_mykey_id"),
        (7, "TSU00003", "invalid_points"),
        (8, "TSU00003", "invalid_row"),
    ]
    assert all(r["message_ja"] and r["message"] for r in refused)
    csv = client.get(
        f"/api/v1/municipalities/{TSU}/grant-jobs/{job['id']}/refusals",
        params={"format": "csv"},
        headers=bearer(staff["tsu"]),
    )
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "line,mykey_id,code,理由,reason" and len(lines) == 6
    assert wallet(database, TSU, "TSU00001") == 0  # nothing granted, not even the good rows

    # The corrected file (a Shift_JIS export with Japanese headers) goes through whole.
    fixed = "マイキーID,ポイント,理由\nTSU00001,300,清掃ボランティア\nTSU00002,1500,\n"
    done = send(client, staff["tsu"], TSU, fixed.encode("cp932"), "mixed-2", reason="地域活動")
    assert (done["status"], done["granted"], done["points"]) == ("done", 2, 1800)
    assert (wallet(database, TSU, "TSU00001"), wallet(database, TSU, "TSU00002")) == (300, 1500)
    history = ledger.history(
        database.uow(),
        ledger.open_account(
            database.uow(), ledger=TSU, kind=AccountKind.WALLET, owner="TSU00002"
        ).id,
    )
    assert history.entries[0].metadata["reason"] == "地域活動"
    assert history.entries[0].metadata["job"] == done["id"]

    # The same key with another file is a conflict, not a second job.
    reused = client.post(
        f"/api/v1/municipalities/{TSU}/grant-jobs",
        content=b"mykey_id\nTSU00003\n",
        params={"points": 100, "reason": "x"},
        headers={**bearer(staff["tsu"]), "Content-Type": "text/csv", "Idempotency-Key": "mixed-2"},
    )
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")
    assert reused.headers["content-type"] == "application/problem+json"
    report = ledger.check(database.uow())
    assert report.ok, report.problems


def test_whole_file_refusals_budget_and_roles(
    database: Database, tsu: tuple[TestClient, dict[str, str]]
) -> None:
    client, staff = tsu
    residents_in_bulk(database.uow(), [f"OGU{n:05d}" for n in range(10)])
    everyone = ("mykey_id\n" + "\n".join(f"OGU{n:05d}" for n in range(10)) + "\n").encode()

    # 10 × 500 = 5,000 is over Oguni's budget of 3,000: nothing is granted.
    over = send(client, staff["oguni"], OGUNI, everyone, "walk-1", activity="walk")
    assert over["status"] == "refused"
    assert over["error"]["code"] == "budget_exceeded"  # type: ignore[index]
    assert wallet(database, OGUNI, "OGU00000") == 0
    fits = send(client, staff["oguni"], OGUNI, everyone[: 9 + 9 * 6], "walk-2", activity="walk")
    assert (fits["status"], fits["granted"], fits["points"]) == ("done", 6, 3000)

    # A file without the header, an eligibility list without points: refused whole, clearly.
    headless = send(client, staff["oguni"], OGUNI, b"OGU00001\n", "h-1", activity="walk")
    assert headless["error"]["code"] == "invalid_grant_file"  # type: ignore[index]
    pointless = send(client, staff["oguni"], OGUNI, b"mykey_id\nOGU00001\n", "h-2")
    assert pointless["error"]["code"] == "invalid_grant_file"  # type: ignore[index]

    # Staff act for their own municipality only; a job is seen only by its municipality.
    other = client.post(
        f"/api/v1/municipalities/{OGUNI}/grant-jobs",
        content=everyone,
        params={"activity": "walk"},
        headers={**bearer(staff["tsu"]), "Content-Type": "text/csv", "Idempotency-Key": "x-1"},
    )
    assert (other.status_code, other.json()["code"]) == (403, "forbidden")
    peek = client.get(
        f"/api/v1/municipalities/{TSU}/grant-jobs/{fits['id']}", headers=bearer(staff["tsu"])
    )
    assert (peek.status_code, peek.json()["code"]) == (404, "unknown_job")
    listed = client.get(
        f"/api/v1/municipalities/{OGUNI}/grant-jobs", headers=bearer(staff["oguni"])
    )
    assert {j["id"] for j in listed.json()} == {
        over["id"],
        fits["id"],
        headless["id"],
        pointless["id"],
    }
    no_key = client.post(
        f"/api/v1/municipalities/{OGUNI}/grant-jobs",
        content=everyone,
        headers={**bearer(staff["oguni"]), "Content-Type": "text/csv"},
    )
    assert no_key.status_code == 422
    report = ledger.check(database.uow())
    assert report.ok, report.problems
