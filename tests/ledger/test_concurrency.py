"""Many writers at once, with real threads on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

from mykey import ledger
from mykey.errors import MyKeyError
from tests.builders import grant, town, wallet
from tests.conftest import Database

T = TypeVar("T")
WORKERS = 8


def run_together(database: Database, jobs: list[Callable[..., T]]) -> list[T | MyKeyError]:
    """Start every job at the same moment, each with its own unit of work."""
    start = threading.Barrier(len(jobs))

    def go(job: Callable[..., T]) -> T | MyKeyError:
        uow = database.uow()
        start.wait()
        try:
            return job(uow)
        except MyKeyError as error:
            return error

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(go, jobs))


def test_many_writers_on_one_wallet_never_overdraw_it_nor_lose_an_update(
    database: Database,
) -> None:
    uow = database.uow()
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 1000)

    def payer(n: int) -> Callable[..., list[ledger.Receipt | MyKeyError]]:
        def job(uow: object) -> list[ledger.Receipt | MyKeyError]:
            done: list[ledger.Receipt | MyKeyError] = []
            for i in range(25):
                try:
                    done.append(
                        ledger.transfer(
                            uow,
                            debit=w.id,
                            credit=t.shop.id,
                            amount=7,
                            kind="spend",  # type: ignore[arg-type]
                            actor=f"terminal:{n}",
                            key=f"pay-{i}",
                        )
                    )
                except MyKeyError as error:
                    done.append(error)
            return done

        return job

    results = run_together(database, [payer(n) for n in range(WORKERS)])
    outcomes = [r for batch in results for r in batch]  # type: ignore[union-attr]
    paid = [r for r in outcomes if isinstance(r, ledger.Receipt)]
    refused = [r for r in outcomes if isinstance(r, MyKeyError)]

    assert len(paid) == 1000 // 7  # 142 payments fit; every one of them counted
    assert all(e.code == "insufficient_points" for e in refused)
    assert len(paid) + len(refused) == WORKERS * 25
    assert ledger.balance(uow, w.id).available == 1000 - 7 * len(paid)
    assert ledger.balance(uow, t.shop.id).posted == 7 * len(paid)
    report = ledger.check(uow)
    assert report.ok, report.problems


def test_a_hot_budget_account_takes_concurrent_grants_without_losing_any(
    database: Database,
) -> None:
    uow = database.uow()
    t = town(uow)
    wallets = [wallet(uow, t, f"RES{n:05d}") for n in range(WORKERS)]

    def granter(n: int) -> Callable[..., int]:
        def job(uow: object) -> int:
            for i in range(20):
                grant(uow, t, wallets[n], 10 + i)  # type: ignore[arg-type]
            return n

        return job

    run_together(database, [granter(n) for n in range(WORKERS)])

    each = sum(10 + i for i in range(20))
    assert ledger.balance(uow, t.budget.id).posted == -each * WORKERS
    for w in wallets:
        assert ledger.balance(uow, w.id).available == each
    report = ledger.check(uow)
    assert report.ok, report.problems


def test_concurrent_retries_of_one_key_pay_once(database: Database) -> None:
    uow = database.uow()
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 1000)

    def retry(uow: object) -> ledger.Receipt:
        return ledger.transfer(
            uow,
            debit=w.id,
            credit=t.shop.id,
            amount=300,
            kind="spend",  # type: ignore[arg-type]
            actor="terminal:T1",
            key="lost-answer",
        )

    receipts = run_together(database, [retry] * WORKERS)

    assert all(isinstance(r, ledger.Receipt) for r in receipts)
    assert len({r.transfer_id for r in receipts}) == 1  # type: ignore[union-attr]
    assert sum(not r.replayed for r in receipts) == 1  # type: ignore[union-attr]
    assert ledger.balance(uow, w.id).available == 700
    assert database.count("ledger_transfers") == 2


def test_a_hold_is_posted_or_voided_never_both(database: Database) -> None:
    uow = database.uow()
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 1000)
    holds = [
        ledger.pending(
            uow,
            debit=w.id,
            credit=t.shop.id,
            amount=100,
            kind="online",
            actor="shop:web",
            timeout=timedelta(hours=1),
        )
        for _ in range(4)
    ]

    def post(uow: object, pid: object) -> ledger.Receipt:
        return ledger.post(uow, pending_id=pid, actor="shop:web")  # type: ignore[arg-type]

    def void(uow: object, pid: object) -> ledger.Receipt:
        return ledger.void(uow, pending_id=pid, actor="shop:web")  # type: ignore[arg-type]

    jobs: list[Callable[..., ledger.Receipt]] = []
    for h in holds:
        jobs.append(lambda u, pid=h.transfer_id: post(u, pid))
        jobs.append(lambda u, pid=h.transfer_id: void(u, pid))
    results = run_together(database, jobs)

    for i in range(len(holds)):
        pair = results[2 * i : 2 * i + 2]
        wins = [r for r in pair if isinstance(r, ledger.Receipt)]
        losses = [r for r in pair if isinstance(r, MyKeyError)]
        assert len(wins) == 1 and len(losses) == 1
        assert losses[0].code == "pending_already_resolved"
    posted = sum(1 for r in results if isinstance(r, ledger.Receipt) and r.phase == "post")
    assert ledger.balance(uow, w.id).available == 1000 - 100 * posted
    report = ledger.check(uow)
    assert report.ok, report.problems
