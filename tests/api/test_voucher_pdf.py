"""Printable vouchers (issue #5, R6.2): the PDF is read back as a person and a scanner would
(text, EAN-13 and QR), prints are counted and reprints marked, and only the issuing shop's
terminals and the owner may print (HTTP, SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from mykey.db import tokyo_date
from mykey.identity.keys import create_key
from mykey.identity.simulator import SimulatedCard
from mykey.points.vouchers import check_digit
from tests.api.conftest import PASSWORD, bearer
from tests.api.test_counter import MAEBASHI, TENRI, _resident
from tests.api.test_vouchers import _issue, _redeem, shops  # noqa: F401 -- shops is a fixture
from tests.conftest import Database
from tests.pdfs import read_pdf


def _pdf(c: TestClient, token: str, number: str) -> Any:
    return c.get(f"/api/v1/vouchers/{number}.pdf", headers=bearer(token))


def _prints(number: str, database: Database) -> int:
    from mykey.points.models import Voucher

    uow = database.uow()
    return uow.run(lambda: uow.session.get(Voucher, number).prints)  # type: ignore[union-attr]


def _login(c: TestClient, mykey_id: str) -> str:
    done = c.post("/api/v1/sessions", json={"mykey_id": mykey_id, "password": PASSWORD})
    assert done.status_code == 201, done.json()
    return str(done.json()["token"])


def test_a_printed_voucher_reads_back_and_scans_to_its_number(
    card_client: TestClient,
    shops: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    c = card_client
    made = _issue(
        c,
        shops["tenri-shop1"],
        cards[0],
        municipality=TENRI,
        points=800,
        street_id="tenri-honten",
        key="p-1",
    )
    assert made.status_code == 201, made.json()
    [voucher] = made.json()["vouchers"]
    number = voucher["number"]

    first = _pdf(c, shops["tenri-shop1"], number)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/pdf"
    assert first.headers["content-disposition"] == f'inline; filename="voucher-{number}.pdf"'
    [page] = read_pdf(first.content)
    today = tokyo_date(database.clock.now)
    last = today.fromisoformat(voucher["valid_until"])
    for seen in (
        "ポイント券",
        "天理市ポイント",
        "800 ポイント",
        f"発券番号：{number}",
        f"発行日：{today:%Y/%m/%d}",
        f"{today.year}年{today.month}月{today.day}日～{last.year}年{last.month}月{last.day}日",
        "★天理本通り商店街の各店舗でご利用頂けます。",
        "奈良県天理市",
        "＜発行認印＞",
        "＜利用店舗印＞",
    ):
        assert seen in page.text, (seen, page.text)
    assert "再発行" not in page.text and "REPRINT" not in page.text
    assert page.ean13 == [number]
    assert page.qr == [number]
    assert _prints(number, database) == 1

    # the second print is marked as a reprint with its copy number; the third too
    second = read_pdf(_pdf(c, shops["tenri-shop1"], number).content)[0]
    assert "再発行 第2版 / REPRINT copy 2" in second.text
    assert second.ean13 == [number] and second.qr == [number]
    assert _prints(number, database) == 2
    third = read_pdf(_pdf(c, shops["tenri-shop1"], number).content)[0]
    assert "REPRINT copy 3" in third.text

    # a redeemed voucher still prints (counted), marked void
    assert _redeem(c, shops["tenri-shop2"], number, "pr-1").status_code == 201
    used = read_pdf(_pdf(c, shops["tenri-shop1"], number).content)[0]
    assert "使用済み / REDEEMED" in used.text and "REPRINT copy 4" in used.text


def test_who_may_print(
    card_client: TestClient,
    shops: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    c = card_client
    made = _issue(c, shops["tenri-shop1"], cards[0], municipality=MAEBASHI, points=500, key="w-1")
    number = made.json()["vouchers"][0]["number"]

    # the resident it was issued to, from My Page
    mine = _pdf(c, _login(c, "MY111111"), number)
    assert mine.status_code == 200
    assert read_pdf(mine.content)[0].ean13 == [number]

    # another shop's terminal (even one on the same street), another resident, a staff key:
    # the same 404 as a number never issued, and nothing is counted
    _resident(c, cards[1], "MY222222")
    staff = create_key(database.uow(), role="operator", label="council")[0]
    for token in (shops["tenri-shop2"], shops["arts-maebashi"], _login(c, "MY222222"), staff):
        other = _pdf(c, token, number)
        assert other.status_code == 404, other.text
        assert other.json()["code"] == "unknown_voucher"
    assert _prints(number, database) == 1

    unknown = "490123456789" + check_digit("490123456789")
    missing = _pdf(c, shops["tenri-shop1"], unknown)
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_voucher"
    typo = number[:12] + str((int(number[12]) + 1) % 10)
    mistyped = _pdf(c, shops["tenri-shop1"], typo)
    assert mistyped.status_code == 422 and mistyped.json()["code"] == "invalid_voucher_number"
    assert c.get(f"/api/v1/vouchers/{number}.pdf").status_code == 401
    bad = _pdf(c, "mk_nokey_nosecret", number)
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_api_key"
    assert _prints(number, database) == 1


def test_a_batch_prints_one_certificate_per_voucher(
    card_client: TestClient,
    shops: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    c = card_client
    made = _issue(
        c,
        shops["tenri-shop1"],
        cards[0],
        municipality=MAEBASHI,
        points=2500,
        denomination=500,
        key="b-1",
    )
    assert made.status_code == 201, made.json()
    body = made.json()
    numbers = [v["number"] for v in body["vouchers"]]
    url = f"/api/v1/vouchers/batches/{body['transaction_id']}.pdf"

    got = c.get(url, headers=bearer(shops["tenri-shop1"]))
    assert got.status_code == 200, got.text
    pages = read_pdf(got.content)
    assert len(pages) == 2  # three to an A4 page
    assert [n for p in pages for n in p.ean13] == numbers
    assert [n for p in pages for n in p.qr] == numbers
    text = "".join(p.text for p in pages)
    assert text.count("500 ポイント") == 5 and "REPRINT" not in text
    assert all(_prints(n, database) == 1 for n in numbers)

    again = read_pdf(c.get(url, headers=bearer(_login(c, "MY111111"))).content)
    assert "".join(p.text for p in again).count("REPRINT copy 2") == 5

    for token in (shops["tenri-shop2"], shops["arts-maebashi"]):
        refused = c.get(url, headers=bearer(token))
        assert refused.status_code == 404 and refused.json()["code"] == "unknown_voucher_batch"
    unknown = c.get(
        "/api/v1/vouchers/batches/00000000-0000-0000-0000-000000000000.pdf",
        headers=bearer(shops["tenri-shop1"]),
    )
    assert unknown.status_code == 404
    garbled = c.get("/api/v1/vouchers/batches/not-a-uuid.pdf", headers=bearer(shops["tenri-shop1"]))
    assert garbled.status_code == 422 and garbled.json()["code"] == "invalid_batch_id"
    assert all(_prints(n, database) == 2 for n in numbers)


def test_a_head_request_is_not_a_print(
    card_client: TestClient,
    shops: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    """HEAD of a voucher's or an issue's PDF answers as GET does (status, type, no body) but
    counts nothing: the first real print afterwards is copy 1, without a reprint mark."""
    c = card_client
    made = _issue(
        c,
        shops["tenri-shop1"],
        cards[0],
        municipality=MAEBASHI,
        points=1000,
        denomination=500,
        key="h-1",
    )
    assert made.status_code == 201, made.json()
    numbers = [v["number"] for v in made.json()["vouchers"]]
    batch = f"/api/v1/vouchers/batches/{made.json()['transaction_id']}.pdf"
    terminal = bearer(shops["tenri-shop1"])
    for url in (batch, f"/api/v1/vouchers/{numbers[0]}.pdf", batch):
        head = c.head(url, headers=terminal)
        assert head.status_code == 200, head.text
        assert head.headers["content-type"] == "application/pdf" and head.content == b""
    assert [_prints(n, database) for n in numbers] == [0, 0]
    first = read_pdf(c.get(batch, headers=terminal).content)
    assert "REPRINT" not in "".join(p.text for p in first)
    assert [_prints(n, database) for n in numbers] == [1, 1]
    mine = c.head(f"/api/v1/vouchers/{numbers[0]}.pdf", headers=bearer(_login(c, "MY111111")))
    assert mine.status_code == 200
    assert [_prints(n, database) for n in numbers] == [1, 1]


def test_a_head_of_a_print_counts_nothing(
    card_client: TestClient,
    shops: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    """HEAD answers as GET (issue #13, item 18), but a link checker's or a proxy's HEAD is no
    print: it used to count one, so the clerk's first print came out marked REPRINT."""
    c = card_client
    made = _issue(c, shops["tenri-shop1"], cards[0], municipality=MAEBASHI, points=500, key="h-1")
    number = made.json()["vouchers"][0]["number"]
    batch = made.json()["transaction_id"]
    terminal = bearer(shops["tenri-shop1"])
    for path in (f"/api/v1/vouchers/{number}.pdf", f"/api/v1/vouchers/batches/{batch}.pdf"):
        looked = c.head(path, headers=terminal)
        assert looked.status_code == 200 and looked.content == b"", path
        assert looked.headers["content-type"] == "application/pdf", path
    assert c.head(f"/api/v1/vouchers/{number}.pdf").status_code == 401  # still checked
    assert _prints(number, database) == 0
    first = read_pdf(_pdf(c, shops["tenri-shop1"], number).content)[0]
    assert "再発行" not in first.text and "REPRINT" not in first.text
    assert _prints(number, database) == 1
