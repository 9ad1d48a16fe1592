"""Random sequences of ledger operations keep every invariant (hypothesis, stateful).

Grants, spends, holds, posts, voids, reversals, expiry sweeps and replayed requests, in any
order, on SQLite and PostgreSQL: after every step `ledger.check` passes and each wallet's
available points equal what a simple model of the requests says.
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from mykey import ledger
from mykey.db import tokyo_date
from mykey.errors import MyKeyError
from mykey.ledger import LotTerms
from tests.builders import town, wallet
from tests.conftest import Database

EXPIRIES = (date(2026, 10, 31), date(2026, 12, 31), date(2027, 3, 31))


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, database: Database) -> None:
        super().__init__()
        database.reset()
        self.db = database
        self.uow = database.uow()
        self.town = town(self.uow)
        self.wallets = [wallet(self.uow, self.town, f"RES{n}") for n in range(2)]
        self.expected = {w.id: 0 for w in self.wallets}
        self.sent: list[tuple[str, dict[str, object], ledger.Receipt | str]] = []
        self.holds: list[ledger.Receipt] = []
        self.done: list[ledger.Receipt] = []  # reversible candidates
        self.n = 0

    def _key(self) -> str:
        self.n += 1
        return f"op-{self.n}"

    def _spendable(self, account_id: int) -> int:
        today = tokyo_date(self.db.clock())
        return sum(
            lot.remaining
            for lot in ledger.wallet_lots(self.uow, account_id)
            if lot.expires_on >= today
        )

    @rule(who=st.integers(0, 1), amount=st.integers(1, 500), expiry=st.sampled_from(EXPIRIES))
    def grant(self, who: int, amount: int, expiry: date) -> None:
        if expiry < tokyo_date(self.db.clock()):
            return
        w = self.wallets[who]
        request = {
            "debit": self.town.budget.id,
            "credit": w.id,
            "amount": amount,
            "kind": "grant",
            "actor": "staff:1",
            "key": self._key(),
            "lot": LotTerms("budget", expiry),
        }
        receipt = ledger.transfer(self.uow, **request)  # type: ignore[arg-type]
        self.expected[w.id] += amount
        self.sent.append(("transfer", request, receipt))
        self.done.append(receipt)

    @rule(who=st.integers(0, 1), amount=st.integers(1, 700))
    def spend(self, who: int, amount: int) -> None:
        w = self.wallets[who]
        spendable = self._spendable(w.id)
        request = {
            "debit": w.id,
            "credit": self.town.shop.id,
            "amount": amount,
            "kind": "spend",
            "actor": "terminal:1",
            "key": self._key(),
        }
        try:
            receipt = ledger.transfer(self.uow, **request)  # type: ignore[arg-type]
        except MyKeyError as error:
            assert error.code == "insufficient_points"
            assert amount > spendable
            self.sent.append(("transfer", request, error.code))
            return
        assert amount <= spendable
        self.expected[w.id] -= amount
        self.sent.append(("transfer", request, receipt))
        self.done.append(receipt)

    @rule(who=st.integers(0, 1), amount=st.integers(1, 300))
    def hold(self, who: int, amount: int) -> None:
        w = self.wallets[who]
        try:
            receipt = ledger.pending(
                self.uow,
                debit=w.id,
                credit=self.town.other_shop.id,
                amount=amount,
                kind="online",
                actor="shop:web",
                key=self._key(),
                timeout=timedelta(days=2),
            )
        except MyKeyError as error:
            assert error.code == "insufficient_points"
            return
        self.expected[w.id] -= amount
        self.holds.append(receipt)

    @rule(pick=st.integers(0, 50), share=st.integers(0, 100), voiding=st.booleans())
    def resolve(self, pick: int, share: int, voiding: bool) -> None:
        if not self.holds:
            return
        hold = self.holds.pop(pick % len(self.holds))
        posted = max(1, hold.amount * share // 100)
        try:
            if voiding:
                ledger.void(self.uow, pending_id=hold.transfer_id, actor="shop:web")
                self.expected[hold.debit_account_id] += hold.amount
            else:
                receipt = ledger.post(
                    self.uow, pending_id=hold.transfer_id, amount=posted, actor="shop:web"
                )
                self.expected[hold.debit_account_id] += hold.amount - posted
                self.done.append(receipt)
        except MyKeyError as error:
            assert error.code in ("pending_expired", "pending_already_resolved")
            if error.code == "pending_expired":
                ledger.void(self.uow, pending_id=hold.transfer_id, actor="shop:web")
                self.expected[hold.debit_account_id] += hold.amount

    @rule(pick=st.integers(0, 50))
    def reverse(self, pick: int) -> None:
        if not self.done:
            return
        original = self.done[pick % len(self.done)]
        try:
            back = ledger.reverse(
                self.uow, transfer_id=original.transfer_id, actor="staff:1", reason="test"
            )
        except MyKeyError as error:
            assert error.code in ("already_reversed", "insufficient_points")
            return
        if original.credit_account_id in self.expected:
            self.expected[original.credit_account_id] -= back.amount
        if original.debit_account_id in self.expected:
            self.expected[original.debit_account_id] += back.amount

    @rule(days=st.integers(1, 90))
    def time_passes_and_lots_expire(self, days: int) -> None:
        self.db.clock.advance(days=days)
        today = tokyo_date(self.db.clock())
        ledger.void_expired(self.uow)
        # Voided holds come back first, into their lots, and may lapse with them.
        for hold in [h for h in self.holds if h.expires_at and h.expires_at <= self.db.clock()]:
            self.holds.remove(hold)
            self.expected[hold.debit_account_id] += hold.amount
        lapsing = {
            w.id: sum(
                lot.remaining
                for lot in ledger.wallet_lots(self.uow, w.id)
                if lot.expires_on < today
            )
            for w in self.wallets
        }
        report = ledger.expire_lots(self.uow, as_of=today)
        assert report.points == sum(lapsing.values())
        for account_id, points in lapsing.items():
            self.expected[account_id] -= points

    @rule(pick=st.integers(0, 100))
    def replay(self, pick: int) -> None:
        if not self.sent:
            return
        _, request, first = self.sent[pick % len(self.sent)]
        try:
            again = ledger.transfer(self.uow, **request)  # type: ignore[arg-type]
        except MyKeyError as error:
            assert first == error.code
            assert error.details.get("replayed") is True
            return
        assert isinstance(first, ledger.Receipt)
        assert again.replayed and again.transfer_id == first.transfer_id
        assert again.amount == first.amount

    @invariant()
    def invariants_hold(self) -> None:
        report = ledger.check(self.uow)
        assert report.ok, report.problems
        for account_id, points in self.expected.items():
            assert ledger.balance(self.uow, account_id).available == points


def test_random_operation_sequences_keep_every_invariant(database: Database) -> None:
    run_state_machine_as_test(
        lambda: LedgerMachine(database),
        settings=settings(
            max_examples=15,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
