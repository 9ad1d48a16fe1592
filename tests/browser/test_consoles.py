"""The consoles in a browser: staff run a bulk grant and watch it finish, a partner downloads
a coupon batch, an operator creates a key, staff of another town are refused; axe checks
every page, in Japanese and English."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page

from mykey.demo import DEMO_PASSWORD, DEMO_STAFF_PASSWORD
from tests.browser.conftest import assert_accessible, screenshot


def sign_in(page: Page, username: str, lang: str = "ja") -> None:
    page.goto(f"/login?lang={lang}")
    label = {
        "ja": ("ユーザー名", "パスワード", "ログイン"),
        "en": ("Username", "Password", "Sign in"),
    }
    user, password, button = label[lang]
    page.get_by_label(user).fill(username)
    page.get_by_label(password).fill(DEMO_STAFF_PASSWORD)
    page.get_by_role("button", name=button).click()
    page.wait_for_url("**/staff?signed_in=1")


def test_staff_run_a_bulk_grant_and_watch_it_finish(page: Page, tmp_path: Path) -> None:
    sign_in(page, "toshima")
    page.get_by_role("link", name="管理画面を開く").click()
    page.wait_for_url("**/console/m/131164")
    assert_accessible(page)
    screenshot(page, "console-municipality")
    page.get_by_role("link", name="ポイントの付与").first.click()
    assert_accessible(page)
    grants = tmp_path / "grants.csv"
    grants.write_text("mykey_id,points,reason\nMY123456,300,清掃ボランティア\nA01B02C3,200,清掃\n")
    page.get_by_label("付与ファイル（CSV）").set_input_files(str(grants))
    page.get_by_role("button", name="ファイルを送って付与する").click()
    page.wait_for_url("**/grants/jobs/*")
    page.get_by_text("完了しました：2 人に合計 500 ポイントを付与しました。").wait_for()
    progress = page.locator("progress")
    assert progress.get_attribute("value") == progress.get_attribute("max")
    assert_accessible(page)

    page.goto("/console/m/131164/grants?lang=en")
    page.get_by_label("Grant file (CSV)").set_input_files(
        {
            "name": "bad.csv",
            "mimeType": "text/csv",
            "buffer": b"mykey_id,points,reason\nZZ000000,5,x\n",
        }
    )
    page.get_by_role("button", name="Send the file and grant").click()
    page.get_by_role("heading", name="Rows that cannot be granted").wait_for()
    assert "ZZ000000" in page.locator("table").inner_text()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the refused rows as CSV").click()
    assert "ZZ000000" in Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert_accessible(page)


def _toshima_points(browser: Browser, server: str, mykey_id: str) -> int:
    """The resident's Toshima points as My Page shows them (a session of their own)."""
    context = browser.new_context(base_url=server, locale="ja-JP")
    try:
        mine = context.new_page()
        mine.goto("/mypage/login?next=/mypage")
        mine.get_by_label("マイキーID").fill(mykey_id)
        mine.get_by_label("パスワード").fill(DEMO_PASSWORD)
        mine.get_by_role("button", name="ログイン").click()
        mine.wait_for_url("**/mypage?signed_in=1")
        card = mine.locator(".mk-cards > li", has_text="豊島区ポイント")
        if card.count() == 0:
            return 0
        return int(card.locator(".mk-balance__number").inner_text().replace(",", ""))
    finally:
        context.close()


def test_staff_grant_an_activity_to_a_list_of_mykey_ids(
    page: Page, browser: Browser, server: str, tmp_path: Path
) -> None:
    residents = ("TSU65000", "OGUNI001")
    before = {who: _toshima_points(browser, server, who) for who in residents}
    sign_in(page, "toshima")
    page.goto("/console/m/131164/grants")
    bulk = page.locator("form", has=page.get_by_label("付与ファイル（CSV）"))
    eligible = tmp_path / "eligible.csv"
    eligible.write_text("mykey_id\n" + "\n".join(residents) + "\n")
    bulk.get_by_label("付与ファイル（CSV）").set_input_files(str(eligible))
    bulk.get_by_label("活動（付与ルール）").select_option(label="ボランティア（200）")
    bulk.get_by_role("button", name="ファイルを送って付与する").click()
    page.wait_for_url("**/grants/jobs/*")
    page.get_by_text("完了しました：2 人に合計 400 ポイントを付与しました。").wait_for()
    assert_accessible(page)
    after = {who: _toshima_points(browser, server, who) for who in residents}
    assert after == {who: points + 200 for who, points in before.items()}

    # the same list with no activity and no points: the job page says what is missing
    page.goto("/console/m/131164/grants?lang=en")
    bulk = page.locator("form", has=page.get_by_label("Grant file (CSV)"))
    bulk.get_by_label("Grant file (CSV)").set_input_files(str(eligible))
    bulk.get_by_role("button", name="Send the file and grant").click()
    page.wait_for_url("**/grants/jobs/*")
    page.get_by_role("heading", name="Not granted").wait_for()
    assert "An eligibility list needs the job" in page.locator("main").inner_text()
    assert page.locator("progress").count() == 0
    assert_accessible(page)
    assert {who: _toshima_points(browser, server, who) for who in residents} == after

    # the list as older Excel saves it (Shift_JIS, a Japanese header, CRLF), with points and a
    # reason instead of an activity: granted once, whatever the page's language
    page.goto("/console/m/131164/grants?lang=en")
    bulk = page.locator("form", has=page.get_by_label("Grant file (CSV)"))
    sjis = ("マイキーID\r\n" + "\r\n".join(residents) + "\r\n").encode("cp932")
    bulk.get_by_label("Grant file (CSV)").set_input_files(
        {"name": "対象者.csv", "mimeType": "text/csv", "buffer": sjis}
    )
    bulk.get_by_label("Points").fill("150")
    bulk.get_by_label("Reason").fill("防災訓練への参加")
    bulk.get_by_role("button", name="Send the file and grant").click()
    page.wait_for_url("**/grants/jobs/*")
    page.get_by_text("Finished: 300 points granted to 2 residents.").wait_for()
    page.reload()  # the finished job's page, read again, does not grant again
    page.get_by_text("Finished: 300 points granted to 2 residents.").wait_for()
    assert {who: _toshima_points(browser, server, who) for who in residents} == {
        who: points + 150 for who, points in after.items()
    }


def test_an_operator_creates_a_key_and_a_partner_downloads_a_coupon_batch(page: Page) -> None:
    sign_in(page, "council")
    page.goto("/console/council")
    assert_accessible(page)
    screenshot(page, "console-council")
    page.goto("/console/council/keys")
    page.get_by_label("役割").select_option("terminal")
    page.get_by_label("用途・名前").fill("池袋窓口 1 番")
    page.get_by_label("結び付ける相手").fill("arts-maebashi")
    page.get_by_role("button", name="発行する").click()
    key = page.get_by_test_id("issued-key").inner_text()
    assert key.startswith("mk_")
    assert_accessible(page)
    page.goto("/console/council/keys?lang=en")
    assert key not in page.content()
    assert_accessible(page)

    page.goto("/console/council/partners?lang=ja")
    page.locator("#partner").fill("jal")
    page.locator("#name").fill("JAL マイレージバンク")
    page.get_by_label("ID 連携").check()
    page.get_by_label("交換券（紙）").check()
    page.get_by_role("button", name="保存する").click()
    page.wait_for_url("**/partners?saved=1")
    assert_accessible(page)
    page.get_by_role("button", name="ログアウト").click()

    sign_in(page, "jal")
    page.get_by_role("link", name="管理画面を開く").click()
    page.get_by_label("枚数").fill("2")
    page.get_by_label("1 枚あたりの単位数").fill("10000")
    page.get_by_role("button", name="発注する").click()
    page.wait_for_url("**/console/p/jal?ordered=*")
    assert_accessible(page)
    screenshot(page, "console-partner")
    with page.expect_download() as download:
        page.locator("a[href$='.csv']").first.click()
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").strip().splitlines()
    assert lines[0].startswith("serial,code") and len(lines) == 3


def test_staff_of_another_town_are_refused(page: Page) -> None:
    sign_in(page, "tenri", lang="en")
    response = page.goto("/console/m/131164/grants")
    assert response is not None and response.status == 403
    assert page.get_by_role("heading", level=1).inner_text() == "You cannot see this page"
    assert_accessible(page)
    response = page.goto("/console/council")
    assert response is not None and response.status == 403


def test_staff_enter_an_online_shop_pick_that_point_navi_shows(page: Page) -> None:
    sign_in(page, "toshima", lang="en")
    page.goto("/console/m/131164/picks?lang=en")
    assert_accessible(page)
    page.get_by_label("Item").first.fill("Toshima honey")
    page.get_by_label("Shop").first.fill("Toshima market")
    page.get_by_label("Price (yen)").first.fill("1,200")
    page.get_by_role("button", name="Save the picks").click()
    page.get_by_text("The picks were saved.").wait_for()
    assert_accessible(page)
    page.goto("/console/m/131164/picks?lang=ja")
    assert_accessible(page)
    page.goto("/navi/picks?lang=en")
    assert "Toshima honey" in page.locator("main").inner_text()
