"""Correction cases under concurrency and the clock (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from mykey import ledger
from mykey.db import UnitOfWork
from mykey.demo import MUNICIPALITIES
from mykey.errors import MyKeyError
from mykey.identity import residents
from mykey.identity.proofs import VerifiedCard
from mykey.identity.residents import create_mykey_id
from mykey.ledger import AccountKind
from mykey.municipalities.registry import upsert
from mykey.points.corrections import approve_correction, propose_correction
from mykey.points.grants import grant_points
from mykey.points.program_setup import set_up_program
from tests.conftest import Database

TSU = "242012"
WRONG, RIGHT = "TSU00001", "TSU00002"
PROPOSER = "municipality_staff:p"


@pytest.fixture
def granted(database: Database, monkeypatch: pytest.MonkeyPatch) -> str:
    """Tsu's program, two residents, and 300 points granted to the wrong one."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(residents, "_hasher", PasswordHasher(time_cost=1, memory_cost=64))
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=TSU,
        point_name="津市ポイント",
        terms="",
        validity={},
        usable_at=["shop"],
        annual_budget=10_000,
    )
    for n, who in enumerate((WRONG, RIGHT)):
        card = VerifiedCard(
            hashlib.sha256(f"card-{n}".encode()).hexdigest(), datetime(2030, 1, 1, tzinfo=UTC)
        )
        create_mykey_id(uow, card=card, password="long enough", mykey_id=who)
    receipt = grant_points(
        uow,
        municipality=TSU,
        mykey_id=WRONG,
        actor="staff:tsu",
        key="g-1",
        reason="65歳以上",
        points=300,
    )
    return str(receipt.transfer_id)


def _wallet(uow: UnitOfWork, who: str) -> int:
    account = ledger.open_account(uow, ledger=TSU, kind=AccountKind.WALLET, owner=who)
    return ledger.balance(uow, account.id).available


def test_two_approvals_at_once_move_the_points_once(database: Database, granted: str) -> None:
    uow = database.uow()
    case = propose_correction(
        uow,
        municipality=TSU,
        actor=PROPOSER,
        key="c-1",
        kind="move",
        transfer_id=granted,
        reason_code="wrong_person",
        note="同姓同名の取り違え",
        right_mykey_id=RIGHT,
    )
    approvers = ["municipality_staff:a", "municipality_staff:b"] * 3
    start = threading.Barrier(len(approvers))

    def approve(actor: str) -> str:
        desk = database.uow()
        start.wait()
        try:
            done = approve_correction(desk, municipality=TSU, case_id=str(case.id), actor=actor)
        except MyKeyError as error:
            return f"{actor} {error.code}"
        return f"{actor} {'replayed' if done.replayed else 'executed'}"

    with ThreadPoolExecutor(len(approvers)) as pool:
        outcomes = list(pool.map(approve, approvers))

    executed = [o for o in outcomes if o.endswith("executed")]
    assert len(executed) == 1, outcomes
    winner = executed[0].split()[0]
    loser = next(a for a in set(approvers) if a != winner)
    assert sorted(outcomes) == sorted(
        [f"{winner} executed"] + [f"{winner} replayed"] * 2 + [f"{loser} case_closed"] * 3
    )
    assert (_wallet(uow, WRONG), _wallet(uow, RIGHT)) == (0, 300)
    right = ledger.find_account(uow, ledger=TSU, kind=AccountKind.WALLET, owner=RIGHT)
    kinds = [e.kind for e in ledger.history(uow, right.id).entries]
    assert kinds == ["correct"]
    report = ledger.check(uow)
    assert report.ok, report.problems


def test_payments_racing_the_approval_are_either_moved_or_claimed(
    database: Database, granted: str
) -> None:
    uow = database.uow()
    case = propose_correction(
        uow,
        municipality=TSU,
        actor=PROPOSER,
        key="c-1",
        kind="move",
        transfer_id=granted,
        reason_code="wrong_person",
        note="x",
        right_mykey_id=RIGHT,
    )
    wallet = ledger.find_account(uow, ledger=TSU, kind=AccountKind.WALLET, owner=WRONG)
    shop = ledger.open_account(uow, ledger=TSU, kind=AccountKind.SHOP, owner="shop-1")
    start = threading.Barrier(5)

    def pay(n: int) -> int:
        counter = database.uow()
        start.wait()
        try:
            ledger.transfer(
                counter,
                debit=wallet.id,
                credit=shop.id,
                amount=40,
                kind="spend",
                actor="terminal:T1",
                key=f"pay-{n}",
            )
        except MyKeyError as error:
            assert error.code == "insufficient_points"
            return 0
        return 40

    def approve() -> int:
        desk = database.uow()
        start.wait()
        return approve_correction(
            desk, municipality=TSU, case_id=str(case.id), actor="staff:a"
        ).claimed

    with ThreadPoolExecutor(5) as pool:
        paid = [pool.submit(pay, n) for n in range(4)]
        claimed = pool.submit(approve).result()
        spent = sum(p.result() for p in paid)

    assert claimed == spent  # every point paid before the move is claimed, none after it
    assert (_wallet(uow, WRONG), _wallet(uow, RIGHT)) == (0, 300)
    report = ledger.check(uow)
    assert report.ok, report.problems


def test_lapsed_points_are_not_moved(database: Database, granted: str) -> None:
    uow = database.uow()
    case = propose_correction(
        uow,
        municipality=TSU,
        actor=PROPOSER,
        key="c-1",
        kind="move",
        transfer_id=granted,
        reason_code="wrong_person",
        note="年度をまたいで判明",
        right_mykey_id=RIGHT,
    )
    database.clock.advance(days=200)  # past March 31: the grant's points have lapsed
    with pytest.raises(MyKeyError) as refused:
        approve_correction(uow, municipality=TSU, case_id=str(case.id), actor="staff:a")
    assert refused.value.code == "points_lapsed"
    assert (_wallet(uow, WRONG), _wallet(uow, RIGHT)) == (300, 0)  # the approval changed nothing
    with pytest.raises(MyKeyError) as again:
        propose_correction(
            uow,
            municipality=TSU,
            actor="staff:b",
            key="c-2",
            kind="reverse",
            transfer_id=granted,
            reason_code="ineligible",
            note="x",
        )
    assert again.value.code == "points_lapsed"
    report = ledger.check(uow)
    assert report.ok, report.problems


def test_the_council_lists_cases_on_the_command_line(
    database: Database, granted: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console
    from typer.testing import CliRunner

    from mykey import cli
    from mykey.cli import app
    from mykey.config import get_settings

    monkeypatch.setattr(cli, "out", Console(width=250))
    uow = database.uow()
    case = propose_correction(
        uow,
        municipality=TSU,
        actor=PROPOSER,
        key="c-1",
        kind="reverse",
        transfer_id=granted,
        reason_code="duplicate",
        note="二重付与",
    )
    approve_correction(uow, municipality=TSU, case_id=str(case.id), actor="staff:a")
    monkeypatch.setenv("MYKEY_DATABASE_URL", database.url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed = runner.invoke(
            app, ["corrections", "list", "--municipality", TSU, "--status", "approved"]
        )
        assert listed.exit_code == 0, listed.output
        assert str(case.id)[:8] in listed.output
        assert "二重の付与" in listed.output
        assert "1 case(s)" in listed.output
        none = runner.invoke(app, ["corrections", "list", "--status", "proposed"])
        assert "0 case(s)" in none.output
        bad = runner.invoke(app, ["corrections", "list", "--status", "open"])
        assert bad.exit_code == 1
    finally:
        get_settings.cache_clear()
