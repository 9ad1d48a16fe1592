"""A day of spending points (issue #5, R6): the Arts Maebashi museum in the morning, Tenri's
shopping street in the afternoon, an online order in the evening, expiry at night; over HTTP
with simulator cards (vouchers printed and read back), on both engines. After every step the
resident's balances, the shops' accounts and the ledger's own check are right."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mykey import ledger
from mykey.demo import MUNICIPALITIES
from mykey.identity.keys import create_key
from mykey.identity.simulator import SimulatedCard
from mykey.ledger import AccountKind
from mykey.municipalities.registry import upsert
from mykey.points.expiry import DailyJobs
from mykey.points.vouchers import association_owner
from tests.api.conftest import PASSWORD, bearer, proof
from tests.api.test_online import Shop as OnlineService
from tests.conftest import Database
from tests.pdfs import read_pdf

MAEBASHI, TENRI = "102016", "292044"
ALICE, BOB = "MY111111", "MY222222"
MYKEY = Path(sys.executable).with_name("mykey")


class Day:
    """The counters of the day and what the test expects the ledger to say."""

    def __init__(self, c: TestClient, database: Database, cards: list[SimulatedCard]) -> None:
        self.c, self.database = c, database
        self.alice, self.bob = cards[0], cards[1]
        uow = database.uow()
        upsert(uow, MUNICIPALITIES)
        self.operator = bearer(create_key(uow, role="operator", label="council")[0])
        self.staff = {
            code: bearer(
                create_key(uow, role="municipality_staff", label=code, municipality=code)[0]
            )
            for code in (MAEBASHI, TENRI)
        }

    def put(self, path: str, headers: dict[str, str], **body: Any) -> None:
        done = self.c.put(path, headers=headers, json=body)
        assert done.status_code == 200, done.json()

    def post(self, path: str, headers: dict[str, str], **body: Any) -> Any:
        return self.c.post(path, headers=headers, json=body)

    def tap(self, terminal: dict[str, str], path: str, card: SimulatedCard, **body: Any) -> Any:
        """A terminal call that needs the resident's card at the counter (a fresh proof)."""
        return self.post(path, terminal, card_proof=proof(self.c, card), **body)

    def account(self, code: str, kind: AccountKind, owner: str) -> int:
        uow = self.database.uow()
        found = ledger.find_account(uow, ledger=code, kind=kind, owner=owner)
        return ledger.balance(uow, found.id).posted

    def wallets(self, who: str) -> dict[str, int]:
        uow = self.database.uow()
        out = {}
        for code in (MAEBASHI, TENRI):
            found = ledger.find_account(uow, ledger=code, kind=AccountKind.WALLET, owner=who)
            out[code] = ledger.balance(uow, found.id).available
        return out

    def checked(self, alice: dict[str, int], shops: dict[tuple[str, str], int]) -> None:
        assert self.wallets(ALICE) == alice
        for (code, shop), points in shops.items():
            assert self.account(code, AccountKind.SHOP, shop) == points, shop
        report = ledger.check(self.database.uow())
        assert report.ok, report.problems


@pytest.fixture
def day(card_client: TestClient, database: Database, cards: list[SimulatedCard]) -> Day:
    d = Day(card_client, database, cards)
    for code, name, usable in (
        (MAEBASHI, "前橋市ポイント", ["museum", "shop"]),
        (TENRI, "天理市ポイント", ["shop", "online"]),
    ):
        program = {"point_name": name, "usable_at": usable, "validity": {"budget": None}}
        d.put(f"/api/v1/municipalities/{code}/program", d.staff[code], **program)
    d.put(f"/api/v1/municipalities/{TENRI}/online-fee", d.staff[TENRI], online_fee_permille=50)
    d.put("/api/v1/streets/q-town", d.staff[MAEBASHI], name="前橋 Qの町", municipality=MAEBASHI)
    d.put("/api/v1/streets/tenri-hondori", d.staff[TENRI], name="天理本通り", municipality=TENRI)
    for shop_id, name, code, kind, street in (
        ("arts-maebashi", "アーツ前橋", MAEBASHI, "museum", None),
        ("q-town-1", "Qの町 文具店", MAEBASHI, "shop", "q-town"),
        ("tenri-books", "本通りの本屋", TENRI, "shop", "tenri-hondori"),
        ("tenri-tea", "本通りの茶店", TENRI, "shop", "tenri-hondori"),
        ("tenri-furusato", "天理ふるさと便", TENRI, "online", None),
    ):
        body = {"name": name, "municipality": code, "kind": kind, "accepts": [code]}
        d.put(f"/api/v1/shops/{shop_id}", d.staff[code], **body, street_id=street)
    for who, card in ((ALICE, d.alice), (BOB, d.bob)):
        made = d.post(
            "/api/v1/mykey-ids",
            {},
            card_proof=proof(d.c, card),
            password=PASSWORD,
            mykey_id=who,
        )
        assert made.status_code == 201, made.json()
    for code, who, points in ((MAEBASHI, ALICE, 3000), (TENRI, ALICE, 5000), (TENRI, BOB, 10)):
        granted = d.post(
            f"/api/v1/municipalities/{code}/grants",
            d.staff[code],
            mykey_id=who,
            points=points,
            reason="健康ウォーク",
            key=f"g-{code}-{who}",
        )
        assert granted.status_code == 201, granted.json()
    return d


def test_a_day_at_a_maebashi_museum_and_in_tenri(day: Day, database: Database) -> None:
    d = day
    uow = database.uow()
    museum, q_town, books, tea = (
        bearer(create_key(uow, role="terminal", label="レジ", provider_id=shop)[0])
        for shop in ("arts-maebashi", "q-town-1", "tenri-books", "tenri-tea")
    )
    d.checked({MAEBASHI: 3000, TENRI: 5000}, {})

    # --- morning, Arts Maebashi: the museum sees only the points it takes ---
    seen = d.tap(museum, "/api/v1/terminal/balances", d.alice)
    assert seen.status_code == 200, seen.json()
    assert [(b["municipality"], b["balance"]) for b in seen.json()["balances"]] == [
        (MAEBASHI, 3000)
    ]
    # admission 800; the answer is lost and the terminal retries: paid once
    paid = d.tap(museum, "/api/v1/terminal/payments", d.alice, municipality=MAEBASHI, points=800,
                 key="adm-1", receipt_ref="T-0001")  # fmt: skip
    assert paid.status_code == 201, paid.json()
    retry = d.tap(museum, "/api/v1/terminal/payments", d.alice, municipality=MAEBASHI, points=800,
                  key="adm-1", receipt_ref="T-0001")  # fmt: skip
    assert (
        retry.json()["replayed"] and retry.json()["transaction_id"] == paid.json()["transaction_id"]
    )
    assert retry.json()["balance"] == 2200
    d.checked({MAEBASHI: 2200, TENRI: 5000}, {(MAEBASHI, "arts-maebashi"): 800})

    # the catalogue (500) rung up by mistake, cancelled at once: the points come back
    shop = d.tap(museum, "/api/v1/terminal/payments", d.alice, municipality=MAEBASHI, points=500,
                 key="cat-1")  # fmt: skip
    assert shop.json()["balance"] == 1700
    cancel = f"/api/v1/terminal/payments/{shop.json()['transaction_id']}/cancellation"
    undone = d.post(cancel, museum, key="cat-1-cancel")
    assert undone.status_code == 201, undone.json()
    assert undone.json()["balance"] == 2200
    assert d.post(cancel, museum, key="cat-1-cancel").json()["replayed"]
    elsewhere = d.post(cancel, q_town, key="cat-1-other")
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (409, "wrong_shop")
    d.checked({MAEBASHI: 2200, TENRI: 5000}, {(MAEBASHI, "arts-maebashi"): 800})

    # 1,000 points as two 500-point vouchers for the museum shop's next visit
    issued = d.tap(museum, "/api/v1/terminal/vouchers", d.alice, municipality=MAEBASHI,
                   points=1000, denomination=500, key="v-1")  # fmt: skip
    assert issued.status_code == 201, issued.json()
    first, second = (v["number"] for v in issued.json()["vouchers"])
    assert issued.json()["balance"] == 1200
    d.checked({MAEBASHI: 1200, TENRI: 5000}, {(MAEBASHI, "arts-maebashi"): 800})
    assert d.account(MAEBASHI, AccountKind.VOUCHER_FLOAT, "vouchers") == 1000
    # printed at the counter: the page reads back and both codes scan to the numbers
    batch = f"/api/v1/vouchers/batches/{issued.json()['transaction_id']}.pdf"
    printed = d.c.get(batch, headers=museum)
    assert printed.status_code == 200, printed.text
    [page] = read_pdf(printed.content)
    for seen in ("ポイント券", "前橋市ポイント", "500 ポイント", "アーツ前橋", "群馬県前橋市"):
        assert seen in page.text, (seen, page.text)
    assert f"発券番号：{first}" in page.text and f"発券番号：{second}" in page.text
    assert (page.ean13, page.qr) == ([first, second], [first, second])
    assert "再発行" not in page.text
    again = read_pdf(d.c.get(f"/api/v1/vouchers/{first}.pdf", headers=museum).content)[0]
    assert "再発行 第2版 / REPRINT copy 2" in again.text and again.ean13 == [first]

    # the stationer in Q-town is the wrong shop; the museum takes it once
    wrong = d.post("/api/v1/terminal/voucher-redemptions", q_town, number=first, key="r-0")
    assert (wrong.status_code, wrong.json()["code"]) == (409, "voucher_wrong_shop")
    typo = first[:12] + str((int(first[12]) + 1) % 10)
    mistyped = d.post("/api/v1/terminal/voucher-redemptions", museum, number=typo, key="r-t")
    assert (mistyped.status_code, mistyped.json()["code"]) == (422, "invalid_voucher_number")
    taken = d.post("/api/v1/terminal/voucher-redemptions", museum, number=first, key="r-1")
    assert taken.status_code == 201, taken.json()
    twice = d.post("/api/v1/terminal/voucher-redemptions", museum, number=first, key="r-2")
    assert (twice.status_code, twice.json()["code"]) == (409, "voucher_already_redeemed")
    d.checked({MAEBASHI: 1200, TENRI: 5000}, {(MAEBASHI, "arts-maebashi"): 1300})

    # --- afternoon, Tenri: receipts at the bookshop turn into street vouchers ---
    tenri_budget = d.account(TENRI, AccountKind.BUDGET, TENRI)
    got: dict[int, list[str]] = {}
    for yen, points in ((999, 0), (1000, 100), (1099, 100), (50000, 5000), (50001, 5000)):
        made = d.post("/api/v1/terminal/receipt-vouchers", books, receipt_ref=f"B-{yen}", yen=yen,
                      key=f"rv-{yen}")  # fmt: skip
        if points == 0:
            assert (made.status_code, made.json()["code"]) == (409, "receipt_too_small")
            continue
        assert made.status_code == 201, made.json()
        assert [v["face_value"] for v in made.json()["vouchers"]] == [points]
        got[yen] = [v["number"] for v in made.json()["vouchers"]]
    same = d.post("/api/v1/terminal/receipt-vouchers", books, receipt_ref="B-1000", yen=1000,
                  key="rv-again")  # fmt: skip
    assert (same.status_code, same.json()["code"]) == (409, "receipt_already_used")
    # the city funds them: its budget paid out 10,200 points, the resident's wallet is untouched
    assert tenri_budget - d.account(TENRI, AccountKind.BUDGET, TENRI) == 10200
    d.checked({MAEBASHI: 1200, TENRI: 5000}, {(MAEBASHI, "arts-maebashi"): 1300})

    # the tea house on the same street takes the 5,000 voucher through the association
    cashed = d.post("/api/v1/terminal/voucher-redemptions", tea, number=got[50000][0], key="t-1")
    assert cashed.status_code == 201, cashed.json()
    association = d.account(TENRI, AccountKind.SETTLEMENT, association_owner("tenri-hondori"))
    assert association == 0  # paid by the city's float, paid out to the shop at once
    d.checked(
        {MAEBASHI: 1200, TENRI: 5000},
        {(MAEBASHI, "arts-maebashi"): 1300, (TENRI, "tenri-tea"): 5000},
    )

    # Alice pays 1,200 at the bookshop; Bob, with 10 points, is told he has too few
    book = d.tap(books, "/api/v1/terminal/payments", d.alice, municipality=TENRI, points=1200,
                 key="bk-1")  # fmt: skip
    assert book.json()["balance"] == 3800
    short = d.tap(books, "/api/v1/terminal/payments", d.bob, municipality=TENRI, points=500,
                  key="bk-2")  # fmt: skip
    assert (short.status_code, short.json()["code"]) == (409, "insufficient_points")
    d.checked(
        {MAEBASHI: 1200, TENRI: 3800},
        {
            (MAEBASHI, "arts-maebashi"): 1300,
            (TENRI, "tenri-tea"): 5000,
            (TENRI, "tenri-books"): 1200,
        },
    )

    # --- evening, online: Tenri's furusato shop holds 2,000, ships 1,500, refunds 500 ---
    issued_key = d.post("/api/v1/online/tenri-furusato/keys", d.operator, label="web")
    assert issued_key.status_code == 201, issued_key.json()
    service = OnlineService(d.c, database, issued_key.json())
    session = d.post("/api/v1/sessions", {}, mykey_id=ALICE, password=PASSWORD).json()["token"]
    linked = d.post("/api/v1/me/service-ids", bearer(session), service="tenri-furusato",
                    external_id="F-0001")  # fmt: skip
    assert linked.status_code == 201, linked.json()
    held = service.authorize(key="o-1", points=2000)
    assert held.status_code == 201, held.json()
    assert service.authorize(key="o-1", points=2000).json()["replayed"]
    order = held.json()["authorization_id"]
    captured = service.post(f"/authorizations/{order}/capture", points=1500, key="c-1")
    assert captured.json()["fee"] == 75  # 5 % of 1,500 is Tenri's operating share
    refunded = service.post(f"/captures/{captured.json()['capture_id']}/refunds", points=500,
                            key="rf-1")  # fmt: skip
    assert refunded.status_code == 201, refunded.json()
    fee = d.account(TENRI, AccountKind.SETTLEMENT, f"fee:{TENRI}")
    assert fee == 50  # 5 % of what stayed sold (1,000)
    d.checked(
        {MAEBASHI: 1200, TENRI: 2800},
        {
            (MAEBASHI, "arts-maebashi"): 1300,
            (TENRI, "tenri-tea"): 5000,
            (TENRI, "tenri-books"): 1200,
            (TENRI, "tenri-furusato"): 950,
        },
    )

    # --- three days later: the second museum voucher has lapsed and comes back ---
    database.clock.advance(days=3)
    jobs = DailyJobs(database.uow, database.clock)
    jobs.run_once()
    jobs.last_run = None  # the job again, as after a restart: nothing more happens
    jobs.run_once()
    looked = d.c.get(f"/api/v1/terminal/vouchers/{second}", headers=museum)
    assert looked.json()["status"] == "expired"
    assert d.wallets(ALICE) == {MAEBASHI: 1700, TENRI: 2800}
    # a month later the unused receipt vouchers (100 + 100 + 5,000) lapse to Tenri's breakage
    database.clock.advance(days=28)
    jobs.run_once()
    assert d.account(TENRI, AccountKind.EXPIRED, "expired") == 5200
    assert d.account(TENRI, AccountKind.VOUCHER_FLOAT, "vouchers") == 0
    d.checked(
        {MAEBASHI: 1700, TENRI: 2800},
        {
            (MAEBASHI, "arts-maebashi"): 1300,
            (TENRI, "tenri-tea"): 5000,
            (TENRI, "tenri-books"): 1200,
            (TENRI, "tenri-furusato"): 950,
        },
    )

    # --- after the fiscal year: the daily expiry on 1 April, twice, then `mykey ledger check` ---
    database.clock.now = datetime(2027, 3, 31, 15, 0, tzinfo=UTC)  # 2027-04-01 00:00 in Tokyo
    first_run = jobs.run_once()
    # Alice: Maebashi's grant (1,200 left) and the voucher that came back (500), Tenri's grant
    # (2,300 left) and the online refund (500); Bob's 10
    assert first_run is not None and (first_run.lots, first_run.points) == (5, 4510)
    jobs.last_run = None  # as after a restart on the same day: nothing more expires
    second_run = jobs.run_once()
    assert second_run is not None and (second_run.lots, second_run.points) == (0, 0)
    env = {**os.environ, "MYKEY_DATABASE_URL": database.url, "COLUMNS": "200"}

    def mykey(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MYKEY), *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    assert d.wallets(ALICE) == {MAEBASHI: 0, TENRI: 0}
    check = mykey("ledger", "check")
    assert check.returncode == 0, check.stderr
    assert "Ledger check passed" in check.stdout
