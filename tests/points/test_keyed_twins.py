"""Twins: the same key sent at the same moment, by one client or by several staff members of a
town, has effect once (issue #13, items 2 and 7; real threads, SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from mykey import ledger
from mykey.db import UnitOfWork
from mykey.demo import MUNICIPALITIES
from mykey.errors import MyKeyError
from mykey.ledger import AccountKind
from mykey.municipalities.registry import upsert
from mykey.points.grants import GrantReceipt, grant_points
from mykey.points.rankings import AwardReport, award_ranking
from tests.conftest import Database
from tests.ledger.test_concurrency import run_together
from tests.points.test_accruals import make_residents
from tests.points.test_rankings import BUNGO, program

WINNERS = ["TWIN0001", "TWIN0002", "TWIN0003"]


def set_up(database: Database) -> UnitOfWork:
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    program(uow, BUNGO, budget=10**9)
    make_residents(uow, *WINNERS)
    return uow


def balance(uow: UnitOfWork, who: str) -> int:
    wallet = ledger.open_account(uow, ledger=BUNGO, kind=AccountKind.WALLET, owner=who)
    return ledger.balance(uow, wallet.id).available


def test_one_key_sent_twice_at_once_grants_once_and_another_body_is_refused(
    database: Database,
) -> None:
    uow = set_up(database)

    def send(points: int) -> Callable[[UnitOfWork], GrantReceipt]:
        def job(uow: UnitOfWork) -> GrantReceipt:
            return grant_points(
                uow,
                municipality=BUNGO,
                mykey_id=WINNERS[0],
                actor="staff:bungo",
                key="desk-0001",
                reason="出産祝い",
                points=points,
            )

        return job

    answers = run_together(database, [send(1000)] * 3 + [send(2000)] * 3)
    receipts = [a for a in answers if isinstance(a, GrantReceipt)]
    refusals = [a for a in answers if isinstance(a, MyKeyError)]
    assert len({r.transfer_id for r in receipts}) == 1
    assert sum(not r.replayed for r in receipts) == 1
    assert len(receipts) == 3 and {r.points for r in receipts} in ({1000}, {2000})
    assert {e.code for e in refusals} == {"idempotency_key_reused"}
    assert balance(uow, WINNERS[0]) == receipts[0].points
    report = ledger.check(uow)
    assert report.ok, report.problems


def test_an_award_sent_by_four_staff_members_at_once_grants_each_winner_once(
    database: Database,
) -> None:
    uow = set_up(database)
    for n, who in enumerate(WINNERS):
        grant_points(
            uow,
            municipality=BUNGO,
            mykey_id=who,
            actor="staff:desk",
            key=f"walk-{n}",
            reason="ラリー",
            activity="health_walk",
        )

    def staff(name: str) -> Callable[[UnitOfWork], AwardReport]:
        def job(uow: UnitOfWork) -> AwardReport:
            return award_ranking(
                uow,
                municipality=BUNGO,
                activity="health_walk",
                start=date(2026, 10, 1),
                end=date(2026, 10, 31),
                top=200,
                minimum=0,
                points=5000,
                reason="上位者への商店街券",
                actor=f"staff:{name}",
                key="award-2026-10",
            )

        return job

    reports = run_together(database, [staff(n) for n in ("a", "b", "c", "d")])
    assert all(isinstance(r, AwardReport) for r in reports), reports
    awards = [r for r in reports if isinstance(r, AwardReport)]
    assert len({r.award_id for r in awards}) == 1
    assert sum(r.granted for r in awards) == len(WINNERS)  # each winner once, by someone
    assert [balance(uow, w) for w in WINNERS] == [500 + 5000] * len(WINNERS)
    report = ledger.check(uow)
    assert report.ok, report.problems


def test_the_same_list_sent_at_once_under_four_keys_is_one_job(database: Database) -> None:
    """Four staff members' forms, each with its own key, send the same list at the same
    moment: one job is made, the others answer with it (the request's hash is the job's
    identity, and twins wait for each other on it)."""
    from mykey.points import bulk

    uow = set_up(database)
    data = ("mykey_id\n" + "\n".join(WINNERS) + "\n").encode()
    params = bulk.JobParams(activity=None, points=700, reason="年末見舞い", event=None)

    def send(n: int) -> Callable[[UnitOfWork], bulk.JobView]:
        def job(uow: UnitOfWork) -> bulk.JobView:
            return bulk.submit_job(
                uow,
                municipality=BUNGO,
                actor=f"staff:bungo-{n}",
                key=f"form-{n}",
                data=data,
                params=params,
            )

        return job

    answers = run_together(database, [send(n) for n in range(4)])
    assert all(isinstance(a, bulk.JobView) for a in answers), answers
    assert len({a.id for a in answers}) == 1
    assert sum(not a.replayed for a in answers) == 1
    assert database.count("grant_jobs") == 1
    bulk.run_job(database.uow(), answers[0].id, data)
    assert [balance(uow, w) for w in WINNERS] == [700] * 3
    report = ledger.check(uow)
    assert report.ok, report.problems
