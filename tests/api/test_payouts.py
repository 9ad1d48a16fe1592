"""Bank accounts for settlement over HTTP: each municipality's staff handle only their own
municipality's account and their own shops' accounts; operators handle all; shops' terminals
and staff of other places see nothing; account numbers come back masked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mykey.config import Settings
from mykey.demo import MUNICIPALITIES
from mykey.identity.keys import create_key
from mykey.municipalities.registry import upsert
from mykey.points.program_setup import set_up_program
from mykey.points.shops import set_shop
from mykey.web.app import create_app
from tests.api.conftest import bearer
from tests.conftest import Database

TENRI, MAEBASHI = "292044", "102016"
ACCOUNT = {
    "bank_code": "0001",
    "bank_name": "ミズホ",
    "branch_code": "123",
    "branch_name": "テンリ",
    "deposit_type": 1,
    "account_number": "7654321",
    "holder_name": "テンリホンヤ",
}
PAYING = {
    "requester_code": "0000012345",
    "requester_name": "テンリシ",
    "bank_code": "0162",
    "branch_code": "301",
    "deposit_type": 1,
    "account_number": "1234567",
}


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database.url, environment="test"), clock=database.clock)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


@pytest.fixture
def keys(database: Database) -> dict[str, str]:
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    for code in (TENRI, MAEBASHI):
        set_up_program(
            uow,
            municipality=code,
            point_name="ポイント",
            terms="",
            validity={"budget": None},
            usable_at=["shop"],
        )
    set_shop(uow, shop_id="honya", name="本屋", municipality=TENRI, kind="shop", accepts=[TENRI])
    set_shop(
        uow, shop_id="museum", name="館", municipality=MAEBASHI, kind="shop", accepts=[MAEBASHI]
    )
    return {
        "tenri": create_key(uow, role="municipality_staff", label="t", municipality=TENRI)[0],
        "maebashi": create_key(uow, role="municipality_staff", label="m", municipality=MAEBASHI)[0],
        "operator": create_key(uow, role="operator", label="council")[0],
        "terminal": create_key(uow, role="terminal", label="レジ", provider_id="honya")[0],
        "shop_staff": create_key(uow, role="provider_staff", label="店", provider_id="honya")[0],
    }


def put(client: TestClient, path: str, key: str, body: dict[str, Any]) -> Any:
    return client.put(path, headers=bearer(key), json=body)


def test_staff_register_and_read_their_shops_payout_account_masked(
    client: TestClient, keys: dict[str, str], database: Database
) -> None:
    made = put(client, "/api/v1/shops/honya/payout-account", keys["tenri"], ACCOUNT)
    assert made.status_code == 200, made.json()
    body = made.json()
    assert body["holder_name"] == "ﾃﾝﾘﾎﾝﾔ" and body["bank_name"] == "ﾐｽﾞﾎ"
    assert body["account_number_masked"] == "****321"
    assert body["changed"] is True and body["set_by"].startswith("municipality_staff:")
    assert "7654321" not in made.text

    same = put(client, "/api/v1/shops/honya/payout-account", keys["operator"], ACCOUNT)
    assert same.json()["changed"] is False and same.json()["version"] == body["version"]

    database.clock.advance(hours=1)
    moved = put(
        client,
        "/api/v1/shops/honya/payout-account",
        keys["operator"],
        {**ACCOUNT, "account_number": "1000001", "deposit_type": 2},
    )
    assert moved.status_code == 200 and moved.json()["changed"] is True
    got = client.get("/api/v1/shops/honya/payout-account", headers=bearer(keys["tenri"]))
    assert got.status_code == 200
    assert got.json()["account_number_masked"] == "****001"
    assert got.json()["deposit_type"] == 2
    history = client.get(
        "/api/v1/shops/honya/payout-account/history", headers=bearer(keys["operator"])
    )
    assert [h["account_number_masked"] for h in history.json()] == ["****001", "****321"]
    assert "7654321" not in history.text and "1000001" not in history.text


def test_nobody_else_sees_or_sets_a_shops_payout_account(
    client: TestClient, keys: dict[str, str], database: Database
) -> None:
    assert put(client, "/api/v1/shops/honya/payout-account", keys["tenri"], ACCOUNT).is_success
    for who in ("maebashi", "terminal", "shop_staff"):
        for response in (
            client.get("/api/v1/shops/honya/payout-account", headers=bearer(keys[who])),
            client.get("/api/v1/shops/honya/payout-account/history", headers=bearer(keys[who])),
            put(client, "/api/v1/shops/honya/payout-account", keys[who], ACCOUNT),
        ):
            assert response.status_code == 403, (who, response.json())
            assert response.json()["code"] == "forbidden"
            assert "321" not in response.text
    anonymous = client.get("/api/v1/shops/honya/payout-account")
    assert anonymous.status_code == 401
    # the Maebashi staff may handle their own museum, not Tenri's bookshop
    own = put(client, "/api/v1/shops/museum/payout-account", keys["maebashi"], ACCOUNT)
    assert own.status_code == 200
    assert database.count("shop_payout_accounts") == 2


def test_bad_payout_accounts_are_problems_in_both_languages(
    client: TestClient, keys: dict[str, str], database: Database
) -> None:
    bad = put(
        client,
        "/api/v1/shops/honya/payout-account",
        keys["tenri"],
        {**ACCOUNT, "holder_name": "天理本屋"},
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    problem = bad.json()
    assert problem["code"] == "unconvertible_kana"
    assert problem["details"]["field"] == "holder_name"
    assert (
        "holder_name" in problem["detail_en"] and "振込データに使えません" in problem["detail_ja"]
    )
    long = put(
        client,
        "/api/v1/shops/honya/payout-account",
        keys["tenri"],
        {**ACCOUNT, "account_number": "12345678"},
    )
    assert long.status_code == 422 and long.json()["code"] == "invalid_bank_field"
    missing = client.get("/api/v1/shops/honya/payout-account", headers=bearer(keys["tenri"]))
    assert missing.status_code == 404 and missing.json()["code"] == "no_payout_account"
    ghost = put(client, "/api/v1/shops/ghost/payout-account", keys["operator"], ACCOUNT)
    assert ghost.status_code == 404 and ghost.json()["code"] == "unknown_shop"
    assert database.count("shop_payout_accounts") == 0


def test_a_municipalitys_paying_account_is_its_own(
    client: TestClient, keys: dict[str, str], database: Database
) -> None:
    path = f"/api/v1/municipalities/{TENRI}/bank-account"
    made = put(client, path, keys["tenri"], PAYING)
    assert made.status_code == 200, made.json()
    assert made.json()["requester_name"] == "ﾃﾝﾘｼ"
    assert made.json()["account_number_masked"] == "****567"
    assert "1234567" not in made.text
    assert client.get(path, headers=bearer(keys["operator"])).json()["requester_code"] == (
        "0000012345"
    )
    for who in ("maebashi", "terminal", "shop_staff"):
        for response in (
            client.get(path, headers=bearer(keys[who])),
            put(client, path, keys[who], {**PAYING, "account_number": "7777777"}),
        ):
            assert response.status_code == 403, (who, response.json())
            assert response.json()["code"] == "forbidden"
    savings = put(client, path, keys["tenri"], {**PAYING, "deposit_type": 4})
    assert savings.status_code == 422 and savings.json()["code"] == "invalid_deposit_type"
    assert database.count("municipality_bank_accounts") == 1
    none = client.get(
        f"/api/v1/municipalities/{MAEBASHI}/bank-account", headers=bearer(keys["maebashi"])
    )
    assert none.status_code == 404 and none.json()["code"] == "no_paying_account"
