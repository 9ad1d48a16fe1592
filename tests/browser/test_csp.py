"""Under the Content-Security-Policy the pages still work: Swagger UI at /docs renders the API
from its own script file, the Navi map shows its legend and labels from the stylesheet, and
Chromium reports no violation (the `page` fixture fails the test on any)."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_swagger_ui_works_under_its_policy(page: Page) -> None:
    response = page.goto("/docs")
    assert response is not None
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    title = page.locator(".swagger-ui .info .title")
    expect(title).to_contain_text("MyKey Platform", timeout=30_000)  # a big document to render
    page.locator(".opblock-summary").first.click()  # opens an operation: more of the UI
    expect(page.locator(".opblock-body").first).to_be_visible()


def test_the_navi_map_is_styled_from_the_stylesheet(page: Page) -> None:
    page.goto("/navi/map?lang=en")
    swatch = page.locator(".mk-legend__swatch--with")
    assert swatch.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(0, 23, 193)"
    label = page.locator(".mk-map__label--en").first
    assert label.evaluate("e => getComputedStyle(e).fontSize") == "11px"
