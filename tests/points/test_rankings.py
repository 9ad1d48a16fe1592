"""Rankings (R4.5): the top residents by points earned in a period, and awards from them
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mykey import ledger
from mykey.db import UnitOfWork
from mykey.demo import MUNICIPALITIES
from mykey.errors import MyKeyError
from mykey.municipalities.registry import upsert
from mykey.points.grants import grant_points
from mykey.points.program_setup import Rule, set_up_program
from mykey.points.rankings import AwardReport, award_ranking, rank, saved_ranking
from tests.conftest import Database
from tests.points.test_accruals import make_residents

BUNGO, TSU = "442097", "242012"
RULES = [
    Rule("health_walk", "健康ウォーク", 500),
    Rule("exercise", "健康体操", 20),
    Rule("care", "介護支援", 300, accrues=True),
]
OCT1, DEC31 = date(2026, 10, 1), date(2026, 12, 31)


def program(uow: UnitOfWork, code: str, budget: int | None = None) -> None:
    set_up_program(
        uow,
        municipality=code,
        point_name=f"{code} ポイント",
        terms="",
        validity={},
        usable_at=["shop"],
        rules=RULES,
        annual_budget=budget,
    )


def top(
    uow: UnitOfWork,
    activity: str | None = "health_walk",
    *,
    start: date = OCT1,
    end: date = DEC31,
    top: int = 10,
    minimum: int = 0,
) -> list[tuple[int, str, int]]:
    ranking = rank(uow, BUNGO, activity, start, end, top, minimum)
    return [(r.rank, r.mykey_id, r.points) for r in ranking.rows]


def test_ranking_threshold_ties_period_activity_and_awards(database: Database) -> None:
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    program(uow, BUNGO, budget=10**9)
    program(uow, TSU)
    people = ["RANK0001", "RANK0002", "RANK0003", "RANK0004", "RANK0005"]
    make_residents(uow, *people)
    n = iter(range(10_000))
    granted = 0

    def grant(who: str, activity: str | None, times: int = 1, code: str = BUNGO) -> str:
        nonlocal granted
        transfer = ""
        for _ in range(times):
            receipt = grant_points(
                uow,
                municipality=code,
                mykey_id=who,
                actor="staff:bungo",
                key=f"g-{next(n)}",
                reason="ラリー",
                activity=activity,
                points=None if activity else 1000,
            )
            granted += receipt.points if code == BUNGO else 0
            transfer = str(receipt.transfer_id)
        return transfer

    clock = database.clock
    clock.now = datetime(2026, 9, 30, 14, 59, 59, tzinfo=UTC)  # Sep 30, 23:59:59 in Tokyo
    grant("RANK0004", "health_walk", 4)  # before the period: not counted
    clock.advance(seconds=1)  # Oct 1, 00:00 in Tokyo: counted
    grant("RANK0001", "health_walk", 3)  # 1,500
    clock.advance(hours=1)
    grant("RANK0002", "health_walk", 3)  # 1,500, reached an hour after RANK0001
    grant("RANK0003", "health_walk", 2)  # 1,000
    grant("RANK0003", "health_walk", 10, code=TSU)  # another town's grants: not counted
    grant("RANK0004", "exercise", 30)  # 600 of another activity
    grant("RANK0004", "health_walk")  # 500
    grant("RANK0004", "care")  # accrues; counts for "every activity"
    grant("RANK0004", None)  # a grant with a reason (1,000 points)
    clock.now = datetime(2026, 12, 31, 14, 59, 59, tzinfo=UTC)  # Dec 31, 23:59:59 in Tokyo
    grant("RANK0005", "health_walk", 3)  # 1,500 but reached last
    mistake = grant("RANK0005", "health_walk")  # reversed below: not counted
    ledger.reverse(uow, transfer_id=mistake, actor="staff:bungo", reason="誤り")
    clock.advance(seconds=1)  # Jan 1: after the period
    grant("RANK0003", "health_walk", 5)

    assert top(uow) == [
        (1, "RANK0001", 1500),
        (2, "RANK0002", 1500),  # tie: RANK0001 reached 1,500 first
        (3, "RANK0005", 1500),
        (4, "RANK0003", 1000),
        (5, "RANK0004", 500),
    ]
    assert top(uow, minimum=1000, top=3) == top(uow)[:3]
    assert [r[1] for r in top(uow, minimum=1000)] == [
        "RANK0001",
        "RANK0002",
        "RANK0005",
        "RANK0003",
    ]
    assert top(uow, activity="exercise") == [(1, "RANK0004", 600)]
    assert top(uow, activity=None)[0] == (1, "RANK0004", 500 + 600 + 300 + 1000)
    assert top(uow, end=date(2026, 12, 30))[-1] == (4, "RANK0004", 500)  # RANK0005 outside
    assert top(uow, start=date(2026, 9, 30))[0] == (1, "RANK0004", 2500)
    assert top(uow, start=date(2027, 1, 1), end=date(2027, 1, 1)) == [(1, "RANK0003", 2500)]
    for bad, code in (
        ({"top": 0}, "invalid_count"),
        ({"minimum": -1}, "invalid_points"),
        ({"start": DEC31, "end": OCT1}, "invalid_period"),
        ({"activity": "Health Walk"}, "invalid_activity"),
    ):
        with pytest.raises(MyKeyError) as refused:
            top(uow, **bad)  # type: ignore[arg-type]
        assert refused.value.code == code

    # Budget for two awards of 5,000 only, so the third ranked resident is refused.
    program(uow, BUNGO, budget=granted + 2 * 5000 + 100)

    def award(key: str = "award-1", points: int = 5000) -> AwardReport:
        return award_ranking(
            uow,
            municipality=BUNGO,
            activity="health_walk",
            start=OCT1,
            end=DEC31,
            top=3,
            minimum=1000,
            points=points,
            reason="上位者への商店街券",
            actor="staff:bungo",
            key=key,
        )

    first = award()
    assert (first.granted, first.already, first.refused) == (2, 0, 1)
    refusal = first.outcomes[2]
    assert (refusal.mykey_id, refusal.status, refusal.code) == (
        "RANK0005",
        "refused",
        "budget_exceeded",
    )
    second = award()
    assert (second.granted, second.already, second.refused) == (0, 2, 1)
    assert second.ranking == first.ranking
    assert saved_ranking(uow, first.award_id) == first.ranking
    with pytest.raises(MyKeyError) as reused:
        award(points=6000)
    assert reused.value.code == "idempotency_key_reused"
    wallet = ledger.find_account(uow, ledger=BUNGO, kind="wallet", owner="RANK0001")
    assert ledger.balance(uow, wallet.id).available == 1500 + 5000

    # The budget raised, the same award run again gives the rest, and nobody twice.
    program(uow, BUNGO, budget=granted + 3 * 5000)
    third = award()
    assert (third.granted, third.already, third.refused) == (1, 2, 0)
    last = ledger.find_account(uow, ledger=BUNGO, kind="wallet", owner="RANK0005")
    assert ledger.balance(uow, last.id).available == 1500 + 5000
    report = ledger.check(uow)
    assert report.ok, report.problems
