"""The counter in a browser (issue #13): the confirmation stays with the customer whose points
were shown, a double submit pays once, a reload or a language switch after paying shows a
page, and the resident sees the counter's uses in My Page. axe runs in Japanese and English;
the counter is checked at a tablet's size (1024 × 768)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from mykey.demo import DEMO_PASSWORD, DEMO_STAFF_PASSWORD
from tests.browser.conftest import assert_accessible

PICKER = "カードをかざす（シミュレータのカードを選ぶ）"


@pytest.fixture
def tablet(browser: Browser, server: str) -> Iterator[Page]:
    """A counter tablet: 1024 × 768, Japanese."""
    context = browser.new_context(
        base_url=server, locale="ja-JP", viewport={"width": 1024, "height": 768}
    )
    opened = context.new_page()
    yield opened
    context.close()


def _sign_in(page: Page) -> None:
    page.goto("/counter")
    page.get_by_label("ユーザー名").fill("arts-maebashi")
    page.get_by_label("パスワード").fill(DEMO_STAFF_PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url("**/counter?signed_in=1")


def _points(page: Page, card: str) -> int:
    """Tap `card` on the counter's home page: its Maebashi points."""
    page.get_by_label(PICKER).select_option(card)
    page.get_by_role("button", name="カードを読み取る").click()
    row = page.locator("tbody tr", has_text="前橋市ポイント")
    return int(re.findall(r"([\d,]+) pt", row.inner_text())[0].replace(",", ""))


def _next(page: Page) -> None:
    page.get_by_role("link", name="次のお客様へ").click()
    page.wait_for_url("**/counter")


def _today(page: Page) -> int:
    page.goto("/counter")
    return page.locator("tbody tr").count()


def test_another_card_at_the_confirmation_is_refused_and_nothing_is_charged(
    tablet: Page,
) -> None:
    page = tablet
    _sign_in(page)
    other = _points(page, "A01B02C3")
    _next(page)
    mine = _points(page, "OGUNI001")
    page.get_by_label("ご利用ポイント数").fill("100")
    page.get_by_role("button", name="確認へ進む").first.click()
    assert_accessible(page)
    page.get_by_label(PICKER).select_option("A01B02C3")  # someone else's card
    page.get_by_role("button", name="確定する").click()
    assert page.locator("h1").inner_text() == "内容の確認", "another card was charged"
    alert = page.locator("[role=alert]").inner_text()
    assert "残高を表示したお客様のカードではありません" in alert
    assert "OGUN****" in page.locator(".mk-counter__holder").inner_text()  # whom it charges
    assert_accessible(page)
    page.get_by_role("link", name="English").click()  # the refused page, in English
    page.wait_for_url("**/counter/confirm?lang=en")
    assert page.locator("h1").inner_text() == "Please confirm"
    assert "OGUN****" in page.locator("main").inner_text()
    assert_accessible(page)
    page.goto("/counter?lang=ja")
    assert (_points(page, "A01B02C3"), _next(page), _points(page, "OGUNI001")) == (
        other,
        None,
        mine,
    )


def test_reload_and_language_switch_after_paying_show_the_payment(tablet: Page) -> None:
    page = tablet
    _sign_in(page)
    before = _today(page)
    rest = _points(page, "OGUNI001") - 100
    page.get_by_label("ご利用ポイント数").fill("100")
    page.get_by_role("button", name="確認へ進む").first.click()
    page.get_by_label(PICKER).select_option("OGUNI001")
    confirm = page.get_by_role("button", name="確定する")
    confirm.dblclick()  # a double click sends the form twice: it pays once
    # The browser abandons the first submission's navigation for the second (ERR_ABORTED):
    # wait for where the page ends up, not for one navigation.
    expect(page).to_have_url(re.compile(r".*/counter/payments/[0-9a-f-]{36}$"))
    page.wait_for_load_state()
    paid = page.url
    assert f"{rest:,} pt" in page.locator("dl").inner_text()
    assert_accessible(page)

    page.reload()  # a GET: no resend, the same page
    assert page.url == paid and f"{rest:,} pt" in page.locator("dl").inner_text()
    page.get_by_role("link", name="English").click()
    page.wait_for_url(paid + "?lang=en")
    assert page.locator("h1").inner_text() == "Payment done"
    assert f"{rest:,} pt" in page.locator("dl").inner_text()
    assert_accessible(page)
    page.get_by_role("link", name="Next customer").click()
    page.wait_for_url("**/counter")
    page.goto(paid)  # later: the shop's payment, without the customer's rest
    assert f"{rest:,} pt" not in page.locator("main").inner_text()
    assert "100 pt" in page.locator("dl").inner_text()
    assert_accessible(page)
    assert _today(page) == before + 1


def test_the_resident_sees_the_counters_uses_in_my_page(tablet: Page) -> None:
    page = tablet
    _sign_in(page)
    _points(page, "TSU65000")
    page.get_by_label("ご利用ポイント数").fill("50")
    page.get_by_role("button", name="確認へ進む").first.click()
    page.get_by_label(PICKER).select_option("TSU65000")
    page.get_by_role("button", name="確定する").click()
    page.get_by_role("heading", name="支払いが完了しました").wait_for()
    page.context.clear_cookies()

    page.goto("/mypage/usage")
    page.get_by_label("マイキーID").fill("TSU65000")
    page.get_by_label("パスワード").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url("**/mypage/usage*")
    rows = [r.inner_text() for r in page.locator("tbody tr").all()]
    assert any("ポイントでの支払い" in r and "アーツ前橋" in r and "50 pt" in r for r in rows)
    assert any("窓口での残高の確認" in r and "アーツ前橋" in r for r in rows)
    assert_accessible(page)
    page.get_by_role("link", name="English").click()
    page.wait_for_url(re.compile(r".*/mypage/usage\?.*lang=en"))
    rows = [r.inner_text() for r in page.locator("tbody tr").all()]
    assert any("Paid with points" in r and "アーツ前橋" in r for r in rows)
    assert any("Balances shown at a counter" in r for r in rows)
    assert_accessible(page)
