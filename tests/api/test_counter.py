"""A day at the counter (R6.1): a Maebashi museum and a Tenri shop take points from residents'
cards; payments, retries, cancellations, refunds, refusals, races and expiry (HTTP)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mykey.demo import MUNICIPALITIES
from mykey.errors import MyKeyError
from mykey.identity.keys import create_key
from mykey.identity.proofs import VerifiedCard
from mykey.identity.simulator import SimulatedCard
from mykey.municipalities.registry import upsert
from mykey.points import spending
from mykey.points.expiry import expire_points
from tests.api.conftest import PASSWORD, bearer, proof
from tests.conftest import Database

MAEBASHI, TENRI = "102016", "292044"


def _program(name: str, usable_at: list[str], validity: dict[str, int | None]) -> dict[str, Any]:
    return {"point_name": name, "validity": validity, "usable_at": usable_at, "rules": []}


@pytest.fixture
def keys(database: Database) -> dict[str, str]:
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    return {
        "maebashi": create_key(
            uow, role="municipality_staff", label="前橋市", municipality=MAEBASHI
        )[0],
        "tenri": create_key(uow, role="municipality_staff", label="天理市", municipality=TENRI)[0],
        "operator": create_key(uow, role="operator", label="council")[0],
    }


def _resident(client: TestClient, card: SimulatedCard, mykey_id: str) -> str:
    made = client.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(client, card), "password": PASSWORD, "mykey_id": mykey_id},
    )
    assert made.status_code == 201, made.json()
    return mykey_id


def _grant(client: TestClient, key: str, code: str, who: str, points: int, tag: str) -> None:
    done = client.post(
        f"/api/v1/municipalities/{code}/grants",
        headers=bearer(key),
        json={"mykey_id": who, "points": points, "reason": "テスト付与", "key": tag},
    )
    assert done.status_code == 201, done.json()


@pytest.fixture
def town(
    card_client: TestClient,
    keys: dict[str, str],
    cards: list[SimulatedCard],
    database: Database,
) -> dict[str, str]:
    """Two programs, a museum in Maebashi and a shop in Tenri (on a shopping street), each with
    a terminal; two residents with points of both."""
    c = card_client
    for code, key, program in (
        (MAEBASHI, "maebashi", _program("前橋市ポイント", ["museum", "shop"], {"budget": None})),
        (TENRI, "tenri", _program("天理市ポイント", ["shop"], {"budget": 1})),
    ):
        put = c.put(
            f"/api/v1/municipalities/{code}/program", headers=bearer(keys[key]), json=program
        )
        assert put.status_code == 200, put.json()
    street = c.put(
        "/api/v1/streets/tenri-honten",
        headers=bearer(keys["tenri"]),
        json={"name": "天理本通り商店街", "municipality": TENRI},
    )
    assert street.status_code == 200, street.json()
    museum = c.put(
        "/api/v1/shops/arts-maebashi",
        headers=bearer(keys["maebashi"]),
        json={
            "name": "アーツ前橋",
            "municipality": MAEBASHI,
            "kind": "museum",
            "accepts": [MAEBASHI],
        },
    )
    assert museum.status_code == 200, museum.json()
    shop = c.put(
        "/api/v1/shops/tenri-shop1",
        headers=bearer(keys["operator"]),
        json={
            "name": "天理本通りの本屋",
            "municipality": TENRI,
            "kind": "shop",
            "accepts": [TENRI, MAEBASHI],
            "street_id": "tenri-honten",
        },
    )
    assert shop.status_code == 200, shop.json()
    assert shop.json()["accepts"] == [MAEBASHI, TENRI]
    uow = database.uow()
    _resident(c, cards[0], "MY111111")
    _resident(c, cards[1], "MY222222")
    _grant(c, keys["maebashi"], MAEBASHI, "MY111111", 3000, "m-1")
    _grant(c, keys["tenri"], TENRI, "MY111111", 1000, "t-1")
    _grant(c, keys["maebashi"], MAEBASHI, "MY222222", 500, "m-2")
    return {
        "museum": create_key(uow, role="terminal", label="受付", provider_id="arts-maebashi")[0],
        "museum2": create_key(uow, role="terminal", label="売店", provider_id="arts-maebashi")[0],
        "shop": create_key(uow, role="terminal", label="レジ", provider_id="tenri-shop1")[0],
    }


def _pay(
    c: TestClient, terminal: str, card: SimulatedCard, code: str, points: int, key: str
) -> Any:
    return c.post(
        "/api/v1/terminal/payments",
        headers=bearer(terminal),
        json={
            "card_proof": proof(c, card),
            "municipality": code,
            "points": points,
            "key": key,
            "receipt_ref": f"R-{key}",
        },
    )


def _balances(c: TestClient, terminal: str, card: SimulatedCard) -> dict[str, int]:
    got = c.post(
        "/api/v1/terminal/balances", headers=bearer(terminal), json={"card_proof": proof(c, card)}
    )
    assert got.status_code == 200, got.json()
    return {b["municipality"]: b["balance"] for b in got.json()["balances"]}


def test_shops_are_listed_for_point_navi(
    card_client: TestClient, town: dict[str, str], keys: dict[str, str]
) -> None:
    c = card_client
    listed = c.get(f"/api/v1/shops?municipality={MAEBASHI}").json()
    assert [s["id"] for s in listed] == ["arts-maebashi", "tenri-shop1"]
    assert [s["id"] for s in c.get(f"/api/v1/shops?municipality={TENRI}").json()] == ["tenri-shop1"]
    # Tenri points are not usable at museums; Maebashi staff cannot register a Tenri shop
    refused = c.put(
        "/api/v1/shops/tenri-museum",
        headers=bearer(keys["tenri"]),
        json={"name": "天理参考館", "municipality": TENRI, "kind": "museum", "accepts": [TENRI]},
    )
    assert refused.status_code == 409 and refused.json()["code"] == "kind_not_usable"
    other = c.put(
        "/api/v1/shops/x1",
        headers=bearer(keys["maebashi"]),
        json={"name": "x", "municipality": TENRI, "kind": "shop", "accepts": [TENRI]},
    )
    assert other.status_code == 403 and other.json()["code"] == "forbidden"
    assert c.get("/api/v1/shops/tenri-museum").status_code == 404


def test_a_day_at_the_museum_and_the_shop(
    card_client: TestClient,
    town: dict[str, str],
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    c = card_client
    alice = cards[0]
    assert _balances(c, town["museum"], alice) == {MAEBASHI: 3000}
    assert _balances(c, town["shop"], alice) == {MAEBASHI: 3000, TENRI: 1000}
    first = c.post(
        "/api/v1/terminal/balances",
        headers=bearer(town["shop"]),
        json={"card_proof": proof(c, alice)},
    ).json()["balances"]
    assert first[1]["earliest_expiry"] == "2026-11-14"  # one month from 2026-10-15

    # a museum ticket; the answer is lost and the terminal sends the same request again
    paid = _pay(c, town["museum"], alice, MAEBASHI, 600, "ticket-1")
    assert paid.status_code == 201, paid.json()
    assert (paid.json()["points"], paid.json()["balance"]) == (600, 2400)
    again = _pay(c, town["museum"], alice, MAEBASHI, 600, "ticket-1")
    assert again.json()["replayed"] is True
    assert again.json()["transaction_id"] == paid.json()["transaction_id"]
    assert _balances(c, town["museum"], alice) == {MAEBASHI: 2400}

    # Tenri points are not accepted at the Maebashi museum
    nope = _pay(c, town["museum"], alice, TENRI, 100, "ticket-2")
    assert nope.status_code == 409
    assert nope.json()["code"] == "not_accepted_here"
    # too many points, and a resident with none of a municipality's points
    much = _pay(c, town["shop"], alice, TENRI, 1001, "book-0")
    assert much.status_code == 409 and much.json()["code"] == "insufficient_points"
    assert much.json()["details"]["balance"] == 1000
    none = _pay(c, town["shop"], cards[1], TENRI, 10, "book-x")
    assert none.status_code == 409 and none.json()["code"] == "no_points"
    # a card without a MyKey ID
    stranger = _pay(c, town["shop"], cards[2], TENRI, 10, "book-y")
    assert stranger.status_code == 404 and stranger.json()["code"] == "card_not_registered"

    # at the Tenri shop: a book, then a wrong book cancelled the same day
    book = _pay(c, town["shop"], alice, TENRI, 700, "book-1")
    assert book.json()["balance"] == 300
    wrong = _pay(c, town["shop"], alice, MAEBASHI, 200, "book-2")
    assert wrong.json()["balance"] == 2200
    pid = wrong.json()["transaction_id"]
    # the museum may not cancel the shop's payment
    other = c.post(
        f"/api/v1/terminal/payments/{pid}/cancellation",
        headers=bearer(town["museum"]),
        json={"key": "c-0"},
    )
    assert other.status_code == 409 and other.json()["code"] == "wrong_shop"
    undone = c.post(
        f"/api/v1/terminal/payments/{pid}/cancellation",
        headers=bearer(town["shop"]),
        json={"key": "c-1"},
    )
    assert undone.status_code == 201, undone.json()
    assert undone.json()["balance"] == 2400
    retry = c.post(
        f"/api/v1/terminal/payments/{pid}/cancellation",
        headers=bearer(town["shop"]),
        json={"key": "c-1"},
    )
    assert retry.json()["replayed"] is True
    twice = c.post(
        f"/api/v1/terminal/payments/{pid}/cancellation",
        headers=bearer(town["shop"]),
        json={"key": "c-2"},
    )
    assert twice.status_code == 409 and twice.json()["code"] == "already_cancelled"
    assert (
        c.post(
            "/api/v1/terminal/refunds",
            headers=bearer(town["shop"]),
            json={"payment_id": pid, "points": 10, "key": "r-0"},
        ).json()["code"]
        == "payment_cancelled"
    )

    # the next day the book is returned: no cancellation any more, a refund instead
    database.clock.advance(days=1)
    book_id = book.json()["transaction_id"]
    late = c.post(
        f"/api/v1/terminal/payments/{book_id}/cancellation",
        headers=bearer(town["shop"]),
        json={"key": "c-3"},
    )
    assert late.status_code == 409 and late.json()["code"] == "cancel_not_same_day"
    back = c.post(
        "/api/v1/terminal/refunds",
        headers=bearer(town["shop"]),
        json={"payment_id": book_id, "points": 500, "key": "r-1"},
    )
    assert back.status_code == 201, back.json()
    assert (back.json()["balance"], back.json()["refunded_total"]) == (800, 500)
    assert back.json()["expires_on"] == "2026-11-14"  # the lot it was paid from
    assert (
        c.post(
            "/api/v1/terminal/refunds",
            headers=bearer(town["shop"]),
            json={"payment_id": book_id, "points": 500, "key": "r-1"},
        ).json()["replayed"]
        is True
    )
    over = c.post(
        "/api/v1/terminal/refunds",
        headers=bearer(town["shop"]),
        json={"payment_id": book_id, "points": 201, "key": "r-2"},
    )
    assert over.status_code == 409 and over.json()["code"] == "refund_exceeds_payment"
    assert over.json()["details"]["refundable"] == 200
    assert _balances(c, town["shop"], alice) == {MAEBASHI: 2400, TENRI: 800}

    # the card is reported lost: refused at every counter
    suspend = c.post(
        f"/api/v1/operator/cards/{alice.card_key}/suspend",
        headers=bearer(create_key(database.uow(), role="operator", label="desk")[0]),
    )
    assert suspend.status_code == 204
    lost = _pay(c, town["museum"], alice, MAEBASHI, 100, "ticket-9")
    assert lost.status_code == 409, lost.json()
    assert lost.json()["code"] == "card_revoked"


def test_two_terminals_never_overdraw_one_wallet(
    town: dict[str, str], cards: list[SimulatedCard], database: Database
) -> None:
    bob = cards[1]  # 500 Maebashi points
    card = VerifiedCard(bob.card_key, bob.certificate.not_valid_after_utc)

    def pay(i: int) -> int:
        try:
            spending.pay(
                database.uow(),
                shop_id="arts-maebashi" if i % 2 else "tenri-shop1",
                card=card,
                municipality=MAEBASHI,
                points=100,
                actor=f"terminal:t{i % 2}",
                key=f"race-{i}",
            )
            return 1
        except MyKeyError as error:
            assert error.code in ("insufficient_points", "no_points")
            return 0

    with ThreadPoolExecutor(max_workers=4) as pool:
        paid = sum(pool.map(pay, range(8)))
    assert paid == 5
    assert (
        spending.balances_here(database.uow(), shop_id="arts-maebashi", card=card)[0].balance == 0
    )


def test_expiry_runs_twice_and_residents_see_what_expires_soon(
    card_client: TestClient, town: dict[str, str], cards: list[SimulatedCard], database: Database
) -> None:
    c = card_client
    token = c.post("/api/v1/sessions", json={"mykey_id": "MY111111", "password": PASSWORD}).json()[
        "token"
    ]
    mine = c.get("/api/v1/me/points", headers=bearer(token)).json()
    soon = {h["municipality"]: h["expiring_soon"] for h in mine["holdings"]}
    assert soon == {MAEBASHI: [], TENRI: [{"expires_on": "2026-11-14", "points": 1000}]}

    # past their last day, points cannot be spent even before the expiry run sweeps them
    database.clock.advance(days=31)
    late = _pay(c, town["shop"], cards[0], TENRI, 100, "late-1")
    assert late.status_code == 409 and late.json()["code"] == "no_points", late.json()
    assert _balances(c, town["shop"], cards[0]) == {MAEBASHI: 3000, TENRI: 0}

    first = expire_points(database.uow(), as_of=date(2026, 11, 15))
    assert (first.lots, first.points) == (1, 1000)
    second = expire_points(database.uow(), as_of=date(2026, 11, 15))
    assert (second.lots, second.points) == (0, 0)
    assert _balances(c, town["shop"], cards[0]) == {MAEBASHI: 3000, TENRI: 0}


def test_serve_expires_lapsed_points_in_the_background(
    town: dict[str, str], database: Database, ca: Any, tmp_path: Any
) -> None:
    """With `daily_expiry` on (as `mykey serve` sets it), the app's lifespan starts the daily
    expiry, which runs at once: Tenri's lot that lapsed on 2026-11-14 goes to `expired`."""
    from mykey.config import Settings
    from mykey.ledger import AccountKind, balance, find_account
    from mykey.web.app import create_app

    database.clock.advance(days=32)  # 2026-11-16 in Tokyo
    ca.save(tmp_path / "ca2")
    settings = Settings(
        database_url=database.url,
        environment="test",
        card_trust_anchors=str(tmp_path / "ca2" / "ca.pem"),
        daily_expiry=True,
    )
    app = create_app(settings, clock=database.clock)
    uow = database.uow()
    wallet = find_account(uow, ledger=TENRI, kind=AccountKind.WALLET, owner="MY111111")
    with TestClient(app):
        for _ in range(100):
            if balance(uow, wallet.id).available == 0:
                break
            time.sleep(0.05)
    app.state.engine.dispose()
    assert balance(uow, wallet.id).available == 0
    sink = find_account(uow, ledger=TENRI, kind=AccountKind.EXPIRED, owner="expired")
    assert balance(uow, sink.id).posted == 1000
