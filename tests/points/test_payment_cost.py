"""What one counter payment costs the database (issue #14): round trips and commits, counted.

Run as a script to see every statement of one payment with the line of `mykey` that sends it:

    MYKEY_REQUIRE_POSTGRES=1 .venv/bin/pytest -q tests/points/test_payment_cost.py -s -k listing
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from mykey.demo import MUNICIPALITIES
from mykey.errors import MyKeyError
from mykey.history import audit
from mykey.history import log as hlog
from mykey.identity import usage
from mykey.identity.proofs import (
    CardProof,
    PresentedCard,
    TrustAnchors,
    VerifiedCard,
    issue_challenge,
)
from mykey.identity.residents import create_mykey_id
from mykey.identity.simulator import SimulatedCard, SimulatorCA
from mykey.municipalities.registry import upsert
from mykey.points import spending
from mykey.points.grants import grant_points
from mykey.points.program_setup import set_up_program
from mykey.points.shops import set_shop
from tests.conftest import LOG, Clock, Database
from tests.roundtrips import Count, counting

TENRI = "292044"
TERMINAL = "terminal:cost-1"

# The bound the code reaches, from the use-case call (authentication, now cached, and issuing
# the challenge, now stateless, are not counted). Issue #14's target is 1 commit and at most 2
# round trips on PostgreSQL. Measured before: PostgreSQL 26 round trips, SQLite 35 statements.
# Now, on PostgreSQL, two round trips (`db.send_together`): BEGIN with one look-up of
# everything, the card's standing included (`spending._Facts`); then one statement for the
# challenge's use, the transfer, its leaf, the shop_payments row, the usage entry and its leaf
# and the balance (`ledger.Alongside`), with the COMMIT. On SQLite the ledger's Python plan runs
# statement by statement (each a call into the library, no network); the key is looked up once.
MAX_COMMITS = 1
MAX_ROUND_TRIPS = {"postgresql": 2, "sqlite": 18}


@pytest.fixture(scope="module")
def ca() -> SimulatorCA:
    return SimulatorCA.create(now=Clock().now - timedelta(days=30))


@pytest.fixture(scope="module")
def card(ca: SimulatorCA) -> SimulatedCard:
    return ca.issue(now=Clock().now - timedelta(days=1))


def _counter(database: Database, card: SimulatedCard) -> None:
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=TENRI,
        point_name="天理市ポイント",
        terms="",
        validity={},
        usable_at=["shop"],
        rules=[],
    )
    set_shop(
        uow, shop_id="cost-shop", name="計測商店", municipality=TENRI, kind="shop", accepts=[TENRI]
    )
    create_mykey_id(
        uow,
        card=VerifiedCard(card.card_key, card.certificate.not_valid_after_utc),
        password="correct horse battery",
        mykey_id="MY777777",
    )
    for n in range(3):  # a few lots, so that the payment takes from more than one
        grant_points(
            uow,
            municipality=TENRI,
            mykey_id="MY777777",
            actor="staff:cost",
            key=f"fill-{n}",
            reason="計測",
            points=100,
        )


def _paying(
    database: Database, ca: SimulatorCA, card: SimulatedCard
) -> Callable[[str, int], spending.Payment]:
    anchors = TrustAnchors((ca.certificate,))

    def pay(key: str, points: int) -> spending.Payment:
        challenge = issue_challenge(database.uow(), key=anchors.challenge_key, asker=None)
        signed = card.proof(challenge.id, challenge.nonce)
        presented = PresentedCard(
            CardProof(signed["certificate"], signed["challenge_id"], signed["signature"]),
            anchors,
            TERMINAL,
        )
        uow = database.uow()
        with counting(database.engine) as count:
            done = spending.pay(
                uow,
                shop_id="cost-shop",
                card=presented,
                municipality=TENRI,
                points=points,
                actor=TERMINAL,
                key=key,
            )
        pay.last = count  # type: ignore[attr-defined]
        return done

    return pay


def _count(pay: Callable[[str, int], spending.Payment]) -> Count:
    return pay.last  # type: ignore[attr-defined,no-any-return]


def test_listing(database: Database, ca: SimulatorCA, card: SimulatedCard) -> None:
    """Every statement of one payment, with the line that sends it (shown with -s)."""
    _counter(database, card)
    pay = _paying(database, ca, card)
    pay("warm-up", 1)
    done = pay("listed", 150)
    assert done.balance == 300 - 1 - 150
    print()
    print(_count(pay).listing())


def test_one_payment_costs_one_commit_and_few_round_trips(
    database: Database, ca: SimulatorCA, card: SimulatedCard
) -> None:
    """One counter payment, from the use-case call (the challenge is issued before, and the
    terminal's key is not looked up here: both are other parts of issue #14), commits once
    and makes at most MAX_ROUND_TRIPS round trips (statements, BEGIN and COMMIT included).

    A replay under the same key commits nothing new and reads no more than the payment."""
    _counter(database, card)
    pay = _paying(database, ca, card)
    pay("warm-up", 1)
    done = pay("counted", 150)
    count = _count(pay)
    assert done.balance == 149 and not done.replayed
    assert count.commits <= MAX_COMMITS, count.listing()
    assert count.round_trips <= MAX_ROUND_TRIPS[count.dialect], count.listing()
    again = pay("counted", 150)
    assert again.replayed and again.balance == 149
    assert _count(pay).round_trips <= count.round_trips, _count(pay).listing()


def test_the_few_statements_keep_the_history_and_the_usage(
    database: Database, ca: SimulatorCA, card: SimulatedCard
) -> None:
    """Payments made in the few statements leave what the long way left: each transfer and
    usage entry has its leaf (the audit recomputes them from the rows), the shop's payment row,
    the resident's usage entry, the balance after; a refusal is kept under its key."""
    _counter(database, card)
    pay = _paying(database, ca, card)
    first = pay("a", 120)
    second = pay("b", 100)
    assert (first.balance, second.balance) == (180, 80)
    with pytest.raises(MyKeyError) as refused:
        pay("c", 81)
    assert refused.value.code == "insufficient_points"
    assert refused.value.details["balance"] == 80
    with pytest.raises(MyKeyError) as again:
        pay("c", 81)  # the same key: the stored refusal, even though nothing changed
    assert again.value.code == "insufficient_points" and again.value.details.get("replayed")
    assert pay("a", 120).replayed
    assert [p.points for p in spending.payments_today(database.uow(), shop_id="cost-shop")] == [
        100,
        120,
    ]
    entries = usage.history(database.uow(), mykey_id="MY777777")
    assert [e.action for e in entries][:2] == ["pay", "pay"]
    assert "120 pt" in entries[1].purpose and entries[1].provider_id == "cost-shop"
    uow = database.uow()
    hlog.integrate(uow)
    report = audit.verify(uow, LOG)
    assert report.ok, report
