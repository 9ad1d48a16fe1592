"""Point Navi in a real browser: the top page, the map by keyboard, a prefecture, a guide, the
picks, both languages, and axe on every page visited."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import assert_accessible, screenshot


def test_the_top_page_explains_the_four_steps_and_lists_every_program(page: Page) -> None:
    page.goto("/navi")

    assert page.locator("html").get_attribute("lang") == "ja"
    assert page.locator("h1").inner_text() == "自治体ポイントナビ"
    steps = page.locator("ol.mk-steps > li h3").all_inner_texts()
    assert steps == [
        "マイナンバーカードをお持ちですか？",
        "マイキーIDを作成済みですか？",
        "ポイントやマイレージを交換しますか？",
        "残高を確認しますか？",
    ]
    table = page.locator("#programs + .dads-table-wrap table")
    assert "8 件の自治体ポイント" in table.locator("caption").inner_text()
    points = table.locator("tbody tr td:first-child").all_inner_texts()
    assert "小国町北里柴三郎ポイント" in points and "天理市ポイント" in points
    assert page.locator("#recommended + ul.mk-cards > li").count() >= 1
    screenshot(page, "navi-top-ja")
    assert_accessible(page)


def test_the_switch_shows_english_and_remembers_it(page: Page) -> None:
    page.goto("/navi")
    page.get_by_role("link", name="English").click()

    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Municipal Point Navi"
    assert page.get_by_role("link", name="English").get_attribute("aria-current") == "true"
    screenshot(page, "navi-top-en")
    page.goto("/navi/faq")  # no ?lang=: the cookie keeps English
    assert page.locator("h1").inner_text() == "Frequently asked questions"
    assert_accessible(page)
    page.get_by_role("link", name="日本語").click()
    assert page.locator("h1").inner_text() == "よくある質問"


def test_a_keyboard_user_tabs_to_nara_on_the_map_and_sees_tenri(page: Page) -> None:
    page.goto("/navi/map")
    highlighted = page.locator('a.mk-map__tile[data-has-points="true"]')
    codes = {highlighted.nth(i).get_attribute("data-pref") for i in range(highlighted.count())}
    assert codes == {"10", "13", "24", "29", "40", "43", "44", "45"}  # the demo's 8 programs
    assert page.locator("a.mk-map__tile").count() == 47
    assert_accessible(page)

    for _ in range(120):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('data-pref')") == "29":
            break
    else:
        raise AssertionError("Tab never reached Nara on the map")
    assert "奈良県" in page.evaluate("document.activeElement.getAttribute('aria-label')")
    page.keyboard.press("Enter")
    page.wait_for_url("**/navi/prefectures/29")

    assert page.locator("h1").inner_text() == "奈良県の自治体ポイント"
    section = page.locator("section", has=page.locator("h2#m-292044"))
    assert "天理市ポイント" in section.locator("h2").inner_text()
    assert "天理本通り 書店" in section.locator("table").inner_text()
    assert "天理ふるさと便" in section.inner_text()
    assert "柿の葉寿司 10 個入り" in section.inner_text() and "1,800円" in section.inner_text()
    assert_accessible(page)


def test_the_omuta_libraries_are_listed_for_fukuoka(page: Page) -> None:
    page.goto("/navi/prefectures/40?lang=en")

    libraries = page.locator("#libraries + .dads-table-wrap table tbody").inner_text()
    for name in ("大牟田市立図書館", "柳川市立図書館", "みやま市立図書館"):
        assert name in libraries
    assert "有明圏域図書館" in libraries
    assert "荒尾市立図書館" not in libraries  # Arao is in Kumamoto
    assert_accessible(page)


def test_a_guide_for_shop_staff_and_the_other_text_pages(page: Page) -> None:
    page.goto("/navi/guides")
    assert page.locator("main a").count() == 6
    assert_accessible(page)
    page.get_by_role("link", name="加盟店の方へ").click()

    assert page.locator("h1").inner_text() == "加盟店の方へ"
    assert "窓口端末" in page.locator("main").inner_text()
    crumbs = page.locator("nav.dads-breadcrumb li").all_inner_texts()
    assert crumbs == ["ポイントナビ トップ", "マニュアル", "加盟店の方へ"]
    assert_accessible(page)
    for path, heading in (
        ("/navi/terms", "利用規約"),
        ("/navi/council", "運営協議会の会員自治体"),
        ("/navi/picks", "オンラインショップのおすすめ"),
    ):
        page.goto(path)
        assert page.locator("h1").inner_text() == heading
        assert_accessible(page)
    assert "13 の自治体" in page.goto("/navi/council").text()  # type: ignore[union-attr]


def test_an_unknown_prefecture_is_a_404_page_in_the_visitors_language(page: Page) -> None:
    response = page.goto("/navi/prefectures/48?lang=en")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    assert_accessible(page)
