"""My Page and the counter terminal in a browser (issue #8, R6.1): a resident opens a coupon
URL, signs in and redeems it, sees balances and history; a clerk takes a payment, prints
vouchers, redeems one and is refused a second time; a library terminal shows the user number.
axe runs on every page, in Japanese and English."""

from __future__ import annotations

import csv
import re
from datetime import timedelta

from playwright.sync_api import Page, expect

from mykey.db import tokyo_date, utcnow
from mykey.demo import DEMO_PASSWORD, DEMO_STAFF_PASSWORD
from tests.browser.conftest import WORK, assert_accessible, mykey, screenshot


def _coupon_code() -> str:
    work = WORK["dir"]
    agreed = mykey(
        work, "partners", "add", "saison", "--name", "セゾン", "--methods", "id_linkage,coupon_url"
    )
    assert agreed.returncode == 0, agreed.stderr
    out = work / "coupons.csv"
    ordered = mykey(
        work,
        *("coupons", "order", "--partner", "saison", "--count", "1", "--units", "200"),
        *("--expires", (tokyo_date(utcnow()) + timedelta(days=365)).isoformat()),
        *("--delivery", "url", "--out", str(out)),
    )
    assert ordered.returncode == 0, ordered.stderr
    with out.open(encoding="utf-8-sig") as f:
        return next(csv.DictReader(f))["code"]


def _tenri_balance(page: Page) -> int:
    card = page.locator(".mk-cards > li", has_text="天理市ポイント")
    return int(card.locator(".mk-balance__number").inner_text().replace(",", ""))


def test_a_resident_redeems_a_coupon_from_its_url_and_sees_balances_and_history(
    page: Page,
) -> None:
    code = _coupon_code()
    page.goto(f"/mypage/coupons?code={code}")
    page.wait_for_url("**/mypage/login?next=*")  # the code survives the sign-in
    assert_accessible(page)
    page.get_by_label("マイキーID").fill("A01B02C3")
    page.get_by_label("パスワード").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="ログイン").click()

    page.wait_for_url(re.compile(r".*/mypage/coupons\?code=.*"))
    assert page.get_by_label("クーポンコード").input_value() == code
    assert_accessible(page)
    page.goto("/mypage")
    before = _tenri_balance(page)
    page.go_back()
    page.get_by_label("ポイントを受け取る自治体").select_option("292044")
    page.get_by_role("button", name="交換する").click()

    page.wait_for_url("**/mypage")  # the notice is kept server-side, not in the URL
    assert "ポイントを受け取りました" in page.locator("[role=status]").inner_text()
    assert _tenri_balance(page) == before + 1000  # saison's terms: 200 units → 1,000 points
    assert page.get_by_text("有効期限").first.is_visible()
    assert_accessible(page)
    screenshot(page, "mypage")

    page.get_by_role("link", name="ポイントの履歴").first.click()
    row = page.locator("tbody tr").first
    assert "交換" in row.inner_text() and "+1,000" in row.inner_text()
    proof = page.request.get(row.get_by_role("link").get_attribute("href") or "")
    assert proof.status == 200 and proof.json()["format"].startswith("mykey-inclusion-proof")
    assert_accessible(page)

    # the same coupon a second time: refused in words, nothing changes
    page.goto(f"/mypage/coupons?code={code}")
    page.get_by_label("ポイントを受け取る自治体").select_option("292044")
    page.get_by_role("button", name="交換する").click()
    assert "使用済み" in page.locator("[role=alert]").inner_text()

    for path in ("/mypage", "/mypage/history", "/mypage/links", "/mypage/usage", "/mypage/cards"):
        page.goto(f"{path}?lang=en")
        assert page.locator("html").get_attribute("lang") == "en"
        assert_accessible(page)
    page.goto("/mypage?lang=ja")
    for path in ("/mypage/links", "/mypage/usage", "/mypage/cards"):
        page.goto(path)
        assert_accessible(page)


def test_a_resident_signs_in_with_the_simulator_card(page: Page) -> None:
    page.goto("/mypage/login/card")
    assert "デモ用シミュレータ" in page.content()
    assert_accessible(page)
    page.get_by_label("カードをかざす").select_option("TSU65000")
    page.get_by_role("button", name="カードでログイン").click()
    page.wait_for_url("**/mypage?signed_in=1")
    assert "TSU65000" in page.locator("dl").first.inner_text()
    page.goto("/mypage/login/card?lang=en")
    assert_accessible(page)


def _sign_in(page: Page, username: str) -> None:
    page.goto("/counter")
    page.wait_for_url("**/login?next=%2Fcounter")
    page.get_by_label("ユーザー名").fill(username)
    page.get_by_label("パスワード").fill(DEMO_STAFF_PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url("**/counter?signed_in=1")


def _tap(page: Page, card: str) -> None:
    page.get_by_label("カードをかざす（シミュレータのカードを選ぶ）").select_option(card)


def test_a_clerk_takes_a_payment_prints_vouchers_and_redeems_one(page: Page) -> None:
    _sign_in(page, "arts-maebashi")
    assert_accessible(page)
    _tap(page, "OGUNI001")
    page.get_by_role("button", name="カードを読み取る").click()
    row = page.locator("tbody tr", has_text="前橋市ポイント")
    rest = int(re.findall(r"([\d,]+) pt", row.inner_text())[0].replace(",", ""))
    assert_accessible(page)
    screenshot(page, "counter")

    page.get_by_label("ご利用ポイント数").fill("100")
    page.get_by_role("button", name="確認へ進む").first.click()
    assert "100 ポイントを使います" in page.locator("main").inner_text()
    assert_accessible(page)
    _tap(page, "OGUNI001")  # every operation taps again
    page.get_by_role("button", name="確定する").click()
    result = page.locator("dl").inner_text()
    assert f"{rest - 100:,} pt" in result
    assert_accessible(page)

    page.get_by_role("link", name="次のお客様へ").click()
    _tap(page, "OGUNI001")
    page.get_by_role("button", name="カードを読み取る").click()
    page.get_by_label("券にするポイント数").fill("300")
    page.get_by_label("1 枚あたりのポイント").fill("100")
    page.get_by_role("button", name="確認へ進む").nth(1).click()
    _tap(page, "OGUNI001")
    page.get_by_role("button", name="確定する").click()
    # .all() does not wait: let the issued page load before reading its numbers
    expect(page.locator("tbody code")).to_have_count(3)
    numbers = [n.inner_text() for n in page.locator("tbody code").all()]
    assert_accessible(page)
    pdf = page.request.get(
        page.get_by_role("link", name="ポイント券を印刷する").get_attribute("href") or ""
    )
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")

    page.get_by_role("link", name="次のお客様へ").click()
    page.get_by_label("ポイント券の番号").fill(numbers[0])
    page.get_by_label("ポイント券の番号").press("Enter")  # as a barcode scanner does
    assert "ポイント券を受け取りました" in page.locator("h1").inner_text()
    assert_accessible(page)
    page.get_by_role("link", name="次のお客様へ").click()
    page.get_by_label("ポイント券の番号").fill(numbers[0])
    page.get_by_role("button", name="ポイント券を使う").click()
    assert "使用済み" in page.locator("[role=alert]").inner_text()
    assert_accessible(page)

    # today's payment is listed without the resident, and can be cancelled
    page.goto("/counter?lang=en")
    assert_accessible(page)
    page.locator("tbody tr").first.get_by_role("button").click()
    assert "went back to the customer" in page.locator("[role=status]").inner_text()


def test_a_library_terminal_shows_the_user_number(page: Page) -> None:
    _sign_in(page, "omuta-library")
    assert_accessible(page)
    _tap(page, "MY123456")
    page.get_by_role("button", name="カードを読み取る").click()
    assert page.locator(".mk-counter__big").inner_text() == "789145"
    assert_accessible(page)
    page.get_by_role("link", name="次のお客様へ").click()
    _tap(page, "TSU65000")
    page.get_by_role("button", name="カードを読み取る").click()
    assert "連携されていません" in page.locator("[role=alert]").inner_text()
    page.goto("/counter?lang=en")
    assert_accessible(page)
