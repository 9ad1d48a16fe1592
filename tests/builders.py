"""Builders: make state through the real use cases, never by writing rows (two documented
exceptions below: MyKey IDs by the ten thousand, and bare log leaves)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import count
from typing import cast
from uuid import uuid4

from sqlalchemy import Engine, Table, text

from mykey import ledger
from mykey.db import UnitOfWork, insert_many
from mykey.demo import MUNICIPALITIES
from mykey.identity.keys import create_key
from mykey.identity.proofs import VerifiedCard
from mykey.identity.residents import create_mykey_id
from mykey.identity.simulator import SimulatedCard
from mykey.ledger import Account, AccountKind, LotTerms
from mykey.ledger.batch import BatchReport, Credit, credit_many
from mykey.municipalities.registry import upsert
from mykey.points.grants import grant_points
from mykey.points.program_setup import Rule, set_up_program
from mykey.points.shops import set_shop

FY_END = date(2027, 3, 31)
_keys = count(1)


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}"


@dataclass
class Town:
    code: str
    budget: Account
    partner: Account
    shop: Account
    other_shop: Account


def town(uow: UnitOfWork, code: str = "131164", name: str = "豊島区ポイント") -> Town:
    ledger.open_ledger(uow, code=code, name=name)
    return Town(
        code,
        ledger.open_account(uow, ledger=code, kind=AccountKind.BUDGET, owner=code),
        ledger.open_account(uow, ledger=code, kind=AccountKind.PARTNER, owner="jal"),
        ledger.open_account(uow, ledger=code, kind=AccountKind.SHOP, owner="shop-1"),
        ledger.open_account(uow, ledger=code, kind=AccountKind.SHOP, owner="shop-2"),
    )


def wallet(uow: UnitOfWork, t: Town, resident: str = "MY123456") -> Account:
    return ledger.open_account(uow, ledger=t.code, kind=AccountKind.WALLET, owner=resident)


def grant(
    uow: UnitOfWork,
    t: Town,
    w: Account,
    amount: int,
    *,
    expires_on: date = FY_END,
    funding: str = "budget",
) -> ledger.Receipt:
    source = t.partner if funding == "partner" else t.budget
    return ledger.transfer(
        uow,
        debit=source.id,
        credit=w.id,
        amount=amount,
        kind="grant",
        actor="staff:test",
        key=key("grant"),
        lot=LotTerms(funding, expires_on),
    )


def spend(uow: UnitOfWork, t: Town, w: Account, amount: int, **kw: object) -> ledger.Receipt:
    return ledger.transfer(
        uow,
        debit=w.id,
        credit=t.shop.id,
        amount=amount,
        kind="spend",
        actor=str(kw.get("actor", "terminal:T1")),
        key=str(kw.get("key", key("spend"))),
    )


def residents_in_bulk(uow: UnitOfWork, ids: Sequence[str]) -> None:
    """MyKey IDs for a bulk grant of tens of thousands, written as rows: the one place a builder
    writes rows itself, because `create_mykey_id` hashes a password with argon2 per ID (hours
    for 80,000). They share one real hash of PASSWORD_FOR_BULK."""
    from mykey.identity.models import Resident
    from mykey.identity.residents import _hasher

    shared = _hasher.hash(PASSWORD_FOR_BULK)
    with uow:
        now = uow.now()
        insert_many(
            uow.connection,
            cast(Table, Resident.__table__),
            [dict(mykey_id=m, password_hash=shared, created_at=now) for m in ids],
        )
        uow.commit()


PASSWORD_FOR_BULK = "bulk residents 2026"


def bulk_grant(
    uow: UnitOfWork, budget: int, credits: Sequence[tuple[str, int]], *, expires: date = FY_END
) -> BatchReport:
    """One bulk grant from `budget` (`credit_many`, as `mykey grants bulk` does), committed:
    each (owner, points) into the owner's wallet, opened if new."""
    with uow:
        report = credit_many(
            uow,
            batch_id=uuid4(),
            debit=budget,
            credit_kind=AccountKind.WALLET,
            credits=[Credit(owner, points, {}) for owner, points in credits],
            kind="grant",
            actor="staff:bulk",
            lot=LotTerms("budget", expires),
        )
        uow.commit()
    return report


def leaves_in_log(engine: Engine, n: int) -> None:
    """n leaves (`leaf 0` …) straight into the log's table, queued: for tests of the tree, its
    proofs and tiles, which serve leaves whatever records they commit to (the audit would name
    every one of them removed)."""
    at = datetime(2027, 4, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO history_leaves (kind, record_id, leaf, queued_at)"
                " VALUES ('transfer', :rid, :leaf, :at)"
            ),
            [{"rid": f"t{i:07d}", "leaf": f"leaf {i}".encode(), "at": at} for i in range(n)],
        )


MAEBASHI = "102016"


def museum_with_resident(uow: UnitOfWork, card: SimulatedCard) -> str:
    """Maebashi's program, a museum (arts-maebashi) with a terminal, and a resident (MY111111,
    password "correct horse battery") holding 1,000 points on `card`; the terminal's key."""
    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=MAEBASHI,
        point_name="前橋市ポイント",
        terms="",
        validity={"budget": None},
        usable_at=["museum"],
    )
    set_shop(
        uow,
        shop_id="arts-maebashi",
        name="アーツ前橋",
        municipality=MAEBASHI,
        kind="museum",
        accepts=[MAEBASHI],
    )
    create_mykey_id(
        uow,
        card=VerifiedCard(card.card_key, card.certificate.not_valid_after_utc),
        password="correct horse battery",
        mykey_id="MY111111",
    )
    grant_points(
        uow,
        municipality=MAEBASHI,
        mykey_id="MY111111",
        actor="staff:test",
        key="grant-1",
        reason="テスト付与",
        points=1000,
    )
    return create_key(uow, role="terminal", label="受付", provider_id="arts-maebashi")[0]


def jobs_finished(engine: Engine, timeout: float = 60.0) -> None:
    """Wait until the job queue holds no job queued or running: the app's own runner (the
    serving process's, on the test's database) takes a job as soon as a request enqueues it."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            waiting = conn.execute(
                text("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')")
            ).scalar_one()
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{waiting} jobs still waiting after {timeout} s")
        time.sleep(0.02)


TSU = "242012"


def tsu_seniors(uow: UnitOfWork, ids: Sequence[str]) -> None:
    """Tsu's program with its once-a-year 敬老ポイント (activity `senior`, 1,000 points), and
    residents of these MyKey IDs: a town hall's bulk grant to its seniors."""
    upsert(uow, MUNICIPALITIES)
    senior = Rule("senior", "敬老ポイント", 1000, "year")
    set_up_program(uow, municipality=TSU, point_name="津市ポイント", terms="", validity={},
                   usable_at=["shop"], rules=[senior])  # fmt: skip
    residents_in_bulk(uow, ids)
