"""Ranking prizes as vouchers over HTTP (R4.5, issue #13 item 3): staff award prize vouchers,
see the award's winners, download one PDF per winner and a ZIP of all; the winner prints
their own and a street shop takes one once (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import zipfile

from fastapi.testclient import TestClient

from mykey import ledger
from mykey.identity.keys import create_key
from mykey.identity.simulator import SimulatedCard
from tests.api.conftest import bearer
from tests.api.test_points import OGUNI, PROGRAM, resident, staff  # noqa: F401 -- fixture
from tests.conftest import Database
from tests.pdfs import read_pdf

WALK = PROGRAM | {
    "rules": [{"activity": "health_walk", "name": "健康ウォークラリー", "points": 500}],
    "usable_at": ["shop"],
    "annual_budget": 100_000,
}


def test_award_prize_vouchers_download_them_and_use_one(
    card_client: TestClient,
    staff: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    client = card_client
    oguni, tenri = bearer(staff["oguni"]), bearer(staff["tenri"])
    put = client.put(f"/api/v1/municipalities/{OGUNI}/program", headers=oguni, json=WALK)
    assert put.status_code == 200, put.json()
    street = {"name": "小国ゆうステーション通り", "municipality": OGUNI}
    assert client.put("/api/v1/streets/oguni-st", headers=oguni, json=street).status_code == 200
    for shop_id, name, on_street in (
        ("oguni-1", "駄菓子屋", "oguni-st"),
        ("oguni-2", "湯屋", None),
    ):
        shop = {
            "name": name,
            "municipality": OGUNI,
            "kind": "shop",
            "accepts": [OGUNI],
            "street_id": on_street,
        }
        assert client.put(f"/api/v1/shops/{shop_id}", headers=oguni, json=shop).status_code == 200
    me = bearer(resident(client, cards[0]))
    for n in range(3):
        walked = client.post(
            f"/api/v1/municipalities/{OGUNI}/grants",
            headers=oguni,
            json={
                "mykey_id": "MY123456",
                "activity": "health_walk",
                "reason": "歩",
                "key": f"w{n}",
            },
        )
        assert walked.status_code == 201, walked.json()

    awards = f"/api/v1/municipalities/{OGUNI}/rankings/awards"
    prize = {"count": 10, "face_value": 500, "valid_days": 60, "street_id": "oguni-st"}
    body = {
        "activity": "health_walk",
        "from": "2026-04-01",
        "to": "2027-03-31",
        "top": 200,
        "minimum": 1500,
        "vouchers": prize,
        "reason": "ウォーキング上位者",
        "key": "walk-2026",
    }
    # bad prizes are refused and change nothing
    for bad, code in (
        ({"count": 0}, "invalid_count"),
        ({"street_id": None}, "invalid_voucher_place"),
        ({"street_id": "nowhere"}, "unknown_street"),
    ):
        refused = client.post(awards, headers=oguni, json=body | {"vouchers": prize | bad})
        assert refused.json()["code"] == code, refused.json()
        assert refused.status_code in (404, 422)
    assert client.get(awards, headers=oguni).json() == []
    assert client.post(awards, headers=tenri, json=body).json()["code"] == "forbidden"

    awarded = client.post(awards, headers=oguni, json=body)
    assert awarded.status_code == 200, awarded.json()
    done = awarded.json()
    assert (done["granted"], done["points"], done["vouchers"]["count"]) == (1, 0, 10)
    [winner] = done["outcomes"]
    assert winner["mykey_id"] == "MY123456" and len(winner["vouchers"]) == 10
    again = client.post(awards, headers=oguni, json=body).json()
    assert (again["granted"], again["already"]) == (0, 1)
    assert again["outcomes"][0]["vouchers"] == winner["vouchers"]
    # the winner's points did not move: the prize is paper, paid from the budget
    holdings = client.get("/api/v1/me/points", headers=me).json()["holdings"]
    assert [(h["municipality"], h["balance"]) for h in holdings] == [(OGUNI, 1500)]

    award = f"{awards}/{done['award_id']}"
    view = client.get(award, headers=oguni).json()
    assert view["from"] == "2026-04-01" and view["vouchers"]["street_id"] == "oguni-st"
    assert [(w["rank"], w["mykey_id"], w["vouchers"]) for w in view["winners"]] == [
        (1, "MY123456", 10)
    ]
    assert [a["award_id"] for a in client.get(awards, headers=oguni).json()] == [done["award_id"]]
    assert client.get(award, headers=tenri).json()["code"] == "forbidden"

    # a HEAD (a link checker, a proxy) answers as GET but is no print: nothing counted
    for looked in (f"{award}/vouchers/MY123456.pdf", f"{award}/vouchers.zip"):
        head = client.head(looked, headers=oguni)
        assert head.status_code == 200 and head.content == b"", looked
    pdf = client.get(f"{award}/vouchers/MY123456.pdf", headers=oguni)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    pages = read_pdf(pdf.content)
    assert "再発行" not in pages[0].text  # the first print
    assert [n for p in pages for n in p.ean13] == winner["vouchers"]
    assert "★小国ゆうステーション通りの各店舗でご利用頂けます。" in pages[0].text
    missing = client.get(f"{award}/vouchers/MY999999.pdf", headers=oguni)
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_prize")
    assert client.get(f"{award}/vouchers.zip", headers=tenri).json()["code"] == "forbidden"
    zipped = client.get(f"{award}/vouchers.zip", headers=oguni)
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(zipped.content))
    assert archive.namelist() == ["0001-MY123456.pdf"]
    reprint = read_pdf(archive.read("0001-MY123456.pdf"), dpi=72)
    assert "再発行 第2版" in reprint[0].text

    # the winner prints their own from My Page's session; a street shop takes one once
    mine = client.get(f"/api/v1/vouchers/batches/{winner['voucher_batch']}.pdf", headers=me)
    assert mine.status_code == 200 and mine.content.startswith(b"%PDF-")
    uow = database.uow()
    terminals = {
        shop: bearer(create_key(uow, role="terminal", label="レジ", provider_id=shop)[0])
        for shop in ("oguni-1", "oguni-2")
    }
    number = winner["vouchers"][0]
    redeem = "/api/v1/terminal/voucher-redemptions"
    off = client.post(redeem, headers=terminals["oguni-2"], json={"number": number, "key": "a"})
    assert off.json()["code"] == "voucher_wrong_shop"
    where = off.json()["details"]["valid_at"]
    assert where in off.json()["detail_en"] and where in off.json()["detail_ja"]  # both say where
    took = client.post(redeem, headers=terminals["oguni-1"], json={"number": number, "key": "b"})
    assert took.status_code == 201, took.json()
    twice = client.post(redeem, headers=terminals["oguni-1"], json={"number": number, "key": "c"})
    assert twice.json()["code"] == "voucher_already_redeemed"
    assert client.get(award, headers=oguni).json()["winners"][0]["redeemed"] == 1
    report = ledger.check(uow)
    assert report.ok, report.problems
