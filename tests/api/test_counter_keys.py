"""One idempotency at the counter too (issue #13, item 7): at every keyed terminal endpoint the
same key with another body is 409 `idempotency_key_reused` (one code, one wording) and changes
nothing, while the same key with the same body replays the first answer. Payments and voucher
issue are in test_counter.py; here cancellations, refunds, receipt vouchers, voucher
redemptions and gift certificates (HTTP, both engines)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from mykey import ledger
from mykey.identity.simulator import SimulatedCard
from tests.api.conftest import bearer, proof
from tests.api.test_counter import MAEBASHI, TENRI, _pay
from tests.api.test_gift_certificates import Q_TOWN, _exchange, _put, _staff
from tests.api.test_vouchers import (  # noqa: F401 -- shops is a fixture
    _issue,
    _redeem,
    shops,
)
from tests.conftest import Database

REUSED = {
    "code": "idempotency_key_reused",
    "detail_en": "This idempotency key was already used for a different request.",
    "detail_ja": "この冪等キーは別の内容の依頼で使用済みです。",
}


def reused(database: Database, send: Any) -> None:
    """`send()` is refused as a reused key and moves nothing."""
    before = database.count("ledger_transfers")
    answer = send()
    body = answer.json()
    assert answer.status_code == 409, body
    assert {k: body[k] for k in REUSED} == REUSED
    assert database.count("ledger_transfers") == before


def replayed(answer: Any, first: Any) -> None:
    assert answer.status_code == first.status_code, answer.json()
    assert answer.json()["replayed"] is True
    assert answer.json()["transaction_id"] == first.json()["transaction_id"]


def test_cancellation_and_refund_same_key_another_body(
    card_client: TestClient,
    shops: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    c, museum = card_client, shops["arts-maebashi"]
    one = _pay(c, museum, cards[0], MAEBASHI, 300, "p-1").json()["transaction_id"]
    two = _pay(c, museum, cards[0], MAEBASHI, 400, "p-2").json()["transaction_id"]

    def cancel(payment: str, key: str) -> Any:
        url = f"/api/v1/terminal/payments/{payment}/cancellation"
        return c.post(url, headers=bearer(museum), json={"key": key})

    first = cancel(one, "c-1")
    assert first.status_code == 201, first.json()
    reused(database, lambda: cancel(two, "c-1"))  # the same key for another payment
    replayed(cancel(one, "c-1"), first)

    def refund(points: int, key: str) -> Any:
        body = {"payment_id": two, "points": points, "key": key}
        return c.post("/api/v1/terminal/refunds", headers=bearer(museum), json=body)

    back = refund(100, "r-1")
    assert back.status_code == 201, back.json()
    reused(database, lambda: refund(150, "r-1"))
    reused(database, lambda: cancel(two, "r-1"))  # a refund's key is no cancellation's
    replayed(refund(100, "r-1"), back)
    report = ledger.check(database.uow())
    assert report.ok, report.problems


def test_receipt_voucher_and_redemption_same_key_another_body(
    card_client: TestClient,
    shops: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    c, shop = card_client, shops["tenri-shop1"]

    def receipt(ref: str, yen: int, key: str) -> Any:
        body = {"receipt_ref": ref, "yen": yen, "key": key}
        return c.post("/api/v1/terminal/receipt-vouchers", headers=bearer(shop), json=body)

    first = receipt("R-1", 3000, "q-1")
    assert first.status_code == 201, first.json()
    reused(database, lambda: receipt("R-1", 3001, "q-1"))
    reused(database, lambda: receipt("R-2", 3000, "q-1"))
    replayed(receipt("R-1", 3000, "q-1"), first)

    numbers = [
        _issue(c, shop, cards[0], municipality=TENRI, points=100, key=f"v-{n}").json()["vouchers"][
            0
        ]["number"]
        for n in (1, 2)
    ]
    redeemed = _redeem(c, shop, numbers[0], "rr-1")
    assert redeemed.status_code == 201, redeemed.json()
    reused(database, lambda: _redeem(c, shop, numbers[1], "rr-1"))
    replayed(_redeem(c, shop, numbers[0], "rr-1"), redeemed)
    report = ledger.check(database.uow())
    assert report.ok, report.problems


def test_gift_certificate_same_key_another_body(
    card_client: TestClient,
    shops: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    c, museum = card_client, shops["arts-maebashi"]
    assert _put(c, _staff(database, MAEBASHI), MAEBASHI, "maebashi-q", Q_TOWN).status_code == 200
    first = _exchange(c, museum, cards[0], "maebashi-q", 1, "g-1")
    assert first.status_code == 201, first.json()
    reused(database, lambda: _exchange(c, museum, cards[0], "maebashi-q", 2, "g-1"))
    replayed(_exchange(c, museum, cards[0], "maebashi-q", 1, "g-1"), first)
    # and a key of the gift certificates is no payment's
    reused(
        database,
        lambda: c.post(
            "/api/v1/terminal/payments",
            headers=bearer(museum),
            json={
                "card_proof": proof(c, cards[0]),
                "municipality": MAEBASHI,
                "points": 100,
                "key": "g-1",
            },
        ),
    )
    report = ledger.check(database.uow())
    assert report.ok, report.problems
