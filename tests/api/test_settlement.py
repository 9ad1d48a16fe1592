"""Monthly settlement (issue #6, R5.5, R7): a month of activity across three municipalities,
two partners, five shops and Tenri's commerce association, made with the real verbs; the
month closed, every statement asserted to the yen, the reconciliation, re-closing, a late
refund in the next month, and role isolation of every statement endpoint (HTTP)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mykey import ledger
from mykey.demo import MUNICIPALITIES
from mykey.errors import MyKeyError
from mykey.identity.keys import create_key
from mykey.identity.links import register_service_id
from mykey.identity.simulator import SimulatedCard
from mykey.ledger import AccountKind
from mykey.municipalities.registry import upsert
from mykey.points import online
from mykey.points.conversion import convert
from mykey.points.expiry import expire_points
from mykey.points.grants import grant_points
from mykey.points.partners import add_agreement, set_partner
from mykey.points.program_setup import set_up_program
from mykey.points.shops import set_shop, set_street
from mykey.points.vouchers import TENRI as TENRI_RULES
from mykey.points.vouchers import expire_vouchers, issue_for_receipt
from mykey.settlement import statements, zengin
from tests.api.conftest import PASSWORD, bearer, proof
from tests.conftest import Database
from tests.pdfs import read_pdf

MAEBASHI, TENRI, OGUNI = "102016", "292044", "434248"


def at(day: int, hour: int = 12, month: int = 11, minute: int = 0, second: int = 0) -> datetime:
    """A Tokyo wall-clock time in 2026, as aware UTC."""
    from mykey.db import TOKYO

    year, month = (2027, 1) if month == 13 else (2026, month)
    return datetime(year, month, day, hour, minute, second, tzinfo=TOKYO).astimezone(UTC)


def _pay(
    c: TestClient, terminal: str, card: SimulatedCard, code: str, points: int, key: str
) -> str:
    done = c.post(
        "/api/v1/terminal/payments",
        headers=bearer(terminal),
        json={"card_proof": proof(c, card), "municipality": code, "points": points, "key": key},
    )
    assert done.status_code == 201, done.json()
    return str(done.json()["transaction_id"])


def _resident(c: TestClient, card: SimulatedCard, who: str) -> None:
    made = c.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(c, card), "password": PASSWORD, "mykey_id": who},
    )
    assert made.status_code == 201, made.json()


@pytest.fixture
def month(
    card_client: TestClient, database: Database, cards: list[SimulatedCard]
) -> dict[str, Any]:
    """November 2026 in three towns (October: set-up). Returns the keys of every role."""
    c, clock = card_client, database.clock
    uow = database.uow()
    clock.now = at(25, month=10)
    upsert(uow, MUNICIPALITIES)
    for code, name, usable, validity, premium in (
        (MAEBASHI, "前橋市ポイント", ["museum", "shop"], {}, 0),
        (TENRI, "天理市ポイント", ["shop", "online"], {}, 0),
        (OGUNI, "小国町ポイント", ["shop"], {"budget": 1}, 100),
    ):
        set_up_program(
            uow,
            municipality=code,
            point_name=name,
            terms="",
            validity=validity,
            usable_at=usable,
            premium_permille=premium,
        )
    for partner in ("jal", "docomo"):
        set_partner(uow, partner=partner, name=partner.upper(), methods=["id_linkage"])
        add_agreement(
            uow,
            partner=partner,
            effective_from=date(2026, 10, 25),
            rate_units=1,
            rate_points=1,
            minimum=1,
            step=1,
            daily_limit=None,
            actor="operator:test",
        )
    set_street(uow, street_id="tenri-honten", name="天理本通り商店街", municipality=TENRI)
    for shop_id, name, code, kind, accepts, street in (
        ("arts-maebashi", "アーツ前橋", MAEBASHI, "museum", [MAEBASHI], None),
        ("tenri-shop1", "本通りの本屋", TENRI, "shop", [TENRI, MAEBASHI], "tenri-honten"),
        ("tenri-shop2", "本通りの茶店", TENRI, "shop", [TENRI], "tenri-honten"),
        ("tenri-furusato", "天理ふるさと便", TENRI, "online", [TENRI], None),
        ("oguni-yu", "小国の湯", OGUNI, "shop", [OGUNI], None),
    ):
        set_shop(
            uow,
            shop_id=shop_id,
            name=name,
            municipality=code,
            kind=kind,
            accepts=accepts,
            street_id=street,
        )
    online.set_online_fee(uow, municipality=TENRI, permille=75)
    for card, who in zip(cards, ("MY111111", "MY222222", "MY333333"), strict=True):
        _resident(c, card, who)
    register_service_id(uow, mykey_id="MY111111", service="tenri-furusato", external_id="F-1")
    # October: Oguni grants 1,500 points valid one month (last day 2026-11-24)
    grant_points(
        uow,
        municipality=OGUNI,
        mykey_id="MY333333",
        actor="staff:t",
        key="g-o",
        reason="t",
        points=1500,
    )
    keys = {
        "operator": create_key(uow, role="operator", label="council")[0],
        "staff:" + MAEBASHI: create_key(
            uow, role="municipality_staff", label="前橋", municipality=MAEBASHI
        )[0],
        "staff:" + TENRI: create_key(
            uow, role="municipality_staff", label="天理", municipality=TENRI
        )[0],
        "staff:" + OGUNI: create_key(
            uow, role="municipality_staff", label="小国", municipality=OGUNI
        )[0],
    }
    for shop in ("arts-maebashi", "tenri-shop1", "tenri-shop2", "tenri-furusato", "oguni-yu"):
        keys[shop] = create_key(uow, role="terminal", label="レジ", provider_id=shop)[0]
    for partner in ("jal", "docomo"):
        issued = c.post(
            f"/api/v1/partners/{partner}/keys", headers=bearer(keys["operator"]), json={}
        )
        assert issued.status_code == 201, issued.json()
        keys[partner] = issued.json()["api_key"]

    # ---- November ------------------------------------------------------------------------
    clock.now = at(1, 9)
    for code, who, points in ((MAEBASHI, "MY111111", 5000), (TENRI, "MY111111", 3000)):
        grant_points(
            uow,
            municipality=code,
            mykey_id=who,
            actor="staff:t",
            key=f"g-{code}",
            reason="t",
            points=points,
        )
    # receipt vouchers at tenri-shop1: 12,000 yen (cashed at shop2 through the association)
    # and 3,000 yen valid 3 days (never used: breakage)
    cashed = issue_for_receipt(
        uow, shop_id="tenri-shop1", receipt_ref="R-1", yen=12000, actor="t", key="rv-1"
    ).vouchers[0]
    issue_for_receipt(
        uow,
        shop_id="tenri-shop1",
        receipt_ref="R-2",
        yen=3000,
        actor="t",
        key="rv-2",
        rules=dataclasses.replace(TENRI_RULES, valid_days=3),
    )
    clock.now = at(5)
    for partner, who, units, code in (
        ("jal", "MY111111", 1000, MAEBASHI),
        ("docomo", "MY111111", 2000, TENRI),
        ("jal", "MY333333", 3000, OGUNI),
    ):
        convert(
            uow,
            partner=partner,
            mykey_id=who,
            units=units,
            municipality=code,
            method="id_linkage",
            actor=f"partner:{partner}",
            key=f"cv-{partner}-{code}",
        )
    clock.now = at(6)
    _pay(c, keys["arts-maebashi"], cards[0], MAEBASHI, 600, "p1")
    _pay(c, keys["tenri-shop1"], cards[0], MAEBASHI, 400, "p2")
    paid_tenri = _pay(c, keys["tenri-shop1"], cards[0], TENRI, 700, "p3")
    cancelled = _pay(c, keys["tenri-shop2"], cards[0], TENRI, 300, "p4")
    assert (
        c.post(
            f"/api/v1/terminal/payments/{cancelled}/cancellation",
            headers=bearer(keys["tenri-shop2"]),
            json={"key": "c4"},
        ).status_code
        == 201
    )
    _pay(c, keys["oguni-yu"], cards[2], OGUNI, 1000, "p5")  # takes the October budget lot
    clock.now = at(7)
    voucher = c.post(
        "/api/v1/terminal/vouchers",
        headers=bearer(keys["tenri-shop1"]),
        json={
            "card_proof": proof(c, cards[0]),
            "municipality": TENRI,
            "points": 1000,
            "denomination": 500,
            "street_id": "tenri-honten",
            "key": "v1",
        },
    )
    assert voucher.status_code == 201, voucher.json()
    for number, key in ((voucher.json()["vouchers"][0]["number"], "r1"), (cashed.number, "r2")):
        redeemed = c.post(
            "/api/v1/terminal/voucher-redemptions",
            headers=bearer(keys["tenri-shop2"]),
            json={"number": number, "key": key},
        )
        assert redeemed.status_code == 201, redeemed.json()
    clock.now = at(8)
    refund = c.post(
        "/api/v1/terminal/refunds",
        headers=bearer(keys["tenri-shop1"]),
        json={"payment_id": paid_tenri, "points": 200, "key": "rf1"},
    )
    assert refund.status_code == 201, refund.json()
    # online: hold 1,000, capture 800 (fee 60), refund 300 (23 of the fee back)
    order = online.authorize(
        uow,
        shop_id="tenri-furusato",
        service_id="F-1",
        municipality=TENRI,
        points=1000,
        expires_in_seconds=3600,
        key="o1",
    )
    captured = online.capture(
        uow,
        shop_id="tenri-furusato",
        authorization_id=order.authorization_id,
        key="cap1",
        points=800,
    )
    assert captured.fee == 60
    online.refund(
        uow, shop_id="tenri-furusato", capture_id=str(captured.capture_id), points=300, key="or1"
    )
    clock.now = at(10)
    # the 300 receipt voucher lapses (breakage); the unused 500 voucher goes back to the wallet
    assert expire_vouchers(uow, as_of=date(2026, 11, 10)).points == 800
    clock.now = at(26)
    assert expire_points(uow, as_of=date(2026, 11, 26)).points == 500
    # the last second of November (Tokyo) is November; the first of December is not
    clock.now = at(30, 23, minute=59, second=59)
    _pay(c, keys["oguni-yu"], cards[2], OGUNI, 100, "p6")
    clock.now = at(1, 0, month=12)
    _pay(c, keys["arts-maebashi"], cards[0], MAEBASHI, 50, "p7")
    return {"keys": keys, "paid_tenri": paid_tenri}


EXPECTED_NOVEMBER = {
    # (municipality, party kind, party id): (amount, payable, via association, transfers)
    (MAEBASHI, "partner", "jal"): (1000, 1000, 0, 1),
    (MAEBASHI, "shop", "arts-maebashi"): (600, 600, 0, 1),
    (MAEBASHI, "shop", "tenri-shop1"): (400, 400, 0, 1),
    (TENRI, "partner", "docomo"): (2000, 2000, 0, 1),
    (TENRI, "shop", "tenri-shop1"): (500, 500, 0, 2),  # 700 − refund 200
    # 300 − cancelled 300, + a 500 voucher, + a 1,200 receipt voucher via the association
    (TENRI, "shop", "tenri-shop2"): (1700, 500, 1200, 4),
    (TENRI, "shop", "tenri-furusato"): (463, 463, 0, 4),  # 800 − 60 − 300 + 23
    (TENRI, "association", "tenri-honten"): (0, 1200, 0, 2),
    (TENRI, "operating_share", TENRI): (37, 37, 0, 2),  # 60 − 23
    (TENRI, "breakage", "voucher"): (300, 300, 0, 1),
    (OGUNI, "partner", "jal"): (3000, 3000, 0, 1),  # the 300 premium is not the partner's
    (OGUNI, "shop", "oguni-yu"): (1100, 1100, 0, 2),
    (OGUNI, "breakage", "budget"): (500, 500, 0, 1),
}


def _statements(database: Database, month: str) -> dict[tuple[str, str, str], Any]:
    return {
        (s.municipality, s.party_kind, s.party_id): s
        for s in statements.list_statements(database.uow(), month=month)
    }


def _transfers(database: Database) -> int:
    return database.count("ledger_transfers")


def test_close_november_to_the_yen_and_reconcile(
    month: dict[str, Any], database: Database, card_client: TestClient
) -> None:
    uow = database.uow()
    # not before the month has ended (Tokyo time)
    with pytest.raises(MyKeyError) as refused:
        statements.close_month(uow, month="2026-11", now=at(30, 23, minute=59))
    assert refused.value.code == "month_not_ended"
    assert _statements(database, "2026-11") == {}
    database.clock.now = at(2, 9, month=12)
    report = statements.close_month(uow, month="2026-11")
    assert report.status == "closed" and report.statements == len(EXPECTED_NOVEMBER)
    found = _statements(database, "2026-11")
    got = {k: (s.amount, s.payable, s.via_association, s.transfers) for k, s in found.items()}
    assert got == EXPECTED_NOVEMBER
    # the settlement transfers moved each month's movement into that period's account, so
    # the party accounts hold only what came after the cut-off (research I10)
    expected_after = {("102016", "arts-maebashi"): 50}
    for (code, kind, party), s in found.items():
        if kind != "shop":
            continue
        shop = ledger.find_account(uow, ledger=code, kind=AccountKind.SHOP, owner=party)
        assert ledger.balance(uow, shop.id).posted == expected_after.get((code, party), 0)
        if s.amount:
            period = ledger.find_account(
                uow, ledger=code, kind=AccountKind.SETTLEMENT, owner=f"shop:{party}:2026-11"
            )
            assert ledger.balance(uow, period.id).posted == s.amount
    jal = ledger.find_account(uow, ledger=OGUNI, kind=AccountKind.PARTNER, owner="jal")
    assert ledger.balance(uow, jal.id).posted == 0  # invoiced: the receivable left the account
    # the statement lists its transfers and its days
    shop2 = statements.get_statement(uow, found[(TENRI, "shop", "tenri-shop2")].id)
    covered = list(statements.covered_transfers(uow, shop2))
    assert sorted((t.kind, t.amount) for t in covered) == [
        ("reverse", -300),
        ("spend", 300),
        ("voucher_redeem", 500),
        ("voucher_redeem", 1200),
    ]
    assert sum(t.amount for t in covered) == 1700
    assert [(d.day, shop2.day_amount(d)) for d in shop2.days] == [
        (date(2026, 11, 6), 0),
        (date(2026, 11, 7), 1700),
    ]
    oguni = found[(OGUNI, "shop", "oguni-yu")]
    assert [d.day for d in statements.get_statement(uow, oguni.id).days] == [
        date(2026, 11, 6),
        date(2026, 11, 30),
    ]
    # reconciliation
    result = statements.check_month(uow, month="2026-11")
    assert result.ok, result.differences
    # closing again changes nothing
    before = _transfers(database)
    again = statements.close_month(uow, month="2026-11")
    assert again.status == "already_closed" and again.transfers == 0
    assert _transfers(database) == before
    assert _statements(database, "2026-11").keys() == found.keys()


def test_a_late_refund_lands_in_the_next_month(
    month: dict[str, Any], database: Database, card_client: TestClient
) -> None:
    uow = database.uow()
    database.clock.now = at(2, 9, month=12)
    statements.close_month(uow, month="2026-11")
    database.clock.now = at(3, month=12)
    late = card_client.post(
        "/api/v1/terminal/refunds",
        headers=bearer(month["keys"]["tenri-shop1"]),
        json={"payment_id": month["paid_tenri"], "points": 100, "key": "rf-late"},
    )
    assert late.status_code == 201, late.json()
    # November stays as it was
    assert statements.check_month(uow, month="2026-11").ok
    assert _statements(database, "2026-11")[(TENRI, "shop", "tenri-shop1")].amount == 500
    database.clock.now = at(1, 0, month=13, minute=5)
    statements.close_month(uow, month="2026-12")
    december = _statements(database, "2026-12")
    assert {k: s.amount for k, s in december.items()} == {
        (MAEBASHI, "shop", "arts-maebashi"): 50,
        (TENRI, "shop", "tenri-shop1"): -100,  # the shop owes the city back
    }
    shop1 = ledger.find_account(uow, ledger=TENRI, kind=AccountKind.SHOP, owner="tenri-shop1")
    assert ledger.balance(uow, shop1.id).posted == 0
    assert statements.check_month(uow, month="2026-12").ok


def test_check_names_a_backdated_transfer_and_a_tampered_row(
    month: dict[str, Any], database: Database
) -> None:
    uow = database.uow()
    database.clock.now = at(2, 9, month=12)
    statements.close_month(uow, month="2026-11")
    # a transfer booked into the closed month after the close (a wrong clock)
    database.clock.now = at(20)
    budget = ledger.find_account(uow, ledger=OGUNI, kind=AccountKind.BUDGET, owner=OGUNI)
    shop = ledger.find_account(uow, ledger=OGUNI, kind=AccountKind.SHOP, owner="oguni-yu")
    ledger.transfer(uow, debit=budget.id, credit=shop.id, amount=7, kind="spend", actor="x")
    database.clock.now = at(3, month=12)
    result = statements.check_month(uow, month="2026-11")
    assert not result.ok
    amounts = [d for d in result.differences if d.what == "amount"]
    assert amounts == [statements.Difference(OGUNI, "shop:oguni-yu", "amount", 1107, 1100)]
    assert any(d.party == "ledger" and d.municipality == OGUNI for d in result.differences)
    # a statement row changed behind the system's back
    with database.engine.begin() as conn:
        if database.kind == "postgres":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            conn.execute(text("DROP TRIGGER settlement_statements_no_update"))
        conn.execute(
            text(
                "UPDATE settlement_statements SET amount = 999, payable = 999"
                " WHERE party_kind = 'partner' AND party_id = 'docomo'"
            )
        )
    result = statements.check_month(uow, month="2026-11")
    assert statements.Difference(TENRI, "partner:docomo", "amount", 2000, 999) in (
        result.differences
    )


def test_statements_cannot_be_changed(month: dict[str, Any], database: Database) -> None:
    database.clock.now = at(2, 9, month=12)
    statements.close_month(database.uow(), month="2026-11")
    with pytest.raises(Exception, match="append-only"), database.engine.begin() as conn:
        conn.execute(text("UPDATE settlement_statements SET amount = 1"))


def test_every_statement_endpoint_shows_each_role_only_its_own(
    month: dict[str, Any], database: Database, card_client: TestClient
) -> None:
    c, keys = card_client, month["keys"]
    database.clock.now = at(2, 9, month=12)
    # only the council closes
    assert (
        c.post(
            "/api/v1/settlements/2026-11/close", headers=bearer(keys["staff:" + TENRI])
        ).status_code
        == 403
    )
    closed = c.post("/api/v1/settlements/2026-11/close", headers=bearer(keys["operator"]))
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    again = c.post("/api/v1/settlements/2026-11/close", headers=bearer(keys["operator"]))
    assert again.json()["status"] == "already_closed"
    early = c.post("/api/v1/settlements/2026-12/close", headers=bearer(keys["operator"]))
    assert early.status_code == 409 and early.json()["code"] == "month_not_ended"

    def ids(url: str, key: str, status: int = 200) -> set[tuple[str, str, str]]:
        got = c.get(url, params={"month": "2026-11"}, headers=bearer(keys[key]))
        assert got.status_code == status, (url, key, got.json())
        if status != 200:
            return set()
        return {(s["municipality"], s["party_kind"], s["party_id"]) for s in got.json()}

    assert ids("/api/v1/settlements", "operator") == set(EXPECTED_NOVEMBER)
    ids("/api/v1/settlements", "staff:" + TENRI, 403)
    tenri = {k for k in EXPECTED_NOVEMBER if k[0] == TENRI}
    assert ids(f"/api/v1/municipalities/{TENRI}/settlements", "staff:" + TENRI) == tenri
    ids(f"/api/v1/municipalities/{TENRI}/settlements", "staff:" + MAEBASHI, 404)
    assert ids("/api/v1/partners/jal/settlements", "jal") == {
        (MAEBASHI, "partner", "jal"),
        (OGUNI, "partner", "jal"),
    }
    ids("/api/v1/partners/jal/settlements", "docomo", 404)
    assert ids("/api/v1/shops/tenri-shop1/settlements", "tenri-shop1") == {
        (MAEBASHI, "shop", "tenri-shop1"),
        (TENRI, "shop", "tenri-shop1"),
    }
    assert ids("/api/v1/shops/tenri-shop1/settlements", "staff:" + MAEBASHI) == {
        (MAEBASHI, "shop", "tenri-shop1")
    }
    ids("/api/v1/shops/tenri-shop1/settlements", "tenri-shop2", 404)
    ids("/api/v1/shops/tenri-shop1/settlements", "staff:" + OGUNI, 404)
    ids("/api/v1/shops/tenri-shop1/settlements", "jal", 403)

    listed = c.get(
        "/api/v1/settlements", params={"month": "2026-11"}, headers=bearer(keys["operator"])
    ).json()
    by_party = {(s["municipality"], s["party_kind"], s["party_id"]): s["id"] for s in listed}
    shop1 = by_party[(TENRI, "shop", "tenri-shop1")]
    docomo = by_party[(TENRI, "partner", "docomo")]
    readers = {
        shop1: {"operator", "staff:" + TENRI, "tenri-shop1"},
        docomo: {"operator", "staff:" + TENRI, "docomo"},
    }
    everyone = ["operator", "jal", "docomo", "tenri-shop1", "tenri-shop2"]
    everyone += ["staff:" + TENRI, "staff:" + MAEBASHI]
    for sid, allowed in readers.items():
        for key in everyone:
            for suffix in ("", ".csv", ".pdf"):
                got = c.get(f"/api/v1/settlements/{sid}{suffix}", headers=bearer(keys[key]))
                assert got.status_code == (200 if key in allowed else 404), (sid, key, suffix)
    detail = c.get(f"/api/v1/settlements/{shop1}", headers=bearer(keys["tenri-shop1"])).json()
    assert detail["amount"] == 500 and detail["transfers"] == 2
    assert [(t["kind"], t["amount"]) for t in detail["covered"]] == [
        ("spend", 700),
        ("refund", -200),
    ]
    assert [(d["day"], d["amount"]) for d in detail["days"]] == [
        ("2026-11-06", 700),
        ("2026-11-08", -200),
    ]
    sheet = c.get(f"/api/v1/settlements/{shop1}.csv", headers=bearer(keys["tenri-shop1"]))
    assert sheet.headers["content-type"].startswith("text/csv")
    assert sheet.content.startswith("\ufeff".encode())
    lines = sheet.content.decode("utf-8-sig").split("\r\n")
    assert lines[0].startswith("精算月,自治体コード,相手区分,相手,日付,件数")
    assert lines[1:4] == [
        "2026-11,292044,店舗・施設,tenri-shop1,2026-11-06,1,700,0,700",
        "2026-11,292044,店舗・施設,tenri-shop1,2026-11-08,1,0,200,-200",
        "2026-11,292044,店舗・施設,tenri-shop1,合計,2,700,200,500",
    ]
    # the same statements as PDF: the tea house on the street was partly paid by the association
    tea = next(
        s["id"]
        for s in c.get(
            f"/api/v1/municipalities/{TENRI}/settlements",
            params={"month": "2026-11"},
            headers=bearer(keys["staff:" + TENRI]),
        ).json()
        if s["party_id"] == "tenri-shop2"
    )
    printed = c.get(f"/api/v1/settlements/{tea}.pdf", headers=bearer(keys["tenri-shop2"]))
    assert printed.headers["content-type"] == "application/pdf"
    [page] = read_pdf(printed.content)
    for seen in (
        "精算明細書",
        "2026年11月分",
        "奈良県天理市（292044）",
        "店舗・施設：本通りの茶店（tenri-shop2）",
        "2026/11/07",
        "1,700 円",  # the day's and the month's amount
        "うち商工会経由",
        "1,200 円",
        "お支払額",
        "500 円",
    ):
        assert seen in page.text, (seen, page.text)
    partner = c.get(f"/api/v1/settlements/{readers_jal(c, keys)}.pdf", headers=bearer(keys["jal"]))
    assert "ご請求額" in read_pdf(partner.content)[0].text
    assert (
        c.get("/api/v1/settlements/not-a-uuid", headers=bearer(keys["operator"])).status_code == 404
    )
    bad = c.get(
        "/api/v1/settlements", params={"month": "2026-13"}, headers=bearer(keys["operator"])
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_month"


def readers_jal(c: TestClient, keys: dict[str, str]) -> str:
    """The id of a statement of partner jal in November."""
    got = c.get(
        "/api/v1/partners/jal/settlements", params={"month": "2026-11"}, headers=bearer(keys["jal"])
    )
    return str(got.json()[0]["id"])


def test_a_closed_month_pays_its_shops_by_a_zengin_file(
    month: dict[str, Any], database: Database, card_client: TestClient
) -> None:
    c, keys = card_client, month["keys"]
    tenri = bearer(keys["staff:" + TENRI])
    url = f"/api/v1/municipalities/{TENRI}/settlements/2026-11/zengin"
    query = {"transfer_date": "2026-12-10"}
    database.clock.now = at(2, 9, month=12)
    early = c.get(url, params=query, headers=tenri)
    assert (early.status_code, early.json()["code"]) == (409, "month_not_closed")
    assert c.post("/api/v1/settlements/2026-11/close", headers=bearer(keys["operator"])).is_success
    paying = {
        "requester_code": "0000012345",
        "requester_name": "テンリシ",
        "bank_code": "0162",
        "branch_code": "301",
        "deposit_type": 1,
        "account_number": "1234567",
    }
    assert c.put(f"/api/v1/municipalities/{TENRI}/bank-account", headers=tenri, json=paying)
    shops_paid = ("tenri-shop1", "tenri-shop2", "tenri-furusato")
    for n, shop in enumerate(shops_paid[:2]):
        account = {
            "bank_code": "0001",
            "branch_code": f"{100 + n}",
            "deposit_type": 1,
            "account_number": f"765432{n}",
            "holder_name": f"テンリショウテン{n}",
        }
        put = c.put(f"/api/v1/shops/{shop}/payout-account", headers=tenri, json=account)
        assert put.status_code == 200, put.json()
    missing = c.get(url, params=query, headers=tenri)
    assert (missing.status_code, missing.json()["code"]) == (409, "no_payout_account")
    assert missing.json()["details"]["shops"] == ["tenri-furusato"]
    account = {
        "bank_code": "0005",
        "branch_code": "200",
        "deposit_type": 2,
        "account_number": "0000042",
        "holder_name": "テンリフルサトビン",
    }
    assert c.put("/api/v1/shops/tenri-furusato/payout-account", headers=tenri, json=account)

    got = c.get(url, params=query, headers=tenri)
    assert got.status_code == 200, got.text
    data = got.content
    records = data.split(b"\r\n")
    assert records[-1] == b"" and all(len(r) == 120 for r in records[:-1])
    parsed = zengin.parse(data)
    # each shop gets its payable: what it took less what the association already paid it
    payable = {shop: EXPECTED_NOVEMBER[(TENRI, "shop", shop)][1] for shop in shops_paid}
    assert sorted(line.amount for line in parsed.lines) == sorted(payable.values())
    assert (parsed.count, parsed.total) == (3, sum(payable.values()))
    assert (got.headers["X-MyKey-Transfers"], got.headers["X-MyKey-Total-Yen"]) == ("3", "1463")
    assert parsed.transfer_date == "1210" and parsed.payer.requester_code == "0000012345"
    assert {line.customer_code1 for line in parsed.lines} == {"0000202611"}
    # another town's staff and a shop's terminal get nothing
    other = c.get(url, params=query, headers=bearer(keys["staff:" + MAEBASHI]))
    assert other.status_code == 404
    shop_key = c.get(url, params=query, headers=bearer(keys["tenri-shop1"]))
    assert shop_key.status_code == 403
    bad_day = c.get(url, params={"transfer_date": "12/10"}, headers=tenri)
    assert bad_day.status_code == 422
