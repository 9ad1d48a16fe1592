"""The municipality console's rankings and awards over HTTP on both engines: staff choose prize
vouchers (how many, face value, where valid, days), see the award's winners and download one
PDF per winner and a ZIP of all; a resent form gives nothing twice; bad input and another
town's staff change nothing."""

from __future__ import annotations

import io
import re
import zipfile

from fastapi.testclient import TestClient

from mykey import ledger
from mykey.ledger import AccountKind
from mykey.points.grants import grant_points
from mykey.points.program_setup import Rule, set_up_program
from mykey.points.shops import set_shop, set_street
from tests.conftest import Database
from tests.pages.test_console_town import TOSHIMA, client, csrf, hidden, login  # noqa: F401
from tests.pdfs import read_pdf

WALKERS = {"AB123456": 4, "CD234567": 3, "EF345678": 1}


def _walks(database: Database) -> None:
    uow = database.uow()
    set_street(uow, street_id="otsuka", name="大塚商店街", municipality=TOSHIMA)
    for shop_id, name, street in (
        ("otsuka-1", "さくら書店", "otsuka"),
        ("otsuka-2", "大塚の茶屋", "otsuka"),
        ("museum", "郷土資料館", None),
    ):
        set_shop(
            uow,
            shop_id=shop_id,
            name=name,
            municipality=TOSHIMA,
            kind="shop",
            accepts=[TOSHIMA],
            street_id=street,
        )
    for who, walks in WALKERS.items():
        for n in range(walks):
            grant_points(
                uow,
                municipality=TOSHIMA,
                mykey_id=who,
                actor="staff:toshima",
                key=f"{who}-{n}",
                reason="ウォーク",
                activity="walk",
            )


def _float(database: Database) -> int:
    uow = database.uow()
    account = ledger.open_account(
        uow, ledger=TOSHIMA, kind=AccountKind.VOUCHER_FLOAT, owner="vouchers"
    )
    return ledger.balance(uow, account.id).posted


def test_staff_award_street_vouchers_and_download_them(
    client: TestClient,  # noqa: F811 -- the fixture
    database: Database,
) -> None:
    _walks(database)
    login(client, "toshima")
    query = "activity=walk&start=2026-04-01&end=2027-03-31&top=2&minimum=1000"
    page = client.get(f"/console/m/{TOSHIMA}/rankings?{query}")
    assert page.status_code == 200
    assert "上位者に賞品を付与する" in page.text and "大塚商店街" in page.text
    fields = {
        "csrf_token": csrf(page.text),
        "key": hidden(page.text, "key"),
        "activity": "walk",
        "start": "2026-04-01",
        "end": "2027-03-31",
        "top": "2",
        "minimum": "1000",
        "reason": "ウォーキング上位者",
        "points": "",
        "voucher_count": "10",
        "voucher_value": "500",
        "voucher_days": "90",
        "voucher_street": "otsuka",
    }

    # nothing to give, and a street with shops ticked too: refused by field, nothing given
    empty = client.post(
        f"/console/m/{TOSHIMA}/rankings/awards", data=fields | {"voucher_count": ""}
    )
    assert empty.status_code == 422 and 'id="points-error"' in empty.text
    assert "付与ポイントか、ポイント券の枚数を入力してください。" in empty.text
    both = client.post(
        f"/console/m/{TOSHIMA}/rankings/awards",
        content=urlencoded(fields | {"voucher_shops": ["otsuka-1", "museum"]}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert both.status_code == 422 and 'id="voucher_street-error"' in both.text
    assert 'value="otsuka-1" checked' in both.text  # what was ticked stays ticked
    assert database.count("ranking_awards") == 0 and database.count("vouchers") == 0

    done = client.post(f"/console/m/{TOSHIMA}/rankings/awards", data=fields, follow_redirects=False)
    assert done.status_code == 303, done.text
    award_page = done.headers["location"]
    assert award_page.endswith("?given=2:0:0")
    shown = client.get(award_page)
    assert shown.status_code == 200
    assert "付与しました：2 人" in shown.text
    assert "500 ポイント × 10 枚、発行日から 90 日間、大塚商店街の各店舗で利用可" in shown.text
    links = re.findall(r'href="([^"]+/vouchers/([A-Z0-9]{8})\.pdf)"', shown.text)
    assert [who for _, who in links] == ["AB123456", "CD234567"]
    assert _float(database) == 2 * 10 * 500

    # the form sent again (a double click, a reload) gives nothing twice
    again = client.post(f"/console/m/{TOSHIMA}/rankings/awards", data=fields)
    assert again.status_code == 200 and "付与済み 2 人" in again.text
    assert database.count("vouchers") == 20 and _float(database) == 10_000

    pdf = client.get(links[0][0])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'attachment; filename="prize-AB123456.pdf"'
    pages = read_pdf(pdf.content)
    assert len([n for p in pages for n in p.ean13]) == 10
    assert "★大塚商店街の各店舗でご利用頂けます。" in pages[0].text
    assert "ウォーキング上位者（豊島区ポイント）" in pages[0].text
    zipped = client.get(award_page.split("?")[0] + "/vouchers.zip")
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(zipped.content))
    assert archive.namelist() == ["0001-AB123456.pdf", "0002-CD234567.pdf"]

    # the rankings page lists the award; another town's staff see none of it
    assert "ウォーキング上位者" in client.get(f"/console/m/{TOSHIMA}/rankings").text
    english = client.get(award_page.split("?")[0] + "?lang=en")
    assert "10 × 500 points, valid 90 days from issue at every shop of 大塚商店街" in english.text
    client.post("/logout", data={"csrf_token": csrf(shown.text)})
    login(client, "tenri")
    for path in (award_page, links[0][0], award_page.split("?")[0] + "/vouchers.zip"):
        assert client.get(path).status_code == 403


def test_staff_award_points_and_vouchers_for_chosen_shops(
    client: TestClient,  # noqa: F811 -- the fixture
    database: Database,
) -> None:
    _walks(database)
    login(client, "toshima")
    page = client.get(f"/console/m/{TOSHIMA}/rankings?activity=walk&top=1&minimum=1")
    fields = {
        "csrf_token": csrf(page.text),
        "key": hidden(page.text, "key"),
        "activity": "walk",
        "start": hidden(page.text, "start"),
        "end": hidden(page.text, "end"),
        "top": "1",
        "minimum": "1",
        "reason": "1位",
        "points": "300",
        "voucher_count": "2",
        "voucher_value": "1000",
        "voucher_days": "30",
        "voucher_street": "",
        "voucher_shops": ["otsuka-2", "museum"],
    }
    done = client.post(
        f"/console/m/{TOSHIMA}/rankings/awards",
        content=urlencoded(fields),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200, done.text
    assert "郷土資料館、大塚の茶屋で利用可" in done.text and "300 ポイント" in done.text
    uow = database.uow()
    wallet = ledger.find_account(uow, ledger=TOSHIMA, kind=AccountKind.WALLET, owner="AB123456")
    assert ledger.balance(uow, wallet.id).available == 4 * 500 + 300
    assert _float(database) == 2000


def urlencoded(fields: dict[str, str | list[str]]) -> str:
    from urllib.parse import urlencode

    return urlencode(fields, doseq=True)


def _resident_login(c: TestClient, mykey_id: str) -> None:
    from tests.builders import PASSWORD_FOR_BULK

    c.cookies.clear()
    form = c.get("/mypage/login").text
    done = c.post(
        "/mypage/login",
        data={"csrf_token": csrf(form), "mykey_id": mykey_id, "password": PASSWORD_FOR_BULK},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text


def test_the_winner_sees_and_prints_the_prize_vouchers_in_my_page(
    client: TestClient,  # noqa: F811 -- the fixture
    database: Database,
) -> None:
    from datetime import date

    from mykey.points.rankings import award_ranking
    from mykey.points.vouchers import PrizeTerms, redeem

    _walks(database)
    uow = database.uow()
    report = award_ranking(
        uow,
        municipality=TOSHIMA,
        activity="walk",
        start=date(2026, 4, 1),
        end=date(2027, 3, 31),
        top=1,
        minimum=1,
        reason="ウォーキング1位",
        actor="staff:toshima",
        key="walk-1st",
        vouchers=PrizeTerms(10, 500, 90, street_id="otsuka"),
    )
    [winner] = report.outcomes
    redeem(uow, shop_id="otsuka-1", number=winner.vouchers[0], actor="t", key="r")

    _resident_login(client, "AB123456")
    mine = client.get("/mypage/vouchers")
    assert mine.status_code == 200
    assert "ランキングの賞品" in mine.text and "大塚商店街" in mine.text
    assert "豊島区ポイント 500 ポイント × 10 枚" in mine.text
    assert "10 枚中 9 枚" in mine.text  # one was used
    link = f"/mypage/vouchers/{winner.voucher_batch}.pdf"
    assert link in mine.text
    pdf = client.get(link)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    pages = read_pdf(pdf.content, dpi=72)
    assert len(pages) == 4 and "使用済み" in pages[0].text  # the used one is marked void

    _resident_login(client, "CD234567")  # not a winner: nothing to see, nothing to print
    assert "まだありません。" in client.get("/mypage/vouchers").text
    assert client.get(link).status_code == 404


def _budget(database: Database, annual: int) -> None:
    set_up_program(
        database.uow(),
        municipality=TOSHIMA,
        point_name="豊島区ポイント",
        terms="",
        validity={},
        usable_at=["shop", "museum"],
        rules=[Rule("walk", "ウォーク", 500)],
        annual_budget=annual,
    )


def test_the_award_page_says_why_a_winner_got_nothing_and_gives_the_rest_later(
    client: TestClient,  # noqa: F811 -- the fixture
    database: Database,
) -> None:
    """A winner refused for the budget is named on the award's page with the reason (in the
    page's language, after the redirect and on a reload); once the budget is raised, "give the
    rest again" sends the saved award as it was and gives only them."""
    _walks(database)  # 4,000 points of walks granted
    _budget(database, 9_000)  # room for one winner's 5,000-point prize
    login(client, "toshima")
    page = client.get(f"/console/m/{TOSHIMA}/rankings?activity=walk&top=2&minimum=1000")
    fields = {
        "csrf_token": csrf(page.text),
        "key": hidden(page.text, "key"),
        "activity": "walk",
        "start": "2026-04-01",
        "end": "2027-03-31",
        "top": "2",
        "minimum": "1000",
        "reason": "ウォーキング上位者",
        "voucher_count": "10",
        "voucher_value": "500",
        "voucher_days": "90",
        "voucher_street": "otsuka",
    }
    done = client.post(f"/console/m/{TOSHIMA}/rankings/awards", data=fields, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith("?given=1:0:1")
    award_page = done.headers["location"]
    for _ in range(2):  # the redirect, then a reload
        shown = client.get(award_page)
        assert "付与できなかった人と理由" in shown.text
        row = re.search(r"<td>CD234567</td><td>([^<]+)</td>", shown.text)
        assert row and "年間予算を超えるため付与できません" in row.group(1)
        assert "AB123456</td><td>" not in shown.text  # given: not in the list
    english = client.get(award_page + "&lang=en")
    assert "Not given, and why" in english.text and "annual budget" in english.text
    assert _float(database) == 5_000

    _budget(database, 20_000)
    again = client.post(
        award_page.split("?")[0] + "/again",
        data={"csrf_token": csrf(shown.text)},
        follow_redirects=False,
    )
    assert again.status_code == 303 and again.headers["location"].endswith("?given=1:1:0")
    after = client.get(again.headers["location"] + "&lang=ja")
    assert "付与できなかった人と理由" not in after.text
    assert "残りの人にもう一度付与する" not in after.text  # everyone has their prize now
    assert _float(database) == 10_000 and database.count("vouchers") == 20
    assert database.count("ranking_awards") == 1
    # without a CSRF token, or by another town's staff: nothing
    assert client.post(award_page.split("?")[0] + "/again", data={}).status_code == 403
    client.post("/logout", data={"csrf_token": csrf(after.text)})
    login(client, "tenri")
    other = client.post(
        award_page.split("?")[0] + "/again",
        data={"csrf_token": csrf(client.get("/staff").text)},
    )
    assert other.status_code == 403
    assert _float(database) == 10_000
