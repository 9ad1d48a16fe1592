"""Point vouchers (ポイント券, issue #5) at shop terminals: issue from a wallet with a card
proof, redeem once at the right shop, refusals, denominations, expiry, Tenri's receipts (HTTP)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mykey import ledger
from mykey.db import tokyo_date
from mykey.errors import MyKeyError
from mykey.identity.keys import create_key
from mykey.identity.proofs import VerifiedCard
from mykey.identity.simulator import SimulatedCard
from mykey.ledger import AccountKind
from mykey.points.expiry import DailyJobs
from mykey.points.vouchers import TENRI as TENRI_RULES
from mykey.points.vouchers import (
    association_owner,
    check_digit,
    expire_vouchers,
    issue,
    redeem,
    valid_number,
)
from tests.api.conftest import bearer, proof
from tests.api.test_counter import MAEBASHI, TENRI, _grant, _program, _resident
from tests.conftest import Database


@pytest.fixture
def shops(
    card_client: TestClient, database: Database, cards: list[SimulatedCard]
) -> dict[str, str]:
    """Maebashi (a museum) and Tenri (two shops on a street, one off it); a resident with
    3,000 Maebashi and 1,000 Tenri points."""
    from mykey.demo import MUNICIPALITIES
    from mykey.municipalities.registry import upsert

    c, uow = card_client, database.uow()
    upsert(uow, MUNICIPALITIES)
    staff = {
        MAEBASHI: create_key(uow, role="municipality_staff", label="前橋市", municipality=MAEBASHI)[
            0
        ],
        TENRI: create_key(uow, role="municipality_staff", label="天理市", municipality=TENRI)[0],
    }
    for code, name, usable in (
        (MAEBASHI, "前橋市ポイント", ["museum", "shop"]),
        (TENRI, "天理市ポイント", ["shop"]),
    ):
        put = c.put(
            f"/api/v1/municipalities/{code}/program",
            headers=bearer(staff[code]),
            json=_program(name, usable, {"budget": None}),
        )
        assert put.status_code == 200, put.json()
    assert (
        c.put(
            "/api/v1/streets/tenri-honten",
            headers=bearer(staff[TENRI]),
            json={"name": "天理本通り商店街", "municipality": TENRI},
        ).status_code
        == 200
    )
    for shop_id, name, code, kind, accepts, street in (
        ("arts-maebashi", "アーツ前橋", MAEBASHI, "museum", [MAEBASHI], None),
        ("tenri-shop1", "本通りの本屋", TENRI, "shop", [TENRI, MAEBASHI], "tenri-honten"),
        ("tenri-shop2", "本通りの茶店", TENRI, "shop", [TENRI], "tenri-honten"),
        ("tenri-shop3", "駅前の花屋", TENRI, "shop", [TENRI], None),
    ):
        put = c.put(
            f"/api/v1/shops/{shop_id}",
            headers=bearer(staff[code]),
            json={
                "name": name,
                "municipality": code,
                "kind": kind,
                "accepts": accepts,
                "street_id": street,
            },
        )
        assert put.status_code == 200, put.json()
    _resident(c, cards[0], "MY111111")
    _grant(c, staff[MAEBASHI], MAEBASHI, "MY111111", 3000, "m-1")
    _grant(c, staff[TENRI], TENRI, "MY111111", 1000, "t-1")
    return {
        shop: create_key(uow, role="terminal", label="レジ", provider_id=shop)[0]
        for shop in ("arts-maebashi", "tenri-shop1", "tenri-shop2", "tenri-shop3")
    }


def _issue(c: TestClient, terminal: str, card: SimulatedCard, **body: Any) -> Any:
    return c.post(
        "/api/v1/terminal/vouchers",
        headers=bearer(terminal),
        json={"card_proof": proof(c, card), **body},
    )


def _redeem(c: TestClient, terminal: str, number: str, key: str) -> Any:
    return c.post(
        "/api/v1/terminal/voucher-redemptions",
        headers=bearer(terminal),
        json={"number": number, "key": key},
    )


def _wallet(database: Database, code: str) -> int:
    uow = database.uow()
    account = ledger.find_account(uow, ledger=code, kind=AccountKind.WALLET, owner="MY111111")
    return ledger.balance(uow, account.id).available


def _shop_balance(database: Database, code: str, shop: str) -> int:
    uow = database.uow()
    account = ledger.find_account(uow, ledger=code, kind=AccountKind.SHOP, owner=shop)
    return ledger.balance(uow, account.id).posted


def test_ean13_check_digit() -> None:
    assert check_digit("490123456789") == "4"  # a well-known EAN-13: 4901234567894
    assert valid_number("4901234567894")
    assert not valid_number("4901234567895")
    assert not valid_number("490123456789")


def test_issue_and_redeem_once_at_the_right_shop(
    card_client: TestClient, shops: dict[str, str], cards: list[SimulatedCard], database: Database
) -> None:
    c = card_client
    made = _issue(c, shops["tenri-shop1"], cards[0], municipality=MAEBASHI, points=1200, key="v-1")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["balance"] == 1800 and body["points"] == 1200 and not body["replayed"]
    [voucher] = body["vouchers"]
    number = voucher["number"]
    assert len(number) == 13 and valid_number(number)
    assert voucher["face_value"] == 1200 and voucher["point_name"] == "前橋市ポイント"
    assert voucher["shop_id"] == "tenri-shop1" and voucher["status"] == "issued"
    today = tokyo_date(database.clock.now)
    assert voucher["issued_on"] == today.isoformat()
    assert voucher["valid_until"] > voucher["issued_on"]
    # a retry with the same key issues nothing new
    again = _issue(c, shops["tenri-shop1"], cards[0], municipality=MAEBASHI, points=1200, key="v-1")
    assert again.status_code == 201 and again.json()["replayed"]
    assert again.json()["vouchers"][0]["number"] == number
    assert _wallet(database, MAEBASHI) == 1800

    # mistyped (check digit), unknown, wrong shop
    typo = number[:12] + str((int(number[12]) + 1) % 10)
    bad = _redeem(c, shops["tenri-shop1"], typo, "r-0")
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_voucher_number"
    other = "490123456789" + check_digit("490123456789")
    assert _redeem(c, shops["tenri-shop1"], other, "r-0").status_code == 404
    wrong = _redeem(c, shops["arts-maebashi"], number, "r-1")
    assert wrong.status_code == 409 and wrong.json()["code"] == "voucher_wrong_shop"

    paid = _redeem(c, shops["tenri-shop1"], number, "r-2")
    assert paid.status_code == 201, paid.json()
    assert paid.json()["voucher"]["status"] == "redeemed"
    assert _shop_balance(database, MAEBASHI, "tenri-shop1") == 1200
    # the same request again is a replay; a new one is refused
    replay = _redeem(c, shops["tenri-shop1"], number, "r-2")
    assert replay.status_code == 201 and replay.json()["replayed"]
    second = _redeem(c, shops["tenri-shop1"], number, "r-3")
    assert second.status_code == 409 and second.json()["code"] == "voucher_already_redeemed"
    assert _shop_balance(database, MAEBASHI, "tenri-shop1") == 1200
    # more than the wallet holds is refused and changes nothing
    broke = _issue(c, shops["tenri-shop1"], cards[0], municipality=MAEBASHI, points=1801, key="v-2")
    assert broke.status_code == 409 and broke.json()["code"] == "insufficient_points"
    assert _wallet(database, MAEBASHI) == 1800


def test_split_denominations_valid_on_the_street(
    card_client: TestClient, shops: dict[str, str], cards: list[SimulatedCard], database: Database
) -> None:
    c = card_client
    change = _issue(
        c,
        shops["tenri-shop1"],
        cards[0],
        municipality=TENRI,
        points=1000,
        denomination=300,
        key="d-0",
    )
    assert change.status_code == 422 and change.json()["code"] == "invalid_denomination"
    made = _issue(
        c,
        shops["tenri-shop1"],
        cards[0],
        municipality=TENRI,
        points=1000,
        denomination=100,
        street_id="tenri-honten",
        key="d-1",
    )
    assert made.status_code == 201, made.json()
    vouchers = made.json()["vouchers"]
    assert [v["face_value"] for v in vouchers] == [100] * 10
    assert len({v["number"] for v in vouchers}) == 10
    assert all(v["street_name"] == "天理本通り商店街" for v in vouchers)
    assert _wallet(database, TENRI) == 0
    # any shop of the street takes them, a shop off the street does not
    assert _redeem(c, shops["tenri-shop2"], vouchers[0]["number"], "s-1").status_code == 201
    assert _redeem(c, shops["tenri-shop1"], vouchers[1]["number"], "s-2").status_code == 201
    off = _redeem(c, shops["tenri-shop3"], vouchers[2]["number"], "s-3")
    assert off.status_code == 409 and off.json()["code"] == "voucher_wrong_shop"
    assert _shop_balance(database, TENRI, "tenri-shop2") == 100


def test_unredeemed_vouchers_expire_back_to_the_wallet(
    card_client: TestClient, shops: dict[str, str], cards: list[SimulatedCard], database: Database
) -> None:
    c = card_client
    made = _issue(
        c,
        shops["tenri-shop1"],
        cards[0],
        municipality=MAEBASHI,
        points=1000,
        denomination=500,
        key="e-1",
    )
    first, second = (v["number"] for v in made.json()["vouchers"])
    assert _redeem(c, shops["tenri-shop1"], first, "x-1").status_code == 201
    database.clock.advance(days=2)  # the third day counting the day of issue: still valid
    assert tokyo_date(database.clock.now).isoformat() == made.json()["vouchers"][1]["valid_until"]
    assert expire_vouchers(database.uow(), as_of=tokyo_date(database.clock.now)).vouchers == 0
    database.clock.advance(days=1)
    late = _redeem(c, shops["tenri-shop1"], second, "x-2")
    assert late.status_code == 409 and late.json()["code"] == "voucher_expired"
    jobs = DailyJobs(database.uow, database.clock)
    jobs.run_once()
    assert _wallet(database, MAEBASHI) == 2500
    looked = c.get(f"/api/v1/terminal/vouchers/{second}", headers=bearer(shops["tenri-shop1"]))
    assert looked.json()["status"] == "expired"
    again = expire_vouchers(database.uow(), as_of=tokyo_date(database.clock.now))
    assert (again.vouchers, again.points) == (0, 0)
    still = _redeem(c, shops["tenri-shop1"], second, "x-3")
    assert still.status_code == 409 and still.json()["code"] == "voucher_expired"


@pytest.mark.parametrize(
    ("yen", "points"), [(999, 0), (1000, 100), (1099, 100), (50000, 5000), (50001, 5000)]
)
def test_tenri_receipt_rules(yen: int, points: int) -> None:
    assert TENRI_RULES.points(yen) == points


def test_tenri_receipt_vouchers_are_funded_by_the_city(
    card_client: TestClient, shops: dict[str, str], database: Database
) -> None:
    c = card_client

    def receipt(ref: str, yen: int, key: str) -> Any:
        return c.post(
            "/api/v1/terminal/receipt-vouchers",
            headers=bearer(shops["tenri-shop1"]),
            json={"receipt_ref": ref, "yen": yen, "key": key},
        )

    small = receipt("R-999", 999, "k-999")
    assert small.status_code == 409 and small.json()["code"] == "receipt_too_small"
    got = {}
    for yen in (1000, 1099, 50000, 50001):
        done = receipt(f"R-{yen}", yen, f"k-{yen}")
        assert done.status_code == 201, done.json()
        [voucher] = done.json()["vouchers"]
        got[yen] = voucher["face_value"]
        assert voucher["street_id"] == "tenri-honten" and voucher["receipt_ref"] == f"R-{yen}"
    assert got == {1000: 100, 1099: 100, 50000: 5000, 50001: 5000}
    twice = receipt("R-1000", 1000, "k-again")
    assert twice.status_code == 409 and twice.json()["code"] == "receipt_already_used"
    kept = receipt("R-1000", 1000, "k-again")  # issue #13: the refusal is kept under its key
    assert kept.status_code == 409 and kept.json()["details"]["replayed"] is True
    uow = database.uow()
    budget = ledger.find_account(uow, ledger=TENRI, kind=AccountKind.BUDGET, owner=TENRI)
    float_ = ledger.find_account(
        uow, ledger=TENRI, kind=AccountKind.VOUCHER_FLOAT, owner="vouchers"
    )
    assert ledger.balance(uow, float_.id).available == 10200
    assert ledger.balance(uow, budget.id).debits_posted >= 10200
    # redeemed at another shop of the street; unredeemed ones lapse to the expiry account
    number = receipt("R-1099", 1099, "k-1099").json()["vouchers"][0]["number"]
    assert _redeem(c, shops["tenri-shop2"], number, "rr-1").status_code == 201
    replay = _redeem(c, shops["tenri-shop2"], number, "rr-1")
    assert replay.status_code == 201 and replay.json()["replayed"]
    assert _redeem(c, shops["tenri-shop2"], number, "rr-2").status_code == 409
    # cashed through the street's commerce association: the city pays it, it pays the shop
    association = ledger.find_account(
        uow, ledger=TENRI, kind=AccountKind.SETTLEMENT, owner=association_owner("tenri-honten")
    )
    cashed = ledger.balance(uow, association.id)
    assert (cashed.credits_posted, cashed.debits_posted) == (100, 100)
    assert _shop_balance(database, TENRI, "tenri-shop2") == 100
    database.clock.advance(days=TENRI_RULES.valid_days)
    back = expire_vouchers(database.uow(), as_of=tokyo_date(database.clock.now))
    assert (back.vouchers, back.points) == (3, 10100)
    assert ledger.balance(uow, float_.id).available == 0


def test_a_refused_redemption_is_kept_under_its_key(
    card_client: TestClient,
    shops: dict[str, str],
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    """Issue #13: the key is looked up first and a refusal is kept under it: the same request
    again is refused the same way (`replayed`), and a lost answer of a redemption replays."""
    c = card_client
    issued = _issue(
        c, shops["arts-maebashi"], cards[0], municipality=MAEBASHI, points=500, key="v-kept"
    )
    number = issued.json()["vouchers"][0]["number"]
    elsewhere = _redeem(c, shops["tenri-shop3"], number, "r-kept")
    assert elsewhere.status_code == 409 and elsewhere.json()["code"] == "voucher_wrong_shop"
    again = _redeem(c, shops["tenri-shop3"], number, "r-kept")
    assert again.status_code == 409 and again.json()["details"]["replayed"] is True
    taken = _redeem(c, shops["arts-maebashi"], number, "r-ok")
    lost = _redeem(c, shops["arts-maebashi"], number, "r-ok")
    assert taken.status_code == lost.status_code == 201
    assert lost.json()["replayed"] is True
    assert lost.json()["transaction_id"] == taken.json()["transaction_id"]
    assert _shop_balance(database, MAEBASHI, "arts-maebashi") == 500


def test_two_shops_racing_for_one_voucher_pay_once(
    card_client: TestClient, shops: dict[str, str], cards: list[SimulatedCard], database: Database
) -> None:
    """Four terminals of two shops of the street redeem one voucher at once: one is paid, the
    others are refused in words; the voucher names its street and the shop that took it."""
    c = card_client
    made = _issue(
        c, shops["tenri-shop1"], cards[0], municipality=TENRI, points=400,
        street_id="tenri-honten", key="race-v",
    )  # fmt: skip
    assert made.status_code == 201, made.json()
    number = made.json()["vouchers"][0]["number"]
    start = threading.Barrier(4)

    def attempt(i: int) -> tuple[str, str | None]:
        shop = ("tenri-shop1", "tenri-shop2")[i % 2]
        start.wait()
        try:
            done = redeem(
                database.uow(), shop_id=shop, number=number, actor=f"terminal:{i}", key=f"x-{i}"
            )
        except MyKeyError as error:
            return error.code, None
        assert done.voucher.status == "redeemed" and done.voucher.redeemed_shop_id == shop
        assert done.voucher.street_name == "天理本通り商店街"
        assert done.voucher.point_name == "天理市ポイント"
        return "redeemed", shop

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(attempt, range(4)))
    codes = sorted(code for code, _ in outcomes)
    assert codes == ["redeemed"] + ["voucher_already_redeemed"] * 3, outcomes
    [winner] = [shop for _, shop in outcomes if shop]
    loser = "tenri-shop2" if winner == "tenri-shop1" else "tenri-shop1"
    assert _shop_balance(database, TENRI, winner) == 400
    assert _shop_balance(database, TENRI, loser) == 0
    assert ledger.check(database.uow()).ok


def test_terminals_issuing_from_one_wallet_at_once_never_overdraw_it(
    card_client: TestClient, shops: dict[str, str], cards: list[SimulatedCard], database: Database
) -> None:
    """Four terminals turn 400 of the same 1,000 Tenri points into vouchers at once: two are
    issued, two refused with what is left; each issue's vouchers and usage entry are written
    with it, none for a refusal."""
    alice = cards[0]
    card = VerifiedCard(alice.card_key, alice.certificate.not_valid_after_utc)
    entries = database.count("mykey_usage")
    start = threading.Barrier(4)

    def attempt(i: int) -> tuple[str, int]:
        start.wait()
        try:
            made = issue(
                database.uow(),
                shop_id=("tenri-shop1", "tenri-shop2")[i % 2],
                card=card,
                municipality=TENRI,
                points=400,
                denomination=100,
                actor=f"terminal:{i}",
                key=f"w-{i}",
            )
        except MyKeyError as error:
            return error.code, int(error.details.get("balance", -1))
        assert [v.face_value for v in made.vouchers] == [100] * 4
        assert {v.shop_name for v in made.vouchers} <= {"本通りの本屋", "本通りの茶店"}
        return "issued", made.balance

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(attempt, range(4)))
    assert sorted(code for code, _ in outcomes) == ["insufficient_points"] * 2 + ["issued"] * 2
    assert sorted(b for code, b in outcomes if code == "issued") == [200, 600]
    assert _wallet(database, TENRI) == 200
    assert database.count("vouchers") == 8
    assert database.count("mykey_usage") == entries + 2
    assert ledger.check(database.uow()).ok


def test_a_refused_issue_keeps_the_tap(
    card_client: TestClient, shops: dict[str, str], cards: list[SimulatedCard], database: Database
) -> None:
    """Vouchers for more than the wallet holds, at a shop that does not take the points, or
    for a street that does not exist: refused before the card's challenge is used, so the
    same tap then issues them."""
    c, alice = card_client, cards[0]  # 1,000 Tenri points
    tapped = proof(c, alice)
    uses = database.count("card_challenge_uses")

    def vouchers(terminal: str, key: str, **body: Any) -> Any:
        return c.post(
            "/api/v1/terminal/vouchers",
            headers=bearer(shops[terminal]),
            json={"card_proof": tapped, "municipality": TENRI, "key": key, **body},
        )

    much = vouchers("tenri-shop1", "i-much", points=1500)
    assert much.status_code == 409 and much.json()["code"] == "insufficient_points"
    assert much.json()["details"]["balance"] == 1000
    museum = vouchers("arts-maebashi", "i-museum", points=100)
    assert museum.status_code == 409 and museum.json()["code"] == "not_accepted_here"
    nowhere = vouchers("tenri-shop1", "i-street", points=100, street_id="nowhere")
    assert nowhere.status_code == 404 and nowhere.json()["code"] == "unknown_street"
    assert database.count("card_challenge_uses") == uses  # the tap is still good
    made = vouchers("tenri-shop1", "i-right", points=300, street_id="tenri-honten")
    assert made.status_code == 201, made.json()
    assert made.json()["balance"] == 700
    [voucher] = made.json()["vouchers"]
    assert voucher["street_name"] == "天理本通り商店街" and voucher["shop_id"] is None
    assert database.count("card_challenge_uses") == uses + 1
    again = vouchers("tenri-shop1", "i-again", points=100)
    assert again.json()["code"] == "challenge_used"
