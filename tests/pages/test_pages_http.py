"""Pages and the picks API over HTTP on both engines: roles, CSRF, throttling, no 500s."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mykey.config import Settings
from mykey.errors import ErrorKind, MyKeyError
from mykey.identity.keys import Role, create_key
from mykey.identity.staff import PAGE_SESSION_LIFETIME, add_staff, purge_page_sessions
from mykey.municipalities.registry import MunicipalityRecord, upsert
from mykey.points.expiry import DailyJobs
from mykey.web.app import create_app
from mykey.web.pages.base import browser_language
from tests.conftest import Database

PASSWORD = "staff password 1"


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database.url, environment="test"), clock=database.clock)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


@pytest.fixture
def towns(database: Database) -> None:
    upsert(
        database.uow(),
        [
            MunicipalityRecord("131164", "東京都", "豊島区", "としまく"),
            MunicipalityRecord("292044", "奈良県", "天理市", "てんりし"),
        ],
    )


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def _login(client: TestClient, username: str, password: str) -> TestClient:
    token = _csrf(client.get("/login").text)
    client.post(
        "/login",
        data={"csrf_token": token, "username": username, "password": password},
        follow_redirects=False,
    )
    return client


def test_staff_accounts_are_bound_to_what_they_work_for(database: Database, towns: None) -> None:
    uow = database.uow()
    member = add_staff(
        uow,
        username="Toshima",
        password=PASSWORD,
        role="municipality_staff",
        municipality="131164",
    )
    assert (member.username, member.municipality) == ("toshima", "131164")
    for bad in (
        {"role": "municipality_staff"},  # no municipality
        {"role": "operator", "municipality": "131164"},
        {"role": "partner", "shop_id": "x"},
        {"role": "janitor"},
    ):
        with pytest.raises(MyKeyError) as refused:
            add_staff(uow, username="other", password=PASSWORD, **bad)  # type: ignore[arg-type]
        assert refused.value.kind is ErrorKind.INVALID
    with pytest.raises(MyKeyError, match="taken"):
        add_staff(uow, username="toshima", password=PASSWORD, role="operator")
    assert database.count("staff_accounts") == 1


def test_login_without_a_csrf_token_is_refused_and_signs_nobody_in(
    client: TestClient, database: Database
) -> None:
    add_staff(database.uow(), username="council", password=PASSWORD, role="operator")
    client.get("/login")  # a session exists, but the form is sent without its token
    refused = client.post(
        "/login", data={"username": "council", "password": PASSWORD}, follow_redirects=False
    )
    assert refused.status_code == 403
    assert "送信を受け付けられませんでした" in refused.text
    assert database.count("page_sessions") == 1  # the anonymous one only
    assert client.get("/staff", follow_redirects=False).status_code == 303


def test_a_signed_in_operator_sees_the_staff_menu_and_signing_out_ends_the_session(
    client: TestClient, database: Database
) -> None:
    add_staff(database.uow(), username="council", password=PASSWORD, role="operator")
    anonymous = client.get("/login")
    before = client.cookies.get("mykey_session")
    _login(client, "council", PASSWORD)
    after = client.cookies.get("mykey_session")
    assert before and after and before != after  # a new session on login (no fixation)
    menu = client.get("/staff?lang=en")
    assert menu.status_code == 200 and "Council operator" in menu.text
    old_token = _csrf(anonymous.text)
    stale = client.post("/logout", data={"csrf_token": old_token}, follow_redirects=False)
    assert stale.status_code == 403  # the anonymous session's token is no good any more
    out = client.post("/logout", data={"csrf_token": _csrf(menu.text)}, follow_redirects=False)
    assert out.status_code == 303
    client.cookies.set("mykey_session", after)  # a copied cookie is dead too
    assert client.get("/staff", follow_redirects=False).status_code == 303


def test_failed_staff_logins_slow_down_then_lock(client: TestClient, database: Database) -> None:
    add_staff(database.uow(), username="council", password=PASSWORD, role="operator")
    statuses = []
    for _ in range(5):  # LOCK_AFTER failures, each after the slow-down's wait
        token = _csrf(client.get("/login").text)
        statuses.append(
            client.post(
                "/login",
                data={"csrf_token": token, "username": "council", "password": "wrong one!"},
            ).status_code
        )
        database.clock.advance(seconds=30)
    assert statuses == [401] * 5
    token = _csrf(client.get("/login").text)
    database.clock.advance(seconds=30)
    locked = client.post(
        "/login", data={"csrf_token": token, "username": "council", "password": PASSWORD}
    )
    assert locked.status_code == 429 and "15 分間" in locked.text
    database.clock.advance(minutes=16)
    _login(client, "council", PASSWORD)
    assert client.get("/staff", follow_redirects=False).status_code == 200


def test_picks_are_entered_by_the_towns_own_staff_and_shown_on_point_navi(
    client: TestClient, database: Database, towns: None
) -> None:
    uow = database.uow()
    toshima, _ = create_key(uow, role=Role.MUNICIPALITY_STAFF, label="t", municipality="131164")
    tenri, _ = create_key(uow, role=Role.MUNICIPALITY_STAFF, label="n", municipality="292044")
    body = {
        "picks": [
            {
                "title": "柿の葉寿司",
                "shop": "天理ふるさと便",
                "price_yen": 1800,
                "url": "https://example.jp/kaki",
            },
            {"title": "奈良漬", "shop": "天理ふるさと便", "price_yen": 2500},
        ]
    }
    url = "/api/v1/municipalities/292044/picks"
    other = client.put(url, json=body, headers={"Authorization": f"Bearer {toshima}"})
    assert other.status_code == 403
    anonymous = client.put(url, json=body)
    assert anonymous.status_code == 401
    for bad in ({"price_yen": 1.5}, {"price_yen": -1}, {"url": "javascript:alert(1)"}):
        wrong = {"picks": [{**body["picks"][0], **bad}]}
        answer = client.put(url, json=wrong, headers={"Authorization": f"Bearer {tenri}"})
        assert answer.status_code == 422, bad
    assert database.count("municipality_picks") == 0
    done = client.put(url, json=body, headers={"Authorization": f"Bearer {tenri}"})
    assert done.status_code == 200
    again = client.put(url, json=body, headers={"Authorization": f"Bearer {tenri}"})
    assert again.json() == done.json() and database.count("municipality_picks") == 2
    assert [p["price_yen"] for p in client.get(url).json()["picks"]] == [1800, 2500]
    # Point Navi shows picks of towns with a program; Tenri has none here, so none shown.
    assert "柿の葉寿司" not in client.get("/navi/picks").text


def test_point_navi_pages_answer_on_this_engine(client: TestClient) -> None:
    for path in ("/navi", "/navi/map", "/navi/prefectures/13", "/navi/council", "/navi/faq"):
        assert client.get(path).status_code == 200, path
    assert client.get("/navi/prefectures/00").status_code == 404
    assert client.get("/navi/guides/nobody").status_code == 404


def test_the_daily_jobs_purge_page_sessions_ended_or_expired_a_day_ago(
    client: TestClient, database: Database
) -> None:
    add_staff(database.uow(), username="council", password=PASSWORD, role="operator")
    _login(client, "council", PASSWORD)  # an anonymous session, replaced (ended) at login
    menu = client.get("/staff")
    assert menu.status_code == 200
    assert database.count("page_sessions") == 2
    jobs = DailyJobs(database.uow, database.clock)
    assert purge_page_sessions(database.uow()) == 0  # ended just now: kept a day
    database.clock.advance(hours=25)
    jobs.run_once()
    assert database.count("page_sessions") == 1  # the ended one went
    database.clock.advance(seconds=PAGE_SESSION_LIFETIME.total_seconds() + 86400)
    assert purge_page_sessions(database.uow()) == 1  # the signed-in one expired a day ago
    assert client.get("/staff", follow_redirects=False).status_code == 303


def test_the_sign_in_page_keeps_the_language_asked_for(client: TestClient) -> None:
    """`/counter?lang=en` before signing in leads to the sign-in page in English (and My
    Page's to its own), not to a Japanese one."""
    for path, login in (("/counter", "/login"), ("/mypage", "/mypage/login")):
        sent = client.get(f"{path}?lang=en", follow_redirects=False)
        assert sent.status_code == 303
        assert sent.headers["location"].startswith(f"{login}?")
        assert "lang=en" in sent.headers["location"]
        page = client.get(sent.headers["location"])
        assert page.status_code == 200
        assert '<html lang="en"' in page.text
    japanese = client.get("/counter", follow_redirects=False)
    assert "lang=" not in japanese.headers["location"]


def test_a_first_visit_is_in_the_browsers_language_and_the_switch_is_remembered(
    client: TestClient,
) -> None:
    """A browser set to English opens Point Navi in English; one set to Japanese, or to
    neither, in Japanese; the language switch, once used, wins over the browser's."""
    english = {"Accept-Language": "en-US,en;q=0.9,ja;q=0.5"}
    first = client.get("/navi", headers=english)
    assert first.status_code == 200 and '<html lang="en"' in first.text
    assert "Accept-Language" in first.headers["vary"]
    assert '<html lang="ja"' in client.get("/navi", headers={"Accept-Language": "ja,en"}).text
    assert '<html lang="ja"' in client.get("/navi", headers={"Accept-Language": "de-DE"}).text
    assert '<html lang="ja"' in client.get("/navi").text
    # the switch to Japanese is kept in a cookie: the English browser now gets Japanese
    assert '<html lang="ja"' in client.get("/navi?lang=ja", headers=english).text
    assert '<html lang="ja"' in client.get("/navi/map", headers=english).text


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("en-US,en;q=0.9", "en"),
        ("ja-JP,ja;q=0.9,en;q=0.8", "ja"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "en"),  # a French browser reads English rather than Japanese
        ("en;q=0.2,ja;q=0.8", "ja"),
        ("ja;q=0,en;q=0.1", "en"),  # q=0: not acceptable
        ("EN-gb", "en"),
        ("zh-CN,zh;q=0.9", None),
        ("*", None),
        ("", None),
        ("en;q=abc,ja", "ja"),  # a weight that is not a number counts as none
    ],
)
def test_the_browser_language_follows_the_header_s_weights(
    header: str, language: str | None
) -> None:
    assert browser_language(header) == language
