"""Gift certificates (商品券, R6.5): programmes as data per municipality, exchanged at a
terminal with a fresh card proof, printed as a batch titled 商品券, redeemed at any valid shop,
unredeemed ones expire back to the wallet (HTTP, SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from mykey import ledger
from mykey.db import tokyo_date
from mykey.identity.keys import create_key
from mykey.identity.simulator import SimulatedCard
from mykey.ledger import AccountKind
from mykey.points.vouchers import expire_vouchers
from tests.api.conftest import bearer, proof
from tests.api.test_counter import MAEBASHI, TENRI
from tests.api.test_vouchers import (  # noqa: F401 -- shops is a fixture
    _redeem,
    _shop_balance,
    _wallet,
    shops,
)
from tests.conftest import Database
from tests.pdfs import read_pdf

Q_TOWN = {"name": "前橋Qの町商品券", "denomination": 1000, "valid_days": 180, "max_sheets": 2}


def _put(c: TestClient, key: str, code: str, program: str, body: dict[str, Any]) -> Any:
    return c.put(
        f"/api/v1/municipalities/{code}/gift-programs/{program}", headers=bearer(key), json=body
    )


def _exchange(
    c: TestClient, terminal: str, card: SimulatedCard, program: str, sheets: int, key: str
) -> Any:
    return c.post(
        "/api/v1/terminal/gift-certificates",
        headers=bearer(terminal),
        json={"card_proof": proof(c, card), "program": program, "sheets": sheets, "key": key},
    )


def _staff(database: Database, code: str) -> str:
    return create_key(database.uow(), role="municipality_staff", label="職員", municipality=code)[0]


def test_gift_programmes_are_set_up_by_their_municipality(
    card_client: TestClient,
    shops: dict[str, str],  # noqa: F811 -- the fixture
    database: Database,
) -> None:
    c = card_client
    maebashi, tenri = _staff(database, MAEBASHI), _staff(database, TENRI)
    made = _put(c, maebashi, MAEBASHI, "maebashi-q", Q_TOWN)
    assert made.status_code == 200, made.json()
    assert made.json() == {
        "id": "maebashi-q",
        "municipality": MAEBASHI,
        "name": "前橋Qの町商品券",
        "denomination": 1000,
        "valid_days": 180,
        "street_id": None,
        "street_name": None,
        "max_sheets": 2,
    }
    # another municipality's staff, a terminal: refused; nothing changes
    other = _put(c, tenri, MAEBASHI, "maebashi-q", {**Q_TOWN, "denomination": 1})
    assert other.status_code == 403 and other.json()["code"] == "forbidden"
    taken = _put(c, tenri, TENRI, "maebashi-q", Q_TOWN)
    assert taken.status_code == 409
    assert taken.json()["code"] == "gift_program_of_another_municipality"
    terminal = _put(c, shops["arts-maebashi"], MAEBASHI, "maebashi-q", Q_TOWN)
    assert terminal.status_code == 403 and terminal.json()["code"] == "forbidden"
    # bad input, a street of another municipality
    for bad, code in (
        ({"denomination": 0}, "invalid_points"),
        ({"valid_days": 0}, "invalid_days"),
        ({"max_sheets": 101}, "invalid_count"),
        ({"name": " "}, "invalid_gift_name"),
    ):
        refused = _put(c, maebashi, MAEBASHI, "maebashi-q", {**Q_TOWN, **bad})
        assert refused.status_code == 422 and refused.json()["code"] == code, refused.json()
    street = _put(c, maebashi, MAEBASHI, "maebashi-q", {**Q_TOWN, "street_id": "tenri-honten"})
    assert street.status_code == 404 and street.json()["code"] == "unknown_street"
    assert _put(c, maebashi, MAEBASHI, "bad id!", Q_TOWN).status_code == 422

    listed = c.get(f"/api/v1/municipalities/{MAEBASHI}/gift-programs")
    assert listed.status_code == 200
    assert [(p["id"], p["denomination"]) for p in listed.json()] == [("maebashi-q", 1000)]
    assert c.get(f"/api/v1/municipalities/{TENRI}/gift-programs").json() == []


def test_exchange_print_redeem_and_expire_town_wide_certificates(
    card_client: TestClient,
    shops: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    c = card_client
    assert _put(c, _staff(database, MAEBASHI), MAEBASHI, "maebashi-q", Q_TOWN).status_code == 200

    made = _exchange(c, shops["arts-maebashi"], cards[0], "maebashi-q", 2, "g-1")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["points"] == 2000 and body["balance"] == 1000 and not body["replayed"]
    certificates = body["vouchers"]
    numbers = [v["number"] for v in certificates]
    today = tokyo_date(database.clock.now)
    for v in certificates:
        assert v["program"] == "gift" and v["gift_program"] == "maebashi-q"
        assert v["face_value"] == 1000 and v["shop_id"] is None and v["street_id"] is None
        assert v["valid_until"] == (today + timedelta(days=179)).isoformat()
    # the points left the wallet in one transfer
    uow = database.uow()
    paid = ledger.get_transfer(uow, body["transaction_id"])
    assert paid.amount == 2000
    float_ = ledger.find_account(
        uow, ledger=MAEBASHI, kind=AccountKind.VOUCHER_FLOAT, owner="vouchers"
    )
    assert paid.credit_account_id == float_.id
    assert _wallet(database, MAEBASHI) == 1000

    # a retry exchanges once; refusals change nothing
    again = _exchange(c, shops["arts-maebashi"], cards[0], "maebashi-q", 2, "g-1")
    assert again.status_code == 201 and again.json()["replayed"]
    assert [v["number"] for v in again.json()["vouchers"]] == numbers
    for program, sheets, terminal, status, code in (
        ("maebashi-q", 3, "arts-maebashi", 422, "invalid_count"),  # over the programme's 2
        ("maebashi-q", 0, "arts-maebashi", 422, "invalid_count"),
        ("maebashi-q", 2, "arts-maebashi", 409, "insufficient_points"),  # 2,000 > 1,000
        ("maebashi-q", 1, "tenri-shop3", 409, "not_accepted_here"),
        ("no-such-gift", 1, "arts-maebashi", 404, "unknown_gift_program"),
    ):
        refused = _exchange(c, shops[terminal], cards[0], program, sheets, f"g-{code}")
        assert refused.status_code == status, refused.json()
        assert refused.json()["code"] == code
    assert _wallet(database, MAEBASHI) == 1000

    # printed as a batch titled 商品券, each certificate scannable
    url = f"/api/v1/vouchers/batches/{body['transaction_id']}.pdf"
    printed = c.get(url, headers=bearer(shops["arts-maebashi"]))
    assert printed.status_code == 200, printed.text
    [page] = read_pdf(printed.content)
    assert page.text.count("★★★商品券★★★") == 2 and "ポイント券" not in page.text
    assert page.text.count("前橋Qの町商品券（前橋市ポイント）") == 2
    assert page.text.count("1,000 ポイント") == 2
    assert "★群馬県前橋市の前橋市ポイント取扱店舗でご利用頂けます。" in page.text
    assert page.ean13 == numbers and page.qr == numbers

    # redeemed at any shop that takes Maebashi points (the issuer is a museum, this a shop)
    assert _redeem(c, shops["tenri-shop1"], numbers[0], "gr-1").status_code == 201
    assert _shop_balance(database, MAEBASHI, "tenri-shop1") == 1000
    wrong = _redeem(c, shops["tenri-shop2"], numbers[1], "gr-2")  # takes Tenri points only
    assert wrong.status_code == 409 and wrong.json()["code"] == "voucher_wrong_shop"
    twice = _redeem(c, shops["arts-maebashi"], numbers[0], "gr-3")
    assert twice.status_code == 409 and twice.json()["code"] == "voucher_already_redeemed"

    # the unredeemed one goes back to the wallet after its 180th day
    database.clock.advance(days=179)
    assert expire_vouchers(database.uow(), as_of=tokyo_date(database.clock.now)).vouchers == 0
    database.clock.advance(days=1)
    late = _redeem(c, shops["arts-maebashi"], numbers[1], "gr-4")
    assert late.status_code == 409 and late.json()["code"] == "voucher_expired"
    back = expire_vouchers(database.uow(), as_of=tokyo_date(database.clock.now))
    assert (back.vouchers, back.points) == (1, 1000)
    assert _wallet(database, MAEBASHI) == 2000
    assert ledger.balance(database.uow(), float_.id).available == 0


def test_street_certificates_are_valid_only_on_their_street(
    card_client: TestClient,
    shops: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    c = card_client
    street = {"name": "天理本通り商品券", "denomination": 500, "valid_days": 30}
    put = _put(
        c,
        _staff(database, TENRI),
        TENRI,
        "tenri-honten-gift",
        {**street, "street_id": "tenri-honten"},
    )
    assert put.status_code == 200 and put.json()["street_name"] == "天理本通り商店街"
    # exchanged off the street; valid on it
    made = _exchange(c, shops["tenri-shop3"], cards[0], "tenri-honten-gift", 2, "s-1")
    assert made.status_code == 201, made.json()
    first, second = (v["number"] for v in made.json()["vouchers"])
    assert _wallet(database, TENRI) == 0
    off = _redeem(c, shops["tenri-shop3"], first, "sr-1")
    assert off.status_code == 409 and off.json()["code"] == "voucher_wrong_shop"
    assert _redeem(c, shops["tenri-shop2"], first, "sr-2").status_code == 201
    assert _redeem(c, shops["tenri-shop1"], second, "sr-3").status_code == 201
    assert _shop_balance(database, TENRI, "tenri-shop2") == 500
    [page] = read_pdf(
        c.get(f"/api/v1/vouchers/{first}.pdf", headers=bearer(shops["tenri-shop3"])).content
    )
    assert "★天理本通り商店街の各店舗でご利用頂けます。" in page.text
    assert "使用済み / REDEEMED" in page.text and page.ean13 == [first]


def test_a_gift_exchange_is_bound_to_the_holder_and_a_lost_answer_replays(
    card_client: TestClient,
    shops: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    """Issue #13: another card at the confirmation is refused (nothing exchanged); the very
    same request sent again after a lost answer gets the first answer."""
    c = card_client
    assert _put(c, _staff(database, MAEBASHI), MAEBASHI, "maebashi-q", Q_TOWN).status_code == 200
    shown = c.post(
        "/api/v1/terminal/balances",
        headers=bearer(shops["arts-maebashi"]),
        json={"card_proof": proof(c, cards[0])},
    ).json()
    body = {
        "program": "maebashi-q",
        "sheets": 1,
        "key": "gift-bound",
        "expected_holder": shown["holder_binding"]["token"],
    }
    wrong = c.post(  # a card without a MyKey ID, tapped instead of the holder's
        "/api/v1/terminal/gift-certificates",
        headers=bearer(shops["arts-maebashi"]),
        json=body | {"card_proof": proof(c, cards[1])},
    )
    assert wrong.status_code == 409 and wrong.json()["code"] == "wrong_card"
    assert _wallet(database, MAEBASHI) == 3000

    sent = body | {"card_proof": proof(c, cards[0])}
    first = c.post(
        "/api/v1/terminal/gift-certificates", headers=bearer(shops["arts-maebashi"]), json=sent
    )
    assert first.status_code == 201, first.json()
    again = c.post(
        "/api/v1/terminal/gift-certificates", headers=bearer(shops["arts-maebashi"]), json=sent
    )
    assert again.status_code == 201, again.json()
    assert again.json()["replayed"] is True
    assert again.json()["vouchers"] == first.json()["vouchers"]
    assert _wallet(database, MAEBASHI) == 2000
