"""Ranking prizes in a browser at a desktop screen size: staff rank the demo's volunteers, give
the top two ten 500-point vouchers of the Otsuka shopping street, download one winner's PDF
and everyone's ZIP; the winner sees the vouchers in My Page. axe checks every page, Japanese
and English; `MYKEY_SCREENSHOTS=1` saves the pages to docs/screenshots/."""

from __future__ import annotations

import zipfile
from pathlib import Path

from playwright.sync_api import Page

from mykey.demo import DEMO_PASSWORD
from tests.browser.conftest import assert_accessible, screenshot
from tests.browser.test_consoles import sign_in
from tests.pdfs import read_pdf

DESKTOP = {"width": 1366, "height": 900}


def test_staff_give_prize_vouchers_and_download_them(page: Page) -> None:
    page.set_viewport_size(DESKTOP)
    sign_in(page, "toshima")
    page.goto("/console/m/131164/rankings")
    page.get_by_label("活動（付与ルール）").select_option("volunteer")
    page.get_by_label("表示する人数").fill("2")
    page.get_by_role("button", name="表示する").click()
    ranked = page.locator("table").first.inner_text()
    assert "OGUNI001" in ranked and "TSU65000" in ranked
    assert_accessible(page)

    page.get_by_label("付与の理由").fill("ボランティア上位者賞")
    page.get_by_label("枚数（1人あたり）").fill("10")
    page.get_by_label("1枚の額面（ポイント）").fill("500")
    page.get_by_label("有効期間（日数）").fill("90")
    page.get_by_label("使える商店街").select_option("otsuka")
    screenshot(page, "console-ranking-award-form")
    page.get_by_role("button", name="賞品を付与する").click()
    page.wait_for_url("**/rankings/awards/*")
    page.get_by_text("付与しました：2 人").wait_for()
    table = page.locator("table").inner_text()
    assert "OGUNI001" in table and "TSU65000" in table
    assert page.get_by_text(
        "500 ポイント × 10 枚、発行日から 90 日間、大塚商店街の各店舗で利用可"
    ).count()
    assert_accessible(page)
    screenshot(page, "console-ranking-award")

    with page.expect_download() as one:
        page.get_by_role("link", name="OGUNI001 のポイント券（PDF）").click()
    pages = read_pdf(Path(one.value.path()).read_bytes())
    assert len([n for p in pages for n in p.ean13]) == 10
    assert "★大塚商店街の各店舗でご利用頂けます。" in pages[0].text
    with page.expect_download() as everyone:
        page.get_by_role("link", name="全員分のポイント券をダウンロード（ZIP・1人1PDF）").click()
    names = zipfile.ZipFile(Path(everyone.value.path())).namelist()
    assert names == ["0001-OGUNI001.pdf", "0002-TSU65000.pdf"]

    page.goto(page.url.split("?")[0] + "?lang=en")
    page.get_by_role("heading", name="Ranking award").wait_for()
    assert page.get_by_role("link", name="OGUNI001's vouchers (PDF)").count() == 1
    assert_accessible(page)

    # the winner, in My Page
    page.context.clear_cookies()
    page.goto("/mypage/login?lang=ja")
    page.get_by_label("マイキーID").fill("OGUNI001")
    page.get_by_label("パスワード").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url("**/mypage?signed_in=1")
    page.get_by_role("link", name="ポイント券").first.click()
    page.wait_for_url("**/mypage/vouchers")
    row = page.locator("table").inner_text()
    assert "ランキングの賞品" in row and "10 枚中 10 枚" in row and "大塚商店街" in row
    assert_accessible(page)
    screenshot(page, "mypage-vouchers")
