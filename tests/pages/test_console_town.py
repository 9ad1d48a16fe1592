"""The municipality staff console over HTTP on both engines: program settings, grants one by
one and in bulk, the job page and its refused rows, shops and terminal keys, statements;
another town's staff and forms without a CSRF token are refused and change nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from mykey import ledger
from mykey.config import Settings
from mykey.identity.keys import authenticate
from mykey.identity.staff import add_staff
from mykey.ledger import AccountKind
from mykey.municipalities.registry import MunicipalityRecord, upsert
from mykey.points.program_setup import Rule, get_program, set_up_program
from mykey.web.app import create_app
from tests.builders import jobs_finished, residents_in_bulk
from tests.conftest import Database

TOSHIMA, TENRI = "131164", "292044"
PASSWORD = "staff password 1"


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    uow = database.uow()
    upsert(
        uow,
        [
            MunicipalityRecord(TOSHIMA, "東京都", "豊島区", "としまく"),
            MunicipalityRecord(TENRI, "奈良県", "天理市", "てんりし"),
        ],
    )
    for code, name in ((TOSHIMA, "豊島区ポイント"), (TENRI, "天理市ポイント")):
        set_up_program(
            uow,
            municipality=code,
            point_name=name,
            terms="",
            validity={},
            usable_at=["shop", "museum"],
            rules=[Rule("walk", "ウォーク", 500)],
            annual_budget=1_000_000,
        )
    add_staff(
        uow, username="toshima", password=PASSWORD, role="municipality_staff", municipality=TOSHIMA
    )
    add_staff(
        uow, username="tenri", password=PASSWORD, role="municipality_staff", municipality=TENRI
    )
    residents_in_bulk(uow, ["AB123456", "CD234567", "EF345678"])
    app = create_app(Settings(database_url=database.url, environment="test"), clock=database.clock)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found
    return found.group(1)


class _Fields(HTMLParser):
    """The fields of one form as a browser reads them: id → name (entities decoded)."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action = action
        self.inside = False
        self.names: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = found.get("action", "").endswith(self.action)
        elif self.inside and tag in ("input", "select", "textarea") and "name" in found:
            self.names[found.get("id") or found["name"]] = found["name"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def field_names(html: str, action: str) -> dict[str, str]:
    """What a browser sends each field of the form posting to `action` as (by the field's id)."""
    parser = _Fields(action)
    parser.feed(html)
    return parser.names


def bulk_form(html: str, **by_id: str) -> dict[str, str]:
    """The bulk grant form filled as a person would: values by the fields' ids, sent under
    the names the page gives them."""
    names = field_names(html, "/grants/bulk")
    data = {names["csrf_token"]: csrf(html), names["key"]: hidden(html, "key")}
    return data | {names[field]: value for field, value in by_id.items()}


def login(client: TestClient, username: str) -> None:
    token = csrf(client.get("/login").text)
    done = client.post(
        "/login",
        data={"csrf_token": token, "username": username, "password": PASSWORD},
        follow_redirects=False,
    )
    assert done.status_code == 303


def balance(database: Database, who: str, code: str = TOSHIMA) -> int:
    uow = database.uow()
    account = ledger.open_account(uow, ledger=code, kind=AccountKind.WALLET, owner=who)
    return ledger.balance(uow, account.id).available


def test_staff_grant_one_resident_once_even_if_the_form_is_sent_twice(
    client: TestClient, database: Database
) -> None:
    login(client, "toshima")
    form = client.get(f"/console/m/{TOSHIMA}/grants").text
    fields = {"csrf_token": csrf(form), "key": hidden(form, "key"), "mykey_id": "ab123456"}
    fields |= {"activity": "", "points": "300", "reason": "出産祝い", "event": ""}
    for _ in range(2):
        done = client.post(f"/console/m/{TOSHIMA}/grants/one", data=fields)
        assert done.status_code == 200
        assert "AB123456 さんに 300 ポイントを付与しました" in done.text
    assert balance(database, "AB123456") == 300


def test_a_bad_grant_shows_the_domain_error_next_to_the_field_and_grants_nothing(
    client: TestClient, database: Database
) -> None:
    login(client, "toshima")
    form = client.get(f"/console/m/{TOSHIMA}/grants?lang=en").text
    fields = {"csrf_token": csrf(form), "key": hidden(form, "key"), "mykey_id": "ZZ999999"}
    fields |= {"activity": "walk", "points": "", "reason": "walk", "event": ""}
    refused = client.post(f"/console/m/{TOSHIMA}/grants/one", data=fields)
    assert refused.status_code == 422
    assert 'id="mykey_id-error"' in refused.text
    assert 'aria-invalid="true"' in refused.text
    no_points = client.post(
        f"/console/m/{TOSHIMA}/grants/one", data=fields | {"mykey_id": "AB123456", "activity": ""}
    )
    assert no_points.status_code == 422
    assert "Choose an activity or enter points." in no_points.text
    assert database.count("ledger_transfers") == 0


def test_a_bulk_grant_file_becomes_a_job_with_progress_and_its_refused_rows(
    client: TestClient, database: Database
) -> None:
    login(client, "toshima")
    form = client.get(f"/console/m/{TOSHIMA}/grants").text
    good = b"mykey_id\r\nAB123456\r\nCD234567\r\n"
    sent = client.post(
        f"/console/m/{TOSHIMA}/grants/bulk",
        data=bulk_form(form, bulk_activity="walk"),
        files={"file": ("walk.csv", good, "text/csv")},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    job_url = sent.headers["location"]
    jobs_finished(database.engine)  # the app's runner takes the job at once
    page = client.get(job_url)
    assert "完了しました：2 人に合計 1,000 ポイントを付与しました。" in page.text
    assert '<progress id="job-progress" max="2" value="2">' in page.text
    state = client.get(job_url + "/state").json()
    assert state | {"status": "done", "finished": True, "granted": 2, "points": 1000} == state
    assert balance(database, "AB123456") == balance(database, "CD234567") == 500

    form = client.get(f"/console/m/{TOSHIMA}/grants").text
    bad = "mykey_id,points,reason\r\nEF345678,100,清掃\r\nNOBODY99,100,清掃\r\n".encode()
    sent = client.post(
        f"/console/m/{TOSHIMA}/grants/bulk",
        data={"csrf_token": csrf(form), "key": hidden(form, "key")},
        files={"file": ("list.csv", bad, "text/csv")},
    )
    jobs_finished(database.engine)
    sent = client.get(sent.url)
    assert "付与できない行" in sent.text and "NOBODY99" in sent.text
    refused_csv = re.search(r'href="([^"]+/refused\.csv)"', sent.text)
    assert refused_csv
    download = client.get(refused_csv.group(1))
    assert download.headers["content-type"].startswith("text/csv")
    assert "NOBODY99" in download.text and "EF345678" not in download.text
    assert balance(database, "EF345678") == 0  # the whole file, or nothing


def test_the_bulk_form_names_its_fields_as_the_server_reads_them(client: TestClient) -> None:
    login(client, "toshima")
    names = field_names(client.get(f"/console/m/{TOSHIMA}/grants").text, "/grants/bulk")
    assert names == {
        "csrf_token": "csrf_token",
        "key": "key",
        "file": "file",
        "bulk_activity": "bulk_activity",
        "bulk_event": "bulk_event",
        "bulk_points": "bulk_points",
        "bulk_reason": "bulk_reason",
    }


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_an_id_only_list_with_points_and_a_reason_is_granted_from_the_form(
    client: TestClient, database: Database, lang: str
) -> None:
    login(client, "toshima")
    form = client.get(f"/console/m/{TOSHIMA}/grants?lang={lang}").text
    sent = client.post(
        f"/console/m/{TOSHIMA}/grants/bulk",
        data=bulk_form(form, bulk_points="250", bulk_reason="敬老の日"),
        files={"file": ("ids.csv", b"mykey_id\r\nAB123456\r\nEF345678\r\n", "text/csv")},
    )
    jobs_finished(database.engine)
    sent = client.get(sent.url)
    assert sent.status_code == 200
    done = {"ja": "2 人に合計 500 ポイントを付与しました", "en": "500 points granted to 2"}
    assert done[lang] in sent.text
    assert balance(database, "AB123456") == balance(database, "EF345678") == 250


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_job_refused_as_a_whole_says_why_and_shows_no_finished_bar(
    client: TestClient, database: Database, lang: str
) -> None:
    login(client, "toshima")
    form = client.get(f"/console/m/{TOSHIMA}/grants?lang={lang}").text
    sent = client.post(  # an eligibility list, but neither an activity nor points chosen
        f"/console/m/{TOSHIMA}/grants/bulk",
        data=bulk_form(form),
        files={"file": ("ids.csv", b"mykey_id\r\nAB123456\r\n", "text/csv")},
    )
    jobs_finished(database.engine)
    page = client.get(sent.url).text
    said = {
        "ja": (
            "付与できませんでした",
            "対象者リストには活動名、またはポイント数と理由の指定が必要です",
        ),
        "en": ("Not granted", "or its points and reason. Nothing was granted."),
    }[lang]
    assert said[0] in page and said[1] in page
    assert "<progress" not in page
    assert ("付与できない行があります" if lang == "ja" else "Some rows were refused") not in page
    listed = client.get(f"/console/m/{TOSHIMA}/grants?lang={lang}").text
    assert said[0] in listed  # the list of earlier jobs says the same
    assert database.count("ledger_transfers") == 0


def test_a_bulk_grant_without_a_file_or_a_token_changes_nothing(
    client: TestClient, database: Database
) -> None:
    login(client, "toshima")
    form = client.get(f"/console/m/{TOSHIMA}/grants").text
    empty = client.post(
        f"/console/m/{TOSHIMA}/grants/bulk",
        data=bulk_form(form),
        files={"file": ("empty.csv", b"", "text/csv")},
    )
    assert empty.status_code == 422
    # a chosen file of 0 bytes is named as such; no file chosen (a browser sends the part with
    # an empty filename) asks for one
    assert "選んだファイルは空です" in empty.text
    none = client.post(
        f"/console/m/{TOSHIMA}/grants/bulk",
        data=bulk_form(form),
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert none.status_code == 422
    assert "ファイルを選んでください。" in none.text
    forged = client.post(
        f"/console/m/{TOSHIMA}/grants/bulk",
        data={"key": "x", "bulk_activity": "walk"},
        files={"file": ("walk.csv", b"mykey_id\r\nAB123456\r\n", "text/csv")},
    )
    assert forged.status_code == 403
    assert database.count("grant_jobs") == 0
    assert database.count("ledger_transfers") == 0


def test_staff_of_another_town_are_refused_everywhere(
    client: TestClient, database: Database
) -> None:
    login(client, "tenri")
    for path in ("", "/program", "/grants", "/rankings", "/shops", "/picks", "/settlements"):
        refused = client.get(f"/console/m/{TOSHIMA}{path}")
        assert refused.status_code == 403, path
        assert "このページは表示できません" in refused.text
    token = csrf(client.get(f"/console/m/{TENRI}/grants").text)
    posted = client.post(
        f"/console/m/{TOSHIMA}/grants/one",
        data={"csrf_token": token, "key": "k1", "mykey_id": "AB123456", "points": "5"}
        | {"reason": "x"},
    )
    assert posted.status_code == 403
    assert database.count("ledger_transfers") == 0
    client.cookies.clear()
    assert client.get(f"/console/m/{TOSHIMA}", follow_redirects=False).status_code == 303


def test_program_settings_are_saved_and_bad_values_are_shown_by_their_field(
    client: TestClient, database: Database
) -> None:
    login(client, "toshima")
    form = client.get(f"/console/m/{TOSHIMA}/program?lang=en").text
    assert 'value="豊島区ポイント"' in form
    base = {"csrf_token": csrf(form), "point_name": "としまポイント", "terms": "規約"}
    saved = client.post(
        f"/console/m/{TOSHIMA}/program",
        content="&".join(
            f"{k}={v}"
            for k, v in [
                *base.items(),
                ("usable_at", "shop"),
                ("usable_at", "pool"),
                ("validity", "12"),
                ("budget", "5000"),
            ]
        ).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert saved.status_code == 200 and "The settings were saved." in saved.text
    program = get_program(database.uow(), TOSHIMA)
    assert (program.point_name, program.usable_at, program.annual_budget) == (
        "としまポイント",
        ("shop", "pool"),
        5000,
    )
    assert program.validity["budget"] == 12 and len(program.rules) == 1
    bad = client.post(
        f"/console/m/{TOSHIMA}/program",
        data=base | {"point_name": "", "budget": "-3"},
    )
    assert bad.status_code == 422
    assert 'id="point_name-error"' in bad.text and 'id="budget-error"' in bad.text
    assert 'id="usable_at-error"' in bad.text
    assert get_program(database.uow(), TOSHIMA).point_name == "としまポイント"


def test_a_shop_is_registered_and_its_terminal_key_is_shown_once(
    client: TestClient, database: Database
) -> None:
    login(client, "toshima")
    form = client.get(f"/console/m/{TOSHIMA}/shops").text
    added = client.post(
        f"/console/m/{TOSHIMA}/shops",
        data={"csrf_token": csrf(form), "shop_id": "ikebukuro-1", "name": "池袋商店"}
        | {"kind": "shop"},
    )
    assert added.status_code == 200 and "池袋商店" in added.text
    issued = client.post(
        f"/console/m/{TOSHIMA}/shops/ikebukuro-1/terminal-key", data={"csrf_token": csrf(form)}
    )
    key = re.search(r'data-testid="issued-key">([^<]+)<', issued.text)
    assert key and issued.headers["cache-control"] == "no-store"
    principal = authenticate(database.uow(), key.group(1))
    assert (principal.role.value, principal.provider_id) == ("terminal", "ikebukuro-1")
    assert key.group(1) not in client.get(f"/console/m/{TOSHIMA}/shops").text
    login(client, "tenri")
    token = csrf(client.get(f"/console/m/{TENRI}/shops").text)
    stolen = client.post(
        f"/console/m/{TENRI}/shops/ikebukuro-1/terminal-key", data={"csrf_token": token}
    )
    assert stolen.status_code == 403
    taken = client.post(
        f"/console/m/{TENRI}/shops",
        data={"csrf_token": token, "shop_id": "ikebukuro-1", "name": "x", "kind": "shop"},
    )
    assert taken.status_code == 422
    assert database.count("api_keys") == 1


def test_rankings_and_an_open_month_say_what_they_can(client: TestClient) -> None:
    login(client, "toshima")
    ranking = client.get(f"/console/m/{TOSHIMA}/rankings")
    assert ranking.status_code == 200 and "この期間の付与はありません。" in ranking.text
    bad = client.get(f"/console/m/{TOSHIMA}/rankings?start=2026-13-01&top=x")
    assert bad.status_code == 422
    month = client.get(f"/console/m/{TOSHIMA}/settlements?month=2026-99")
    assert month.status_code == 422
    zengin = client.get(f"/console/m/{TOSHIMA}/zengin?month=2020-01&transfer_date=nope")
    assert zengin.status_code == 422 and 'id="transfer_date-error"' in zengin.text


def test_picks_are_entered_row_by_row_and_shown_on_point_navi(
    client: TestClient, database: Database
) -> None:
    login(client, "tenri")
    form = client.get(f"/console/m/{TENRI}/picks")
    assert form.status_code == 200 and 'name="title_2"' in form.text
    token = csrf(form.text)
    row = {"title_0": "柿の葉寿司", "shop_0": "天理ふるさと便", "price_0": "1,800"}
    bad = {"title_1": "奈良漬", "shop_1": "天理ふるさと便", "price_1": "二千円"}
    refused = client.post(
        f"/console/m/{TENRI}/picks", data={"csrf_token": token, "rows": "3"} | row | bad
    )
    assert refused.status_code == 422
    assert 'id="price_1-error"' in refused.text and 'id="price_0-error"' not in refused.text
    assert database.count("municipality_picks") == 0  # nothing of a bad form is kept
    wrong_url = {"title_1": "奈良漬", "shop_1": "天理ふるさと便", "price_1": "2500"}
    wrong_url |= {"url_1": "ftp://example.jp/narazuke"}
    refused = client.post(
        f"/console/m/{TENRI}/picks", data={"csrf_token": token, "rows": "3"} | row | wrong_url
    )
    assert refused.status_code == 422 and 'id="url_1-error"' in refused.text
    assert database.count("municipality_picks") == 0
    good = wrong_url | {"url_1": "https://example.jp/narazuke"}
    saved = client.post(
        f"/console/m/{TENRI}/picks",
        data={"csrf_token": token, "rows": "3"} | row | good,
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    assert database.count("municipality_picks") == 2
    listed = client.get(f"/api/v1/municipalities/{TENRI}/picks").json()
    assert [(p["title"], p["price_yen"]) for p in listed["picks"]] == [
        ("柿の葉寿司", 1800),
        ("奈良漬", 2500),
    ]
    assert "柿の葉寿司" in client.get("/navi/picks").text
    # without a token nothing changes
    assert client.post(f"/console/m/{TENRI}/picks", data={"rows": "1"}).status_code == 403
    assert database.count("municipality_picks") == 2


def test_two_staff_members_sending_the_same_list_from_their_forms_grant_it_once(
    client: TestClient, database: Database
) -> None:
    """Each console form carries a key of its own; the same file with the same points and
    reason from a colleague's form is the job already made (issue #13, item 2)."""
    add_staff(
        database.uow(),
        username="toshima-2",
        password=PASSWORD,
        role="municipality_staff",
        municipality=TOSHIMA,
    )
    data = b"mykey_id\r\nAB123456\r\nEF345678\r\n"
    jobs = []
    with TestClient(client.app) as colleague:
        for c, username in ((client, "toshima"), (colleague, "toshima-2")):
            login(c, username)
            form = c.get(f"/console/m/{TOSHIMA}/grants").text
            sent = c.post(
                f"/console/m/{TOSHIMA}/grants/bulk",
                data=bulk_form(form, bulk_points="250", bulk_reason="敬老の日"),
                files={"file": ("ids.csv", data, "text/csv")},
                follow_redirects=False,
            )
            assert sent.status_code == 303, sent.text
            jobs.append(sent.headers["location"])
    assert jobs[0] == jobs[1]
    jobs_finished(database.engine)
    assert balance(database, "AB123456") == balance(database, "EF345678") == 250
