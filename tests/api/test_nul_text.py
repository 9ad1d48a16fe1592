"""Text with the NUL character (U+0000) in a query, a path or a JSON body: PostgreSQL cannot
store it, and psycopg refused it with a DataError that was answered `500 internal_error`
without a line in the log (found by schemathesis over a real `mykey serve` on PostgreSQL). Now
it is the request's fault: 422 `invalid_text` on PostgreSQL; SQLite keeps such text as it is.
Never a 500, nothing written. A database error that is not the request's fault is still a 500,
with its traceback in the log."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import DataError

from mykey import demo
from mykey.config import Settings
from mykey.web.app import create_app
from tests.conftest import Database

# (method, path, JSON body, the code on PostgreSQL)
REQUESTS = [
    ("GET", "/api/v1/municipalities?q=a%00b", None, "invalid_text"),
    ("GET", "/api/v1/municipalities/13116%00", None, "invalid_municipality_code"),
    ("POST", "/api/v1/sessions", {"mykey_id": "MY12\x003456", "password": "x"}, "invalid_text"),
    (
        "POST",
        "/api/v1/card/verifications",
        {"certificate": "AAAA", "challenge_id": "a\x00b", "signature": "AAAA"},
        "invalid_card_proof",  # a challenge id is read without the database (issue #14)
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "code"), REQUESTS, ids=lambda v: str(v)[:30])
def test_text_with_nul_is_refused_not_a_500(
    card_client: TestClient, database: Database, method: str, path: str, body: object, code: str
) -> None:
    demo.load(database.uow())
    transfers = database.count("ledger_transfers")
    answer = card_client.request(method, path, json=body)
    assert answer.status_code < 500, answer.text
    if database.kind == "postgres":
        assert (answer.status_code, answer.json()["code"]) == (422, code), answer.text
    assert database.count("ledger_transfers") == transfers


def test_another_data_error_is_a_logged_500(database: Database) -> None:
    app = create_app(Settings(database_url=database.url, environment="test"))

    @app.get("/data-error-on-purpose")
    def broken() -> None:
        raise DataError("SELECT 1", {}, ValueError("something else"))

    with TestClient(app, raise_server_exceptions=False) as c:
        answer = c.get("/data-error-on-purpose")
    assert (answer.status_code, answer.json()["code"]) == (500, "internal_error")
    # and the exception goes on to the server, which logs its traceback (it was swallowed)
    with TestClient(app) as c, pytest.raises(DataError):
        c.get("/data-error-on-purpose")
    app.state.engine.dispose()
