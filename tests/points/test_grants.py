"""Grants under an annual budget, from many staff desks at once (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from mykey import ledger
from mykey.demo import MUNICIPALITIES
from mykey.errors import MyKeyError
from mykey.identity.proofs import VerifiedCard
from mykey.identity.residents import create_mykey_id
from mykey.ledger import AccountKind
from mykey.municipalities.registry import upsert
from mykey.points.grants import grant_points
from mykey.points.program_setup import set_up_program
from tests.conftest import Database

TSU = "242012"


def test_concurrent_grants_never_exceed_the_annual_budget(database: Database) -> None:
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=TSU,
        point_name="津市ポイント",
        terms="",
        validity={},
        usable_at=["shop"],
        annual_budget=1000,
    )
    residents = []
    for n in range(8):
        card_key = hashlib.sha256(f"card-{n}".encode()).hexdigest()
        card = VerifiedCard(card_key, datetime(2030, 1, 1, tzinfo=UTC))
        residents.append(
            create_mykey_id(uow, card=card, password="long enough", mykey_id=f"TSU0000{n}")
        )
    start = threading.Barrier(len(residents))

    def desk(who: str) -> int:
        staff = database.uow()
        start.wait()
        granted = 0
        for i in range(5):
            try:
                grant_points(
                    staff,
                    municipality=TSU,
                    mykey_id=who,
                    actor="staff:tsu",
                    key=f"{who}-{i}",
                    reason="65歳以上の全員に",
                    points=30,
                )
                granted += 30
            except MyKeyError as error:
                assert error.code == "budget_exceeded"
        return granted

    with ThreadPoolExecutor(len(residents)) as pool:
        total = sum(pool.map(desk, residents))

    assert total == 990  # 33 grants of 30 fit in 1,000; the 34th would not
    budget = ledger.find_account(uow, ledger=TSU, kind=AccountKind.BUDGET, owner=TSU)
    assert ledger.balance(uow, budget.id).posted == -990
    report = ledger.check(uow)
    assert report.ok, report.problems
