"""Strict numbers (issue #13, item 5): a points, yen, count or units field of a request takes a
JSON integer in its range, nothing else, and a bad one has its kind's one code.

`true` used to pay 1 point and `"10"` or `10.0` 10; a payment of 0 was `invalid_points` but one
of 10^19 `invalid_amount`. Now each is refused with 422 and the kind's code, naming the field,
and nothing changes; the domain's own checks give the same codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from mykey import demo, ledger
from mykey.config import Settings
from mykey.errors import MyKeyError
from mykey.identity.keys import create_key
from mykey.identity.simulator import SimulatedCard
from mykey.points.grants import grant_points
from mykey.web.api.numbers import Whole
from mykey.web.app import create_app
from tests.api.conftest import bearer, proof
from tests.conftest import Database

TOSHIMA = "131164"
BAD = [True, False, "10", 10.0, 10.5, None, [10], 0, -1, 10**12 + 1, 10**19]
BAD_IDS = [
    "true",
    "false",
    "string",
    "float",
    "fraction",
    "null",
    "list",
    "0",
    "-1",
    "max+1",
    "1e19",
]


# --- every request's integers are strict and bounded -------------------------------------------


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif getattr(route, "original_router", None) is not None:  # an included router
            yield from _api_routes(route.original_router.routes)


def _loose_integers(schema: Any, where: str, checked: bool = False) -> Iterator[str]:
    """Integer schemas of a pydantic core schema that no `Whole` makes strict and bounded."""
    if isinstance(schema, list):
        for item in schema:
            yield from _loose_integers(item, where, checked)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("int", "float") and not (checked and schema.get("strict")):
        yield f"{where} ({kind})"
    if kind == "bool" and not schema.get("strict"):  # "true", 1 or "yes" are not booleans
        yield f"{where} (bool: use StrictBool)"
    function = schema.get("function", {})
    wrapped = schema.get("type") == "function-wrap" and isinstance(
        getattr(function.get("function"), "__self__", None), Whole
    )
    if schema.get("type") == "model":
        where = schema["cls"].__qualname__
    for key, value in schema.items():
        if key == "fields" and isinstance(value, dict):
            for name, field in value.items():
                yield from _loose_integers(field, f"{where}.{name}", wrapped)
        elif key in ("schema", "items_schema", "values_schema", "choices", "definitions"):
            yield from _loose_integers(value, where, wrapped if key == "schema" else False)
        elif isinstance(value, (dict, list)) and key not in ("metadata", "ref", "serialization"):
            yield from _loose_integers(value, where, False)


def request_models(app: FastAPI) -> set[type[BaseModel]]:
    models: set[type[BaseModel]] = set()
    for route in _api_routes(app.router.routes):
        for param in route.dependant.body_params:
            annotation = param.field_info.annotation
            for candidate in (annotation, *getattr(annotation, "__args__", ())):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    models.add(candidate)
    return models


def test_every_integer_of_every_request_body_is_strict_and_bounded(tmp_path: Any) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/x.db", environment="test"))
    models = request_models(app)
    assert len(models) > 40  # the walk reaches the request schemas of every router
    loose = sorted(
        where for model in models for where in _loose_integers(model.__pydantic_core_schema__, "")
    )
    assert not loose, (
        "Use a type of mykey.web.api.numbers (Points, Yen, Count, Units, … or"
        f" Annotated[int, Whole(KIND, low, high)]) for: {loose}"
    )


def test_the_walk_finds_a_plain_int() -> None:
    class Loose(BaseModel):
        points: int
        nested: dict[str, int | None]
        flag: bool

    assert len(list(_loose_integers(Loose.__pydantic_core_schema__, ""))) == 3


# --- over HTTP: refused with the kind's code, nothing changed ----------------------------------


@pytest.fixture
def town(card_client: TestClient, database: Database, cards: list[SimulatedCard]) -> dict[str, Any]:
    uow = database.uow()
    demo.load(uow)
    demo.register_residents(uow, {"MY123456": cards[0]})
    staff = bearer(create_key(uow, role="municipality_staff", label="t", municipality=TOSHIMA)[0])
    terminal = create_key(uow, role="terminal", label="c", provider_id="toshima-museum")[0]
    tenri = create_key(uow, role="terminal", label="c", provider_id="tenri-honten")[0]
    operator = bearer(create_key(uow, role="operator", label="council")[0])
    return {"staff": staff, "terminal": bearer(terminal), "tenri": bearer(tenri), "op": operator}


def _state(database: Database) -> tuple[int, int]:
    uow = database.uow()
    wallet = ledger.find_account(uow, ledger=TOSHIMA, kind="wallet", owner="MY123456")
    return database.count("ledger_transfers"), ledger.balance(uow, wallet.id).available


def _refused(response: Any, code: str, location: str) -> None:
    body = response.json()
    assert (response.status_code, body["code"]) == (422, code), body
    assert [e["location"] for e in body["errors"]] == [location], body
    assert body["errors"][0]["code"] == code
    assert "from" in body["detail_en"] and "〜" in body["detail_ja"]  # the range is named


@pytest.mark.parametrize("bad", BAD, ids=BAD_IDS)
def test_a_payment_of_a_bad_number_of_points_pays_nothing(
    card_client: TestClient,
    database: Database,
    cards: list[SimulatedCard],
    town: dict[str, Any],
    bad: object,
) -> None:
    c = card_client
    before = _state(database)
    paid = c.post(
        "/api/v1/terminal/payments",
        headers=town["terminal"],
        json={
            "card_proof": proof(c, cards[0]),
            "municipality": TOSHIMA,
            "points": bad,
            "key": "pay-bad",
        },
    )
    _refused(paid, "invalid_points", "body.points")
    assert _state(database) == before


@pytest.mark.parametrize("bad", [True, "10", 10.0, 0, 10**19], ids=str)
def test_grants_yen_counts_and_units_have_one_code_each(
    card_client: TestClient, database: Database, town: dict[str, Any], bad: object
) -> None:
    c = card_client
    before = _state(database)
    grant = c.post(
        f"/api/v1/municipalities/{TOSHIMA}/grants",
        headers=town["staff"],
        json={"mykey_id": "MY123456", "points": bad, "reason": "x", "key": "g-bad"},
    )
    _refused(grant, "invalid_points", "body.points")
    receipt = c.post(
        "/api/v1/terminal/receipt-vouchers",
        headers=town["tenri"],
        json={"receipt_ref": "R-1", "yen": -1 if bad == 0 else bad, "key": "r-bad"},
    )
    _refused(receipt, "invalid_amount", "body.yen")
    award = c.post(
        f"/api/v1/municipalities/{TOSHIMA}/rankings/awards",
        headers=town["staff"],
        json={
            "from": "2026-04-01",
            "to": "2026-09-30",
            "top": bad,
            "points": 100,
            "reason": "x",
            "key": "a-bad",
        },
    )
    _refused(award, "invalid_count", "body.top")
    agreement = c.post(
        "/api/v1/partners/jal/agreements",
        headers=town["op"],
        json={
            "effective_from": "2026-10-20",
            "rate_units": bad,
            "rate_points": 1,
            "minimum": 1,
            "step": 1,
        },
    )
    _refused(agreement, "invalid_units", "body.rate_units")
    assert _state(database) == before


def test_fields_of_two_kinds_wrong_at_once_are_an_invalid_request(
    card_client: TestClient, town: dict[str, Any]
) -> None:
    both = card_client.post(
        "/api/v1/terminal/receipt-vouchers",
        headers=town["tenri"],
        json={"receipt_ref": "R-1", "yen": "1000", "key": 5},
    )
    body = both.json()
    assert (both.status_code, body["code"]) == (422, "invalid_request")
    assert {e["location"] for e in body["errors"]} == {"body.yen", "body.key"}
    assert [e.get("code") for e in body["errors"] if e["location"] == "body.yen"] == [
        "invalid_amount"
    ]


@pytest.mark.parametrize("points", [0, 10**19, True, "10"], ids=str)
def test_the_domain_refuses_bad_points_with_the_same_code(
    database: Database, cards: list[SimulatedCard], points: Any
) -> None:
    uow = database.uow()
    demo.load(uow)
    demo.register_residents(uow, {"MY123456": cards[0]})
    with pytest.raises(MyKeyError) as caught:
        grant_points(
            uow,
            municipality=TOSHIMA,
            mykey_id="MY123456",
            actor="staff:test",
            key="g-0",
            reason="x",
            points=points,
        )
    assert caught.value.code == "invalid_points"
    assert "1,000,000,000,000" in caught.value.message


# --- query strings and paths: every integer states its range -----------------------------------


def _unbounded_parameters(document: dict[str, Any]) -> Iterator[str]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                for option in schema.get("anyOf", [schema]):
                    if option.get("type") == "integer" and not (
                        "minimum" in option and "maximum" in option
                    ):
                        yield f"{method.upper()} {path} {parameter['in']}.{parameter['name']}"


def test_every_integer_parameter_of_every_operation_states_its_range(tmp_path: Any) -> None:
    """A cursor, an offset, a log index or a number of a kind in a query or path has both
    bounds, in the OpenAPI and when the app checks it: nothing is left to the database's own
    overflow (`?before=10**19` used to reach SQLite and come back as number_out_of_range)."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/x.db", environment="test"))
    unbounded = sorted(_unbounded_parameters(app.openapi()))
    assert not unbounded, f"give these a minimum and a maximum: {unbounded}"


RANKING = f"/api/v1/municipalities/{TOSHIMA}/rankings?from=2026-04-01&to=2026-09-30"


@pytest.mark.parametrize(
    ("path", "code", "location"),
    [
        (f"{RANKING}&top=5.0", "invalid_count", "query.top"),  # was the top 5
        (f"{RANKING}&top=0", "invalid_count", "query.top"),
        (f"{RANKING}&minimum=1e3", "invalid_points", "query.minimum"),
        (f"{RANKING}&minimum=true", "invalid_points", "query.minimum"),
        ("/api/v1/municipalities?offset=10000000000000000000", "invalid_request", "query.offset"),
        ("/api/v1/log/entries?start=0&end=10000000000000000000", "invalid_request", "query.end"),
        (
            "/api/v1/operator/mykey-ids/MY123456/history?before=10000000000000000000",
            "invalid_request",
            "query.before",
        ),
    ],
)
def test_a_query_number_out_of_its_range_names_the_parameter(
    card_client: TestClient, town: dict[str, Any], path: str, code: str, location: str
) -> None:
    headers = town["op"] if "/operator/" in path else town["staff"]
    answer = card_client.get(path, headers=headers)
    body = answer.json()
    assert (answer.status_code, body["code"]) == (422, code), body
    assert [e["location"] for e in body["errors"]] == [location], body


@pytest.mark.parametrize("bad", ["10.0", "true", "0", "10000000000000"], ids=str)
def test_a_grant_list_with_bad_points_in_its_query_makes_no_job(
    card_client: TestClient, database: Database, town: dict[str, Any], bad: str
) -> None:
    answer = card_client.post(
        f"/api/v1/municipalities/{TOSHIMA}/grant-jobs?points={bad}&reason=x",
        headers={**town["staff"], "Idempotency-Key": "job-bad", "Content-Type": "text/csv"},
        content=b"mykey_id\nMY123456\n",
    )
    body = answer.json()
    assert (answer.status_code, body["code"]) == (422, "invalid_points"), body
    assert [e["location"] for e in body["errors"]] == ["query.points"]
    assert database.count("grant_jobs") == 0
