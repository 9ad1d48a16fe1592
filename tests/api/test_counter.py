"""A day at the counter (R6.1): a Maebashi museum and a Tenri shop take points from residents'
cards; payments, retries, cancellations, refunds, refusals, races and expiry (HTTP)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mykey.demo import MUNICIPALITIES
from mykey.errors import MyKeyError
from mykey.identity.keys import create_key
from mykey.identity.proofs import VerifiedCard
from mykey.identity.simulator import SimulatedCard
from mykey.ledger import check
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
        spending.balances_here(
            database.uow(), shop_id="arts-maebashi", card=card, actor="terminal:t1"
        )
        .balances[0]
        .balance
        == 0
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
    town: dict[str, str], database: Database, ca: Any, tmp_path: Any, card_client: TestClient
) -> None:
    """With `daily_expiry` on (as `mykey serve` sets it), the app's lifespan starts the daily
    expiry, which runs at once: Tenri's lot that lapsed on 2026-11-14 goes to `expired`."""
    from mykey.config import Settings
    from mykey.ledger import AccountKind, balance, find_account
    from mykey.web.app import create_app

    database.clock.advance(days=32)  # 2026-11-16 in Tokyo
    # One process per database leads the background work: the fixture's app steps down.
    card_client.app.state.background.stop()  # type: ignore[attr-defined]
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
        for _ in range(600):  # the leader takes the lock, ticks, runs the daily job
            if balance(uow, wallet.id).available == 0:
                break
            time.sleep(0.05)
    app.state.engine.dispose()
    assert balance(uow, wallet.id).available == 0
    sink = find_account(uow, ledger=TENRI, kind=AccountKind.EXPIRED, owner="expired")
    assert balance(uow, sink.id).posted == 1000


# --- issue #13: the card shown is the card charged; lost answers; refusals keep the card -----


def _leaves(database: Database, kind: str) -> int:
    with database.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT COUNT(*) FROM history_leaves WHERE kind = :k"), {"k": kind}
            ).scalar_one()
        )


def _balances_of(c: TestClient, terminal: str, card: SimulatedCard) -> dict[str, Any]:
    got = c.post(
        "/api/v1/terminal/balances", headers=bearer(terminal), json={"card_proof": proof(c, card)}
    )
    assert got.status_code == 200, got.json()
    return dict(got.json())


def test_a_payment_bound_to_the_balances_shown_refuses_another_card(
    card_client: TestClient, town: dict[str, str], cards: list[SimulatedCard], database: Database
) -> None:
    """Card A's balances are shown; card B is tapped at the confirmation: refused, nothing
    charged (the Mynapoint failure). A's card then pays."""
    c = card_client
    alice, bob = cards[0], cards[1]
    shown = _balances_of(c, town["shop"], alice)
    assert shown["holder"] == "MY11****"
    token = shown["holder_binding"]["token"]
    assert "MY111111" not in token  # the binding names the holder without revealing the ID
    before = database.count("ledger_transfers")

    for path, extra in (
        ("/api/v1/terminal/payments", {"municipality": MAEBASHI, "points": 100}),
        ("/api/v1/terminal/vouchers", {"municipality": MAEBASHI, "points": 100}),
    ):
        wrong = c.post(
            path,
            headers=bearer(town["shop"]),
            json={"card_proof": proof(c, bob), "key": "bound-1", "expected_holder": token} | extra,
        )
        assert wrong.status_code == 409, wrong.json()
        assert wrong.json()["code"] == "wrong_card"
        assert wrong.json()["details"]["expected_holder"] == "MY11****"
        assert "カードではありません" in wrong.json()["detail_ja"]
    stranger = c.post(  # a card with no MyKey ID is not the holder either
        "/api/v1/terminal/payments",
        headers=bearer(town["shop"]),
        json={
            "card_proof": proof(c, cards[2]),
            "municipality": MAEBASHI,
            "points": 100,
            "key": "bound-1",
            "expected_holder": token,
        },
    )
    assert stranger.status_code == 409 and stranger.json()["code"] == "wrong_card"
    assert database.count("ledger_transfers") == before
    assert _balances(c, town["shop"], bob) == {MAEBASHI: 500, TENRI: 0}

    # the same confirmation (same key) with the right card pays
    right = c.post(
        "/api/v1/terminal/payments",
        headers=bearer(town["shop"]),
        json={
            "card_proof": proof(c, alice),
            "municipality": MAEBASHI,
            "points": 100,
            "key": "bound-1",
            "expected_holder": token,
        },
    )
    assert right.status_code == 201, right.json()
    assert right.json()["balance"] == 2900

    # a binding is for its shop only, may not be altered, and expires
    museum = c.post(
        "/api/v1/terminal/payments",
        headers=bearer(town["museum"]),
        json={
            "card_proof": proof(c, alice),
            "municipality": MAEBASHI,
            "points": 100,
            "key": "bound-2",
            "expected_holder": token,
        },
    )
    assert museum.status_code == 422 and museum.json()["code"] == "invalid_holder_binding"
    database.clock.advance(minutes=11)
    late = c.post(
        "/api/v1/terminal/payments",
        headers=bearer(town["shop"]),
        json={
            "card_proof": proof(c, alice),
            "municipality": MAEBASHI,
            "points": 100,
            "key": "bound-3",
            "expected_holder": token,
        },
    )
    assert late.status_code == 409 and late.json()["code"] == "holder_binding_expired"
    assert database.count("ledger_transfers") == before + 1


def test_a_byte_identical_resend_replays_the_first_answer_without_a_new_tap(
    card_client: TestClient, town: dict[str, str], cards: list[SimulatedCard], database: Database
) -> None:
    """The answer is lost; the terminal sends the very same bytes again (the same card proof,
    whose challenge is used): the first answer, `replayed`, nothing paid twice."""
    c = card_client
    alice = cards[0]
    calls = [
        (
            "/api/v1/terminal/payments",
            {"municipality": MAEBASHI, "points": 600, "key": "lost-pay", "receipt_ref": "R-1"},
        ),
        (
            "/api/v1/terminal/vouchers",
            {"municipality": TENRI, "points": 300, "denomination": 100, "key": "lost-voucher"},
        ),
    ]
    for path, fields in calls:
        body = {"card_proof": proof(c, alice)} | fields
        first = c.post(path, headers=bearer(town["shop"]), json=body)
        assert first.status_code == 201, first.json()
        transfers, uses = database.count("ledger_transfers"), database.count("card_challenge_uses")
        again = c.post(path, headers=bearer(town["shop"]), json=body)
        assert again.status_code == 201, again.json()
        assert again.json()["replayed"] is True
        assert again.json()["transaction_id"] == first.json()["transaction_id"]
        assert again.json()["balance"] == first.json()["balance"]
        assert (database.count("ledger_transfers"), database.count("card_challenge_uses")) == (
            transfers,
            uses,
        )
        # the same key with another request is still refused
        other = c.post(
            path,
            headers=bearer(town["shop"]),
            json=body | {"card_proof": proof(c, alice), "points": fields["points"] + 100},
        )
        assert other.status_code == 409, other.json()
        assert other.json()["code"] == "idempotency_key_reused"
    assert _balances(c, town["shop"], alice) == {MAEBASHI: 2400, TENRI: 700}

    # a cancellation and a refund, their answers lost, sent again the next day
    paid = _pay(c, town["shop"], alice, TENRI, 200, "to-cancel").json()
    cancel = {"key": "lost-cancel"}
    url = f"/api/v1/terminal/payments/{paid['transaction_id']}/cancellation"
    assert c.post(url, headers=bearer(town["shop"]), json=cancel).status_code == 201
    book = _pay(c, town["shop"], alice, TENRI, 300, "to-refund").json()
    refund = {"payment_id": book["transaction_id"], "points": 100, "key": "lost-refund"}
    back = c.post("/api/v1/terminal/refunds", headers=bearer(town["shop"]), json=refund)
    assert back.status_code == 201, back.json()
    database.clock.advance(days=31)  # past the refund lot's last day, too
    late_cancel = c.post(url, headers=bearer(town["shop"]), json=cancel)
    assert late_cancel.status_code == 201, late_cancel.json()
    assert late_cancel.json()["replayed"] is True
    late_refund = c.post("/api/v1/terminal/refunds", headers=bearer(town["shop"]), json=refund)
    assert late_refund.status_code == 201, late_refund.json()
    assert late_refund.json()["replayed"] is True
    assert late_refund.json()["transaction_id"] == back.json()["transaction_id"]
    assert late_refund.json()["expires_on"] == back.json()["expires_on"] == "2026-11-14"


def test_a_refused_request_keeps_the_card_and_its_refusal(
    card_client: TestClient,
    town: dict[str, str],
    cards: list[SimulatedCard],
    keys: dict[str, str],
    database: Database,
) -> None:
    """A request refused before it does anything leaves the card's challenge unused (the
    resident need not tap again); its refusal is kept under its key; a failed proof still
    uses the challenge up."""
    c = card_client
    alice = cards[0]  # 1,000 Tenri points
    tapped = proof(c, alice)
    uses = database.count("card_challenge_uses")

    def pay(points: Any, key: str, card_proof: dict[str, str] = tapped) -> Any:
        return c.post(
            "/api/v1/terminal/payments",
            headers=bearer(town["shop"]),
            json={"card_proof": card_proof, "municipality": TENRI, "points": points, "key": key},
        )

    assert pay(0, "k-zero").status_code == 422
    much = pay(1500, "k-much")
    assert much.status_code == 409 and much.json()["code"] == "insufficient_points"
    assert database.count("card_challenge_uses") == uses  # the tap is still good
    done = pay(400, "k-right")
    assert done.status_code == 201, done.json()
    assert database.count("card_challenge_uses") == uses + 1
    assert pay(100, "k-again").json()["code"] == "challenge_used"  # now it is used

    # the refused key stays refused, even once there would be points enough
    _grant(c, keys["tenri"], TENRI, "MY111111", 1000, "t-more")
    kept = pay(1500, "k-much", proof(c, alice))
    assert kept.status_code == 409 and kept.json()["code"] == "insufficient_points"
    assert kept.json()["details"]["replayed"] is True
    assert pay(1500, "k-new", proof(c, alice)).status_code == 201

    # a failed proof uses the challenge up and is recorded, as before
    forged = proof(c, alice) | {"signature": proof(c, cards[1])["signature"]}
    assert pay(10, "k-forged", forged).json()["code"] == "bad_signature"
    honest = proof(c, alice) | {"challenge_id": forged["challenge_id"]}
    assert pay(10, "k-forged", honest).json()["code"] == "challenge_used"
    attempts = database.count("card_proof_attempts")
    assert attempts == 3  # k-again's used challenge, the forged signature, its reuse


def test_other_card_proofs_are_kept_by_a_refusal_too(
    card_client: TestClient,
    town: dict[str, str],
    cards: list[SimulatedCard],
    keys: dict[str, str],
    database: Database,
) -> None:
    """MyKey ID creation, card login, grants by card at an event desk, balances and lookups:
    a refusal leaves the tap usable."""
    c = card_client
    newcomer = cards[2]
    tapped = proof(c, newcomer)
    taken = c.post(
        "/api/v1/mykey-ids",
        json={"card_proof": tapped, "password": PASSWORD, "mykey_id": "MY111111"},
    )
    assert taken.status_code == 409 and taken.json()["code"] == "mykey_id_taken"
    nobody = c.post("/api/v1/sessions", json={"card_proof": tapped})
    assert nobody.status_code == 404 and nobody.json()["code"] == "card_not_registered"
    balances = c.post(
        "/api/v1/terminal/balances", headers=bearer(town["shop"]), json={"card_proof": tapped}
    )
    assert balances.status_code == 404
    made = c.post(
        "/api/v1/mykey-ids",
        json={"card_proof": tapped, "password": PASSWORD, "mykey_id": "MY333333"},
    )
    assert made.status_code == 201, made.json()

    desk = proof(c, newcomer)
    grant = {"card_proof": desk, "reason": "イベント参加", "key": "desk-1"}
    wrong = c.post(
        f"/api/v1/municipalities/{MAEBASHI}/grants",
        headers=bearer(keys["maebashi"]),
        json=grant | {"activity": "no-such-activity"},
    )
    assert wrong.status_code == 404, wrong.json()
    granted = c.post(
        f"/api/v1/municipalities/{MAEBASHI}/grants",
        headers=bearer(keys["maebashi"]),
        json=grant | {"points": 50},
    )
    assert granted.status_code == 201, granted.json()
    assert granted.json()["mykey_id"] == "MY333333"
    assert database.count("card_proof_attempts") == 0


def test_counter_uses_are_in_the_residents_usage_history(
    card_client: TestClient, town: dict[str, str], cards: list[SimulatedCard], database: Database
) -> None:
    """R1.5: balances seen at a terminal, a payment and a voucher issue are uses of the MyKey
    ID (where, by which terminal, what for, when), each also a leaf of the history log."""
    c = card_client
    alice = cards[0]
    leaves = _leaves(database, "mykey_usage")
    _balances(c, town["shop"], alice)
    assert _pay(c, town["shop"], alice, TENRI, 250, "use-1").status_code == 201
    issued = c.post(
        "/api/v1/terminal/vouchers",
        headers=bearer(town["shop"]),
        json={"card_proof": proof(c, alice), "municipality": TENRI, "points": 200, "key": "use-2"},
    )
    assert issued.status_code == 201
    refused = _pay(c, town["shop"], alice, TENRI, 99999, "use-3")
    assert refused.status_code == 409  # refused: not a use, nothing recorded
    assert _leaves(database, "mykey_usage") == leaves + 3

    token = c.post("/api/v1/sessions", json={"mykey_id": "MY111111", "password": PASSWORD})
    mine = c.get("/api/v1/me/history", headers=bearer(token.json()["token"])).json()
    uses = [(e["action"], e["provider_id"], e["purpose"]) for e in mine[1:4]]  # after the login
    assert uses == [
        ("voucher_issue", "tenri-shop1", "1 × 200 pt · 天理市ポイント"),
        ("pay", "tenri-shop1", "250 pt · 天理市ポイント"),
        ("balances", "tenri-shop1", ""),
    ]
    assert {e["actor"] for e in mine[1:4]} == {mine[1]["actor"]}
    assert mine[1]["actor"].startswith("terminal:")


def test_a_refusal_is_replayed_after_what_it_was_refused_on_has_changed(
    card_client: TestClient,
    town: dict[str, str],
    cards: list[SimulatedCard],
    keys: dict[str, str],
    database: Database,
) -> None:
    """A request's hash is made of what the terminal sent, not of what the database held then:
    a payment or voucher issue refused while the resident had no wallet yet, and a refund
    refused before its lot lapsed, are refused again under their keys once the wallet exists
    and the lot has lapsed (not `idempotency_key_reused`)."""
    c = card_client
    newcomer = _resident(c, cards[2], "MY333333")  # no points anywhere yet: no wallet
    calls = [
        ("/api/v1/terminal/payments", {"municipality": MAEBASHI, "points": 100, "key": "nw-pay"}),
        ("/api/v1/terminal/vouchers", {"municipality": MAEBASHI, "points": 100, "key": "nw-v"}),
    ]
    sent = []
    for path, fields in calls:
        body = {"card_proof": proof(c, cards[2])} | fields
        first = c.post(path, headers=bearer(town["shop"]), json=body)
        assert first.status_code == 409 and first.json()["code"] == "no_points", first.json()
        sent.append((path, body))
    _grant(c, keys["maebashi"], MAEBASHI, newcomer, 1000, "nw-grant")  # the wallet is made
    for path, body in sent:
        again = c.post(path, headers=bearer(town["shop"]), json=body)
        assert again.status_code == 409, again.json()
        assert again.json()["code"] == "no_points"
        assert again.json()["details"]["replayed"] is True

    paid = _pay(c, town["shop"], cards[0], TENRI, 300, "rf-pay").json()
    refund = {"payment_id": paid["transaction_id"], "points": 500, "key": "rf-much"}
    first = c.post("/api/v1/terminal/refunds", headers=bearer(town["shop"]), json=refund)
    assert first.status_code == 409 and first.json()["code"] == "refund_exceeds_payment"
    database.clock.advance(days=62)  # the payment's lots (and so a refund's lot) have lapsed
    again = c.post("/api/v1/terminal/refunds", headers=bearer(town["shop"]), json=refund)
    assert again.status_code == 409, again.json()
    assert again.json()["code"] == "refund_exceeds_payment"
    assert again.json()["details"]["replayed"] is True
    other = c.post(
        "/api/v1/terminal/refunds", headers=bearer(town["shop"]), json=refund | {"points": 400}
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"


def test_cancellations_and_refunds_of_one_payment_race(
    town: dict[str, str], cards: list[SimulatedCard], database: Database
) -> None:
    """Two cancellations and two refunds of one payment at once, from two terminals (three
    payments in turn): each is either cancelled once (all else refused in words) or refunded,
    never both; the wallet gets back exactly what was answered; the ledger balances."""
    alice = cards[0]  # 3,000 Maebashi points
    card = VerifiedCard(alice.card_key, alice.certificate.not_valid_after_utc)
    shop, balance = "tenri-shop1", 3000

    def race(round_: int) -> list[tuple[str, int]]:
        paid = spending.pay(
            database.uow(),
            shop_id=shop,
            card=card,
            municipality=MAEBASHI,
            points=500,
            actor="terminal:t0",
            key=f"race-paid-{round_}",
        )
        start = threading.Barrier(4)

        def attempt(i: int) -> tuple[str, int]:
            actor, key = f"terminal:t{i % 2}", f"race-{round_}-{i}"
            start.wait()
            try:
                if i % 2:
                    done = spending.cancel(
                        database.uow(),
                        shop_id=shop,
                        payment_id=paid.transfer_id,
                        actor=actor,
                        key=key,
                    )
                    return "cancelled", done.points
                back = spending.refund(
                    database.uow(),
                    shop_id=shop,
                    payment_id=paid.transfer_id,
                    points=100,
                    actor=actor,
                    key=key,
                )
                return "refunded", back.points
            except MyKeyError as error:
                return error.code, 0

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(attempt, range(4)))

    for round_ in range(3):
        outcomes = race(round_)
        codes = sorted(code for code, _ in outcomes)
        given_back = sum(points for _, points in outcomes)
        if "cancelled" in codes:
            expected = ["already_cancelled", "cancelled", "payment_cancelled", "payment_cancelled"]
            assert codes == expected, outcomes
            assert given_back == 500
        else:
            assert codes == ["payment_refunded", "payment_refunded", "refunded", "refunded"], (
                outcomes
            )
            assert given_back == 200
        balance += given_back - 500
        rest = spending.balances_here(database.uow(), shop_id=shop, card=card, actor="terminal:t0")
        assert {b.municipality: b.balance for b in rest.balances}[MAEBASHI] == balance
    assert check(database.uow()).ok
