"""The foundation in a browser: staff sign in and out, a resident signs in to My Page,
a form without its CSRF token is refused, and a failed sign-in says what went wrong."""

from __future__ import annotations

from playwright.sync_api import Page

from mykey.demo import DEMO_PASSWORD, DEMO_STAFF_PASSWORD
from tests.browser.conftest import assert_accessible, screenshot


def test_staff_sign_in_and_out(page: Page) -> None:
    page.goto("/staff")
    page.wait_for_url("**/login?next=%2Fstaff")  # not signed in: to the login page
    assert_accessible(page)
    page.get_by_label("ユーザー名").fill("toshima")
    page.get_by_label("パスワード").fill(DEMO_STAFF_PASSWORD)
    page.get_by_role("button", name="ログイン").click()

    page.wait_for_url("**/staff?signed_in=1")
    assert "ログインしました" in page.locator("[role=status]").inner_text()
    details = page.locator("dl").inner_text()
    assert "toshima" in details and "自治体職員" in details and "131164" in details
    cookie = next(c for c in page.context.cookies() if c["name"] == "mykey_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert_accessible(page)

    page.get_by_role("button", name="ログアウト").click()
    page.wait_for_url("**/navi?signed_out=1")
    assert "ログアウトしました" in page.locator("[role=status]").inner_text()
    page.goto("/staff")
    page.wait_for_url("**/login?next=%2Fstaff")  # the old session is over


def test_a_wrong_password_and_an_empty_form_are_explained(page: Page) -> None:
    page.goto("/login?lang=en")
    screenshot(page, "staff-login-en")
    page.get_by_role("button", name="Sign in").click()
    summary = page.locator("[data-error-summary]")
    assert "Enter your username." in summary.inner_text()
    assert page.get_by_label("Username").get_attribute("aria-invalid") == "true"
    summary.get_by_role("link", name="Enter your password.").click()
    assert page.evaluate("document.activeElement.id") == "password"
    assert_accessible(page)

    page.get_by_label("Username").fill("council")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert "The username or the password is wrong." in page.locator("[role=alert]").inner_text()
    assert page.get_by_label("Username").input_value() == "council"


def test_a_resident_signs_in_to_my_page(page: Page) -> None:
    page.goto("/mypage")
    page.wait_for_url("**/mypage/login?next=%2Fmypage")
    page.get_by_label("マイキーID").fill("my123456")
    page.get_by_label("パスワード").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="ログイン").click()

    page.wait_for_url("**/mypage?signed_in=1")
    assert "MY123456" in page.locator("dl").inner_text()
    assert_accessible(page)
    page.goto("/staff")  # a resident is no staff member
    page.wait_for_url("**/login?next=%2Fstaff")


def test_a_form_sent_without_its_csrf_token_is_refused(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("ユーザー名").fill("council")
    page.get_by_label("パスワード").fill(DEMO_STAFF_PASSWORD)
    page.locator("input[name=csrf_token]").evaluate("e => e.remove()")
    page.get_by_role("button", name="ログイン").click()

    assert page.locator("h1").inner_text() == "送信を受け付けられませんでした"
    assert "ページを開き直して" in page.locator("main").inner_text()
    assert_accessible(page)
    page.goto("/staff")
    page.wait_for_url("**/login?next=%2Fstaff")  # nobody was signed in

    forged = page.request.post(
        "/logout", form={"csrf_token": "guessed"}, max_redirects=0, fail_on_status_code=False
    )
    assert forged.status == 403
