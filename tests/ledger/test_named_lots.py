"""A debit from one named lot (what a correction moves), and a reversal that carries metadata."""

from __future__ import annotations

from datetime import date

import pytest

from mykey import ledger
from mykey.errors import MyKeyError
from mykey.ledger import LotTerms
from tests.builders import grant, key, spend, town, wallet
from tests.conftest import Database


def test_a_debit_takes_exactly_the_named_lot(database: Database) -> None:
    uow = database.uow()
    t = town(uow)
    mine, theirs = wallet(uow, t), wallet(uow, t, "MY654321")
    early = grant(uow, t, mine, 100, expires_on=date(2026, 12, 31))
    late = grant(uow, t, mine, 200)
    assert early.lot_id is not None and late.lot_id is not None
    moved = ledger.transfer(
        uow,
        debit=mine.id,
        credit=theirs.id,
        amount=150,
        kind="correct",
        actor="staff:b",
        key=key(),
        lot=LotTerms("budget", date(2027, 3, 31)),
        from_lot=late.lot_id,
        metadata={"correction_case": "c"},
    )
    assert [(u.lot_id, u.amount) for u in moved.lots_used] == [(late.lot_id, 150)]
    left = {v.id: v.remaining for v in ledger.wallet_lots(uow, mine.id)}
    assert left == {early.lot_id: 100, late.lot_id: 50}  # FIFO would have taken the early lot
    for bad_lot, amount, code in (
        (late.lot_id, 51, "insufficient_points"),
        (early.lot_id + 1000, 1, "invalid_from_lot"),
    ):
        with pytest.raises(MyKeyError) as refused:
            ledger.transfer(
                uow,
                debit=mine.id,
                credit=theirs.id,
                amount=amount,
                kind="correct",
                actor="staff:b",
                key=key(),
                lot=LotTerms("budget", date(2027, 3, 31)),
                from_lot=bad_lot,
            )
        assert refused.value.code == code
    with pytest.raises(MyKeyError):  # a lot of another wallet
        ledger.transfer(
            uow,
            debit=theirs.id,
            credit=mine.id,
            amount=1,
            kind="correct",
            actor="staff:b",
            lot=LotTerms("budget", date(2027, 3, 31)),
            from_lot=late.lot_id,
        )
    assert ledger.balance(uow, mine.id).available == 150
    report = ledger.check(uow)
    assert report.ok, report.problems


def test_a_reversal_keeps_the_callers_metadata(database: Database) -> None:
    uow = database.uow()
    t = town(uow)
    w = wallet(uow, t)
    paid = spend(uow, t, w, 30) if grant(uow, t, w, 100) else None
    assert paid is not None
    back = ledger.reverse(
        uow, transfer_id=paid.transfer_id, actor="staff:b", reason="誤操作", metadata={"case": "x"}
    )
    assert back.metadata == {"case": "x", "reason": "誤操作", "reverses_kind": "spend"}
    assert ledger.get_transfer(uow, back.transfer_id).metadata == back.metadata
    assert ledger.reversal_of(uow, paid.transfer_id) == back.transfer_id
    assert ledger.reversal_of(uow, back.transfer_id) is None
