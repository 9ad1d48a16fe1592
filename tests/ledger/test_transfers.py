"""The ledger's verbs on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import uuid4

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mykey import ledger
from mykey.db import UnitOfWork, tokyo_date
from mykey.errors import ErrorKind, MyKeyError
from mykey.ledger import AccountKind, LotTerms
from tests.builders import FY_END, grant, spend, town, wallet
from tests.conftest import Database


def assert_ok(uow: UnitOfWork) -> None:
    report = ledger.check(uow)
    assert report.ok, report.problems


def test_a_grant_makes_a_lot_and_a_spend_takes_the_earliest_expiring_first(
    uow: UnitOfWork,
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    late = grant(uow, t, w, 1000, expires_on=FY_END)
    early = grant(uow, t, w, 300, expires_on=date(2026, 12, 31), funding="partner")
    assert late.credit_balance == 1000 and early.credit_balance == 1300

    paid = spend(uow, t, w, 500)

    assert paid.debit_balance == 800
    assert [(u.lot_id, u.amount) for u in paid.lots_used] == sorted(
        [(early.lot_id, 300), (late.lot_id, 200)]
    )
    lots = ledger.wallet_lots(uow, w.id)
    assert [(lot.funding, lot.remaining) for lot in lots] == [("budget", 800)]
    assert ledger.balance(uow, w.id).available == 800
    assert ledger.balance(uow, t.shop.id).posted == 500
    assert ledger.balance(uow, t.budget.id).posted == -1000
    assert_ok(uow)


def test_not_enough_points_is_refused_and_writes_no_transfer(
    uow: UnitOfWork, database: Database
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 100)
    before = database.count("ledger_transfers")

    with pytest.raises(MyKeyError) as caught:
        spend(uow, t, w, 101)

    assert caught.value.code == "insufficient_points"
    assert caught.value.kind is ErrorKind.REFUSED
    assert caught.value.details["available"] == 100
    assert database.count("ledger_transfers") == before
    assert ledger.balance(uow, w.id).available == 100
    assert_ok(uow)


def test_expired_points_not_yet_swept_cannot_be_spent(uow: UnitOfWork, database: Database) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 400, expires_on=date(2026, 10, 31))
    grant(uow, t, w, 100, expires_on=FY_END)
    database.clock.advance(days=30)  # 2026-11-14 in Tokyo: the first lot has lapsed

    with pytest.raises(MyKeyError) as caught:
        spend(uow, t, w, 200)

    assert caught.value.code == "insufficient_points"
    assert caught.value.details["available"] == 100
    assert ledger.balance(uow, w.id).available == 500  # unchanged until the sweep
    assert spend(uow, t, w, 100).debit_balance == 400
    assert_ok(uow)


def test_the_same_key_and_request_has_effect_once(uow: UnitOfWork, database: Database) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 1000)

    first = spend(uow, t, w, 300, key="pay-1")
    again = spend(uow, t, w, 300, key="pay-1")

    assert again.replayed and not first.replayed
    assert again.transfer_id == first.transfer_id
    assert again.debit_balance == first.debit_balance == 700
    assert again.lots_used == first.lots_used
    assert ledger.balance(uow, w.id).available == 700
    assert database.count("ledger_transfers") == 2


def test_the_same_key_with_another_request_is_a_conflict(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 1000)
    spend(uow, t, w, 300, key="pay-1")

    with pytest.raises(MyKeyError) as caught:
        spend(uow, t, w, 301, key="pay-1")

    assert caught.value.code == "idempotency_key_reused"
    assert caught.value.kind is ErrorKind.CONFLICT
    assert ledger.balance(uow, w.id).available == 700


def test_the_same_key_from_another_client_is_another_request(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 1000)
    a = spend(uow, t, w, 300, key="pay-1", actor="terminal:A")
    b = spend(uow, t, w, 300, key="pay-1", actor="terminal:B")
    assert a.transfer_id != b.transfer_id and not b.replayed
    assert ledger.balance(uow, w.id).available == 400


def test_a_refused_key_stays_refused_after_a_top_up(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 100)
    with pytest.raises(MyKeyError):
        spend(uow, t, w, 500, key="pay-9")
    grant(uow, t, w, 1000)

    with pytest.raises(MyKeyError) as caught:
        spend(uow, t, w, 500, key="pay-9")

    assert caught.value.code == "insufficient_points"
    assert caught.value.details["replayed"] is True
    assert ledger.balance(uow, w.id).available == 1100
    assert spend(uow, t, w, 500, key="pay-10").debit_balance == 600


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"amount": 0}, "invalid_points"),
        ({"amount": -5}, "invalid_points"),
        ({"amount": 10**12 + 1}, "invalid_points"),
        ({"amount": 1.5}, "invalid_points"),
        ({"amount": True}, "invalid_points"),
        ({"amount": "100"}, "invalid_points"),
        ({"key": ""}, "invalid_idempotency_key"),
        ({"key": "x" * 129}, "invalid_idempotency_key"),
        ({"key": "has space"}, "invalid_idempotency_key"),
        ({"key": "ポイント"}, "invalid_idempotency_key"),
        ({"key": "-leading"}, "invalid_idempotency_key"),
        ({"actor": ""}, "invalid_actor"),
        ({"kind": "Spend!"}, "invalid_kind"),
        ({"metadata": {"x": object()}}, "invalid_metadata"),
        ({"debit": 999_999}, "unknown_account"),
        ({"credit": 999_999}, "unknown_account"),
        ({"credit": "shop"}, "unknown_account"),
        ({"credit": "other_ledger"}, "mixed_ledgers"),
        ({"credit": "self"}, "same_account"),
    ],
)
def test_bad_input_is_a_typed_error_and_writes_nothing(
    uow: UnitOfWork, database: Database, changes: dict[str, object], code: str
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 1000)
    other = town(uow, "292044", "天理市ポイント")
    request: dict[str, object] = {
        "debit": w.id,
        "credit": t.shop.id,
        "amount": 100,
        "kind": "spend",
        "actor": "terminal:T1",
        "key": "ok-key",
    }
    request.update(changes)
    if request["credit"] == "other_ledger":
        request["credit"] = other.shop.id
    if request["credit"] == "self":
        request["credit"] = w.id
    before = (database.count("ledger_transfers"), database.count("ledger_rejections"))

    with pytest.raises(MyKeyError) as caught:
        ledger.transfer(uow, **request)  # type: ignore[arg-type]

    assert caught.value.code == code
    assert caught.value.kind in (ErrorKind.INVALID, ErrorKind.NOT_FOUND)
    assert (database.count("ledger_transfers"), database.count("ledger_rejections")) == before
    assert ledger.balance(uow, w.id).available == 1000


def test_a_credit_to_a_wallet_needs_lot_terms_that_are_not_past(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    with pytest.raises(MyKeyError) as caught:
        ledger.transfer(uow, debit=t.budget.id, credit=w.id, amount=5, kind="grant", actor="s:1")
    assert caught.value.code == "lot_terms_required"
    with pytest.raises(MyKeyError) as caught:
        ledger.transfer(
            uow,
            debit=t.budget.id,
            credit=w.id,
            amount=5,
            kind="grant",
            actor="s:1",
            lot=LotTerms("budget", date(2026, 1, 1)),
        )
    assert caught.value.code == "invalid_expires_on"
    assert ledger.balance(uow, w.id).available == 0


def test_a_pending_transfer_holds_points_until_posted_in_part(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 300, expires_on=date(2026, 12, 31))
    grant(uow, t, w, 700, expires_on=FY_END)

    hold = ledger.pending(
        uow,
        debit=w.id,
        credit=t.shop.id,
        amount=600,
        kind="online",
        actor="shop:web",
        key="order-1",
        timeout=timedelta(minutes=30),
    )
    assert hold.debit_balance == 400
    assert ledger.balance(uow, w.id).debits_pending == 600
    with pytest.raises(MyKeyError):
        spend(uow, t, w, 401)

    done = ledger.post(uow, pending_id=hold.transfer_id, amount=450, actor="shop:web", key="ship-1")

    assert done.phase == "post" and done.amount == 450
    assert done.debit_balance == 550
    # The 150 not posted goes back to the lot that expires last.
    assert sum(u.amount for u in done.lots_used) == -150
    assert ledger.balance(uow, t.shop.id).posted == 450
    assert ledger.balance(uow, t.shop.id).credits_pending == 0
    assert_ok(uow)
    with pytest.raises(MyKeyError) as caught:
        ledger.void(uow, pending_id=hold.transfer_id, actor="shop:web")
    assert caught.value.code == "pending_already_resolved"


def test_a_void_gives_back_the_same_lots(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    g = grant(uow, t, w, 500)
    hold = ledger.pending(
        uow,
        debit=w.id,
        credit=t.shop.id,
        amount=200,
        kind="online",
        actor="shop:web",
        timeout=timedelta(minutes=5),
    )
    back = ledger.void(uow, pending_id=hold.transfer_id, actor="shop:web", key="cancel-1")
    assert back.phase == "void"
    assert [(u.lot_id, u.amount) for u in back.lots_used] == [(g.lot_id, -200)]
    assert ledger.balance(uow, w.id).available == 500
    assert ledger.balance(uow, t.shop.id).posted == 0
    assert_ok(uow)


def test_a_timed_out_hold_cannot_be_posted_and_is_voided_by_the_sweep(
    uow: UnitOfWork, database: Database
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 500)
    hold = ledger.pending(
        uow,
        debit=w.id,
        credit=t.shop.id,
        amount=200,
        kind="online",
        actor="shop:web",
        timeout=timedelta(minutes=5),
    )
    database.clock.advance(minutes=6)

    with pytest.raises(MyKeyError) as caught:
        ledger.post(uow, pending_id=hold.transfer_id, actor="shop:web")
    assert caught.value.code == "pending_expired"

    assert ledger.void_expired(uow) == 1
    assert ledger.void_expired(uow) == 0
    assert ledger.balance(uow, w.id).available == 500
    assert_ok(uow)


def test_points_cannot_be_held_on_their_way_into_a_wallet(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    with pytest.raises(MyKeyError) as caught:
        ledger.pending(
            uow,
            debit=t.budget.id,
            credit=w.id,
            amount=5,
            kind="grant",
            actor="s:1",
            timeout=timedelta(minutes=1),
        )
    assert caught.value.code == "invalid_credit"
    with pytest.raises(MyKeyError) as caught:
        ledger.pending(
            uow,
            debit=w.id,
            credit=t.shop.id,
            amount=5,
            kind="online",
            actor="s:1",
            timeout=timedelta(days=31),
        )
    assert caught.value.code == "invalid_timeout"


def test_reversing_a_payment_puts_the_points_back_in_their_lots(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    early = grant(uow, t, w, 100, expires_on=date(2026, 12, 31))
    late = grant(uow, t, w, 900)
    paid = spend(uow, t, w, 300)

    back = ledger.reverse(
        uow,
        transfer_id=paid.transfer_id,
        actor="terminal:T1",
        reason="same-day cancel",
        key="cancel-1",
    )

    assert back.kind == "reverse" and back.reverses_id == paid.transfer_id
    assert back.debit_account_id == t.shop.id and back.credit_account_id == w.id
    assert back.credit_balance == 1000
    remaining = {lot.id: lot.remaining for lot in ledger.wallet_lots(uow, w.id)}
    assert remaining == {early.lot_id: 100, late.lot_id: 900}
    assert ledger.balance(uow, t.shop.id).posted == 0
    assert_ok(uow)

    with pytest.raises(MyKeyError) as caught:
        ledger.reverse(uow, transfer_id=paid.transfer_id, actor="terminal:T1", reason="again")
    assert caught.value.code == "already_reversed"
    with pytest.raises(MyKeyError) as caught:
        ledger.reverse(uow, transfer_id=back.transfer_id, actor="terminal:T1", reason="undo")
    assert caught.value.code == "not_reversible"


def test_reversing_a_grant_takes_back_its_own_lot_unless_spent(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    keep = grant(uow, t, w, 500)
    mistake = grant(uow, t, w, 200, expires_on=date(2026, 12, 31))

    ledger.reverse(uow, transfer_id=mistake.transfer_id, actor="staff:1", reason="wrong person")
    assert [lot.id for lot in ledger.wallet_lots(uow, w.id)] == [keep.lot_id]
    assert ledger.balance(uow, t.budget.id).posted == -500

    spent = grant(uow, t, w, 300, expires_on=date(2026, 11, 30))
    spend(uow, t, w, 100)  # takes from the lot of `spent`, which expires first
    with pytest.raises(MyKeyError) as caught:
        ledger.reverse(uow, transfer_id=spent.transfer_id, actor="staff:1", reason="wrong")
    assert caught.value.code == "insufficient_points"
    assert caught.value.details["available"] == 200  # what is left of that grant's lot
    assert ledger.balance(uow, w.id).available == 700
    assert_ok(uow)


def test_a_posted_hold_can_be_reversed(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 500)
    hold = ledger.pending(
        uow,
        debit=w.id,
        credit=t.shop.id,
        amount=400,
        kind="online",
        actor="shop:web",
        timeout=timedelta(hours=1),
    )
    posted = ledger.post(uow, pending_id=hold.transfer_id, amount=250, actor="shop:web")
    with pytest.raises(MyKeyError) as caught:
        ledger.reverse(uow, transfer_id=hold.transfer_id, actor="shop:web", reason="refund")
    assert caught.value.code == "not_reversible"
    refund = ledger.reverse(uow, transfer_id=posted.transfer_id, actor="shop:web", reason="refund")
    assert refund.amount == 250 and refund.credit_balance == 500
    assert_ok(uow)


def test_expiry_moves_what_is_left_of_lapsed_lots_and_can_run_again(
    uow: UnitOfWork, database: Database
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 300, expires_on=date(2026, 10, 31))
    grant(uow, t, w, 500, expires_on=FY_END)
    spend(uow, t, w, 100)
    seen: list[int] = []
    database.clock.advance(days=17)  # 2026-11-01 in Tokyo: the first lot's last day has passed

    report = ledger.expire_lots(uow, as_of=date(2026, 11, 1), progress=seen.append)

    assert (report.lots, report.points) == (1, 200)
    assert sum(seen) == 1
    assert ledger.balance(uow, w.id).available == 500
    expired = ledger.find_account(uow, ledger=t.code, kind=AccountKind.EXPIRED, owner="expired")
    assert ledger.balance(uow, expired.id).posted == 200
    again = ledger.expire_lots(uow, as_of=date(2026, 11, 1))
    assert (again.lots, again.points) == (0, 0)
    assert_ok(uow)


def test_history_is_newest_first_and_pages(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 1000)
    for amount in (10, 20, 30, 40):
        spend(uow, t, w, amount)

    page = ledger.history(uow, w.id, limit=3)
    assert [e.change for e in page.entries] == [-40, -30, -20]
    assert page.next_before is not None
    rest = ledger.history(uow, w.id, limit=3, before=page.next_before)
    assert [e.change for e in rest.entries] == [-10, 1000]
    assert rest.next_before is None
    assert rest.entries[-1].kind == "grant"


def test_accounts_open_once_and_unknown_ledgers_are_refused(uow: UnitOfWork) -> None:
    t = town(uow)
    assert wallet(uow, t).id == wallet(uow, t).id
    with pytest.raises(MyKeyError) as caught:
        ledger.open_account(uow, ledger="999999", kind="wallet", owner="MY1")
    assert caught.value.code == "unknown_ledger"
    with pytest.raises(MyKeyError) as caught:
        ledger.open_account(uow, ledger=t.code, kind="piggybank", owner="MY1")
    assert caught.value.code == "invalid_kind"


def test_transfers_cannot_be_edited_or_deleted(uow: UnitOfWork, database: Database) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 100)
    for statement in ("UPDATE ledger_transfers SET amount = 1", "DELETE FROM ledger_transfers"):
        with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as conn:
            conn.execute(text(statement))
    assert database.count("ledger_transfers") == 1


@pytest.mark.tampers_ledger
def test_the_check_names_an_account_whose_balance_was_tampered_with(
    uow: UnitOfWork, database: Database
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 100)
    assert_ok(uow)
    with database.engine.begin() as conn:
        conn.execute(
            text("UPDATE ledger_accounts SET credits_posted = 150 WHERE id = :id"), {"id": w.id}
        )
        conn.execute(text("UPDATE ledger_lots SET remaining = 90"))

    report = ledger.check(uow)

    found = {(p.code, p.subject) for p in report.problems}
    assert ("balance_mismatch", f"account {w.id}") in found
    assert ("lots_mismatch", f"account {w.id}") in found
    assert ("ledger_not_zero", f"ledger {t.code}") in found
    assert any(code == "lot_mismatch" for code, _ in found)


def test_a_use_case_composes_ledger_verbs_all_or_nothing(
    uow: UnitOfWork, database: Database
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 100)
    before = database.count("ledger_transfers")

    def pay_two_shops() -> None:
        with uow:
            spend(uow, t, w, 60)
            spend(uow, t, w, 60)  # refused: the first 60 must not stay either
            uow.commit()

    with pytest.raises(MyKeyError):
        pay_two_shops()
    assert database.count("ledger_transfers") == before
    assert ledger.balance(uow, w.id).available == 100


def test_unknown_transfer_ids_are_not_found(uow: UnitOfWork) -> None:
    town(uow)
    for verb in (ledger.post, ledger.void):
        with pytest.raises(MyKeyError) as caught:
            verb(uow, pending_id=uuid4(), actor="shop:web")  # type: ignore[operator]
        assert caught.value.code == "unknown_transfer"
    with pytest.raises(MyKeyError) as caught:
        ledger.reverse(uow, transfer_id="not-a-uuid", actor="shop:web", reason="x")
    assert caught.value.code == "unknown_transfer"


def test_expiry_never_runs_as_of_a_day_to_come(uow: UnitOfWork, database: Database) -> None:
    # Run as of tomorrow, the expiry would take today the points whose last day is today.
    t = town(uow)
    w = wallet(uow, t)
    today = tokyo_date(database.clock.now)
    grant(uow, t, w, 300, expires_on=today)
    transfers = database.count("ledger_transfers")

    with pytest.raises(MyKeyError) as early:
        ledger.expire_lots(uow, as_of=today + timedelta(days=1))
    assert early.value.code == "as_of_in_future"
    assert early.value.details == {
        "as_of": (today + timedelta(days=1)).isoformat(),
        "today": today.isoformat(),
    }
    assert database.count("ledger_transfers") == transfers
    assert ledger.balance(uow, w.id).available == 300
    assert ledger.expire_lots(uow, as_of=today).lots == 0  # still spendable today
    database.clock.advance(days=1)
    assert ledger.expire_lots(uow, as_of=today + timedelta(days=1)).points == 300
    assert_ok(uow)


def test_a_refund_into_a_lapsed_lot_lapses_again_at_the_next_sweep(
    uow: UnitOfWork, database: Database
) -> None:
    # Found by the stateful property test: the second expiry of one lot reused the first's key.
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 231, expires_on=date(2026, 10, 31))
    paid = spend(uow, t, w, 1)
    database.clock.advance(days=17)
    assert ledger.expire_lots(uow, as_of=date(2026, 11, 1)).points == 230

    ledger.reverse(uow, transfer_id=paid.transfer_id, actor="terminal:T1", reason="refund")
    assert ledger.balance(uow, w.id).available == 1
    database.clock.advance(days=1)
    again = ledger.expire_lots(uow, as_of=date(2026, 11, 2))

    assert (again.lots, again.points) == (1, 1)
    assert ledger.balance(uow, w.id).available == 0
    assert_ok(uow)
