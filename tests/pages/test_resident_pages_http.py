"""My Page and the counter over HTTP on both engines, with simulator cards of the test's own
CA: refusals change nothing, a suspended card is refused at the counter in a clerk's words,
the terminal's session keeps nothing of the resident, and every page checks the role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mykey import demo
from mykey.config import Settings
from mykey.identity.residents import cards_of, suspend_card
from mykey.identity.simulator import SimulatorCA
from mykey.web.app import create_app
from tests.conftest import Database


@pytest.fixture
def client(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The demo's data, with two simulator cards in ./var/cards (the pages' card folder)."""
    monkeypatch.chdir(tmp_path)
    ca = SimulatorCA.create(now=database.clock())
    ca.save(tmp_path / "var" / "cards")
    cards = {name: ca.issue(now=database.clock()) for name in ("MY123456", "A01B02C3")}
    (tmp_path / "var" / "cards" / "cards").mkdir()
    for name, card in cards.items():
        (tmp_path / "var" / "cards" / "cards" / f"{name}.json").write_text(card.to_json())
    uow = database.uow()
    demo.load(uow)
    demo.register_residents(uow, cards)
    demo.register_staff(uow)
    settings = Settings(
        database_url=database.url,
        environment="test",
        card_trust_anchors=str(tmp_path / "var" / "cards" / "ca.pem"),
    )
    app = create_app(settings, clock=database.clock)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def _staff(client: TestClient, username: str) -> str:
    token = _csrf(client.get("/login").text)
    done = client.post(
        "/login",
        data={
            "csrf_token": token,
            "username": username,
            "password": demo.DEMO_STAFF_PASSWORD,
            "next": "/counter",
        },
    )
    return done.text


def _binding(html: str) -> str:
    found = re.search(r'name="holder_binding" value="([^"]+)"', html)
    assert found, "the balances page carries the holder binding"
    return found.group(1)


def _notes(database: Database) -> str:
    """What the live page sessions keep for the pages after a form (post/redirect/get)."""
    with database.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT notes FROM page_sessions WHERE ended_at IS NULL AND notes IS NOT NULL")
        ).all()
    return " ".join(str(r[0]) for r in rows)


def _transfers(database: Database) -> int:
    return database.count("ledger_transfers")


def test_the_counter_refuses_in_a_clerks_words_and_keeps_no_resident(
    client: TestClient, database: Database
) -> None:
    home = _staff(client, "arts-maebashi")
    tapped = client.post("/counter/tap", data={"csrf_token": _csrf(home), "card": "MY123456"})
    assert tapped.status_code == 200, re.findall(r"<p>([^<]+)</p>", tapped.text)
    assert "前橋市ポイント" in tapped.text
    binding = _binding(tapped.text)
    with database.engine.connect() as conn:  # the terminal's session: the clerk, no resident
        rows = conn.execute(
            text(
                "SELECT staff_username, resident_session FROM page_sessions WHERE ended_at IS NULL"
            )
        ).all()
    assert ("arts-maebashi", None) in [tuple(r) for r in rows]
    assert all(r[1] is None for r in rows)
    assert "MY123456" not in _notes(database)  # the balances page keeps only MY12****

    before = _transfers(database)
    too_much = client.post(
        "/counter/payments",
        data={
            "csrf_token": _csrf(home),
            "card": "MY123456",
            "municipality": "102016",
            "points": "999999",
            "key": "k-too-much",
            "holder_binding": binding,
        },
    )
    assert too_much.status_code == 422
    assert "ポイントが足りません" in too_much.text
    no_card = client.post(
        "/counter/payments",
        data={
            "csrf_token": _csrf(home),
            "municipality": "102016",
            "points": "1",
            "key": "k-2",
            "holder_binding": binding,
        },
    )
    assert no_card.status_code == 422 and "カードが読み取れませんでした" in no_card.text
    assert _transfers(database) == before

    paid = client.post(
        "/counter/payments",
        data={
            "csrf_token": _csrf(home),
            "card": "MY123456",
            "municipality": "102016",
            "points": "100",
            "key": "k-pay",
            "holder_binding": binding,
        },
    )
    assert paid.status_code == 200 and "100 ポイントを受け取りました" in paid.text
    again = client.post(  # the same form sent twice pays once
        "/counter/payments",
        data={
            "csrf_token": _csrf(home),
            "card": "MY123456",
            "municipality": "102016",
            "points": "100",
            "key": "k-pay",
            "holder_binding": binding,
        },
    )
    assert again.status_code == 200
    assert _transfers(database) == before + 1

    uow = database.uow()
    card_key = cards_of(uow, "MY123456")[0].card_key
    suspend_card(uow, mykey_id="MY123456", card_key=card_key, actor="resident:MY123456")
    refused = client.post("/counter/tap", data={"csrf_token": _csrf(home), "card": "MY123456"})
    assert refused.status_code == 422 and "利用停止中" in refused.text


def test_the_counter_is_for_shop_staff_only(client: TestClient) -> None:
    assert client.get("/counter", follow_redirects=False).headers["location"].startswith("/login")
    _staff(client, "toshima")  # municipality staff
    assert client.get("/counter").status_code == 403


def test_my_page_card_login_suspension_and_csrf(client: TestClient, database: Database) -> None:
    form = client.get("/mypage/login/card").text
    bad = client.post("/mypage/login/card", data={"csrf_token": _csrf(form), "card": "../x"})
    assert (
        bad.status_code == 422 and client.get("/mypage", follow_redirects=False).status_code == 303
    )

    done = client.post(
        "/mypage/login/card",
        data={"csrf_token": _csrf(form), "card": "A01B02C3", "next": "/mypage"},
    )
    assert done.status_code == 200 and "A01B02C3" in done.text
    card_key = cards_of(database.uow(), "A01B02C3")[0].card_key
    confirm = client.get(f"/mypage/cards/{card_key}/suspend")
    assert confirm.status_code == 200
    forged = client.post(f"/mypage/cards/{card_key}/suspend", data={"confirm": "yes"})
    assert forged.status_code == 403
    assert not cards_of(database.uow(), "A01B02C3")[0].suspended
    client.post(
        f"/mypage/cards/{card_key}/suspend",
        data={"csrf_token": _csrf(confirm.text), "confirm": "yes"},
    )
    assert cards_of(database.uow(), "A01B02C3")[0].suspended
    other = cards_of(database.uow(), "MY123456")[0].card_key
    assert client.get(f"/mypage/cards/{other}/suspend").status_code == 404  # not mine


def _balance(client: TestClient, card: str) -> int:
    """Tap `card` at the museum's counter: its Maebashi points (then start over)."""
    home = client.get("/counter").text
    shown = client.post("/counter/tap", data={"csrf_token": _csrf(home), "card": card})
    assert shown.status_code == 200, shown.text
    found = re.search(r"前橋市ポイント</td><td data-numeric>([\d,]+) pt", shown.text)
    assert found, shown.text
    client.get("/counter")
    return int(found.group(1).replace(",", ""))


def _to_confirmation(client: TestClient, card: str, points: int) -> tuple[str, str]:
    """Tap `card`, ask to pay `points`: the confirmation page (after its redirect), and the
    form's CSRF token."""
    home = client.get("/counter").text
    shown = client.post("/counter/tap", data={"csrf_token": _csrf(home), "card": card})
    binding = re.search(r'name="holder_binding" value="([^"]+)"', shown.text)
    confirm = client.post(
        "/counter/payments/confirm",
        data={
            "csrf_token": _csrf(shown.text),
            "municipality": "102016",
            "points": str(points),
            "holder_binding": binding.group(1) if binding else "",
        },
    )
    assert confirm.status_code == 200, confirm.text
    return confirm.text, _csrf(confirm.text)


def _confirm_fields(html: str, card: str) -> dict[str, str]:
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    return fields | {"card": card}


def test_the_confirmation_refuses_another_card_and_charges_nothing(
    client: TestClient, database: Database
) -> None:
    """Card MY123456's points are shown, 100 points confirmed; card A01B02C3 is tapped at the
    confirmation: refused in a clerk's words, nobody charged; MY123456's tap then pays."""
    _staff(client, "arts-maebashi")
    mine, other = _balance(client, "MY123456"), _balance(client, "A01B02C3")
    page, _ = _to_confirmation(client, "MY123456", 100)
    before = _transfers(database)

    wrong = client.post("/counter/payments", data=_confirm_fields(page, "A01B02C3"))
    assert wrong.status_code == 422, "another card was charged"
    assert re.search(r'<dd><span class="mk-counter__holder-id" translate="no">MY12\*\*\*\*<', page)
    assert "残高を表示したお客様のカードではありません" in wrong.text
    assert "MY12****" in wrong.text  # still the confirmation, for the right card
    assert _transfers(database) == before
    assert (_balance(client, "MY123456"), _balance(client, "A01B02C3")) == (mine, other)

    page, _ = _to_confirmation(client, "MY123456", 100)
    paid = client.post(
        "/counter/payments", data=_confirm_fields(page, "MY123456"), follow_redirects=False
    )
    assert paid.status_code == 303 and paid.headers["location"].startswith("/counter/payments/")
    shown = client.get(paid.headers["location"])
    assert "100 ポイントを受け取りました" in shown.text and "MY12****" in shown.text
    assert _transfers(database) == before + 1
    assert (_balance(client, "MY123456"), _balance(client, "A01B02C3")) == (mine - 100, other)


def test_reload_and_language_switch_after_a_form_show_a_page(
    client: TestClient, database: Database
) -> None:
    """After paying: a reload and a language switch are GETs of a page (the payment, the rest
    kept briefly server-side), never a resend and never a JSON 405. A GET of any address
    that only takes a form leads to its page."""
    _staff(client, "arts-maebashi")
    page, _ = _to_confirmation(client, "MY123456", 100)
    paid = client.post("/counter/payments", data=_confirm_fields(page, "MY123456"))
    assert paid.status_code == 200 and paid.url.path.startswith("/counter/payments/")
    assert [r.status_code for r in paid.history] == [303]
    url = paid.url.path
    rest = re.search(r"残高ポイント</dt><dd>([\d,]+) pt", paid.text)
    assert rest, paid.text
    before = _transfers(database)

    again = client.get(url)  # a reload
    assert again.status_code == 200 and again.headers["content-type"].startswith("text/html")
    assert f"{rest.group(1)} pt" in again.text and again.headers["cache-control"] == "no-store"
    english = client.get(url + "?lang=en")
    assert english.status_code == 200 and "Points left" in english.text
    assert '<html lang="en">' in english.text
    assert _transfers(database) == before

    # the next customer: the rest of the previous one is gone, the payment is still the shop's
    client.get("/counter")
    later = client.get(url)
    assert later.status_code == 200 and f"{rest.group(1)} pt" not in later.text
    assert "100 pt" in later.text and _notes(database) == ""

    # a language switch of a page shown after a refused form, and other form-only addresses
    for form_only in (
        "/counter/payments",
        "/counter/tap",
        "/counter/payments/confirm",
        f"{url}/cancellation",
        "/counter/lookups",
        "/counter/vouchers/redemptions",
        "/mypage/reserved",
        "/mypage/links/A1/remove",
        "/console/council/keys/xyz/revoke",
        "/logout",
    ):
        got = client.get(form_only + "?lang=en", follow_redirects=False)
        assert got.status_code == 303, (form_only, got.status_code, got.text[:200])
        assert "lang=en" in got.headers["location"], form_only
        shown = client.get(form_only + "?lang=en")
        assert shown.headers["content-type"].startswith("text/html"), form_only
    # a refused redemption switched to English: the counter, not "the previous customer's
    # screen has ended" (where /counter/vouchers, the confirmation's address, would lead)
    redemption = client.get("/counter/vouchers/redemptions?lang=en", follow_redirects=False)
    assert redemption.headers["location"] == "/counter?lang=en"


def test_counter_uses_are_in_my_page_usage_in_both_languages(
    client: TestClient, database: Database
) -> None:
    """R1.5: balances seen and a payment at the museum are in the resident's usage history,
    with the place by name, in Japanese and in English."""
    _staff(client, "arts-maebashi")
    page, _ = _to_confirmation(client, "MY123456", 100)
    client.post("/counter/payments", data=_confirm_fields(page, "MY123456"))
    client.cookies.clear()
    form = client.get("/mypage/login").text
    client.post(
        "/mypage/login",
        data={"csrf_token": _csrf(form), "mykey_id": "MY123456", "password": demo.DEMO_PASSWORD},
    )
    usage = client.get("/mypage/usage")
    assert usage.status_code == 200
    rows = re.findall(
        r"<tr><td>[^<]+</td><td>([^<]+)</td><td>[^<]+</td><td>([^<]*)</td>", usage.text
    )
    assert ("ポイントでの支払い", "アーツ前橋") in rows
    assert ("窓口での残高の確認", "アーツ前橋") in rows
    english = client.get("/mypage/usage?lang=en").text
    assert "Paid with points" in english and "Balances shown at a counter" in english


def test_a_head_of_a_pages_voucher_pdf_is_not_a_print(
    client: TestClient, database: Database
) -> None:
    """The counter's and My Page's voucher PDFs: HEAD answers as GET, and counts no print."""
    _staff(client, "arts-maebashi")
    home = client.get("/counter").text
    shown = client.post("/counter/tap", data={"csrf_token": _csrf(home), "card": "MY123456"})
    confirm = client.post(
        "/counter/vouchers/confirm",
        data={
            "csrf_token": _csrf(shown.text),
            "voucher-municipality": "102016",
            "voucher-points": "200",
            "denomination": "100",
            "holder_binding": _binding(shown.text),
        },
    )
    issued = client.post("/counter/vouchers", data=_confirm_fields(confirm.text, "MY123456"))
    assert issued.status_code == 200 and "/counter/vouchers/issues/" in str(issued.url)
    tid = str(issued.url).rsplit("/", 1)[1]

    def prints() -> list[int]:
        with database.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT prints FROM vouchers WHERE issue_transfer_id = :t ORDER BY seq"),
                {"t": tid if database.url.startswith("postgresql") else tid.replace("-", "")},
            ).all()
        return [int(r[0]) for r in rows]

    counter_pdf = f"/counter/vouchers/batches/{tid}.pdf"
    head = client.head(counter_pdf)
    assert head.status_code == 200 and head.headers["content-type"] == "application/pdf"
    client.cookies.clear()
    form = client.get("/mypage/login").text
    client.post(
        "/mypage/login",
        data={"csrf_token": _csrf(form), "mykey_id": "MY123456", "password": demo.DEMO_PASSWORD},
    )
    mine = client.head(f"/mypage/vouchers/{tid}.pdf")
    assert mine.status_code == 200 and mine.headers["content-type"] == "application/pdf"
    assert prints() == [0, 0]
    assert client.get(f"/mypage/vouchers/{tid}.pdf").status_code == 200
    assert prints() == [1, 1]


@pytest.mark.parametrize("before", ["abc", "10000000000000000000", "-1", "1.5"], ids=str)
def test_an_edited_more_link_shows_the_newest_entries(client: TestClient, before: str) -> None:
    """`?before=` of My Page's history and usage is the page's own "more" link: anything else
    shows the first page, not a JSON error (or the database's overflow)."""
    form = client.get("/mypage/login").text
    client.post(
        "/mypage/login",
        data={"csrf_token": _csrf(form), "mykey_id": "MY123456", "password": demo.DEMO_PASSWORD},
    )
    for page in ("/mypage/history", "/mypage/usage"):
        shown = client.get(f"{page}?before={before}")
        assert shown.status_code == 200, shown.text
        assert shown.headers["content-type"].startswith("text/html")
        # the same page, but for the language links, which keep the address as it was
        assert shown.text.replace(f"before={before}&amp;", "") == client.get(page).text
