"""The HTTP API over a real database (SQLite and PostgreSQL), through the ASGI app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mykey.config import Settings
from mykey.demo import MUNICIPALITIES
from mykey.migrations import head
from mykey.municipalities.registry import upsert
from mykey.web.app import create_app
from tests.conftest import Database


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    upsert(database.uow(), MUNICIPALITIES)
    app = create_app(Settings(database_url=database.url, environment="test"))
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def test_health_reports_the_database_and_its_migration(
    client: TestClient, database: Database
) -> None:
    body = client.get("/healthz").json()
    assert (body["status"], body["database_state"]) == ("ok", "ok")
    assert body["database"] == {"sqlite": "sqlite", "postgres": "postgresql"}[database.kind]
    assert body["migration"] == head()


def test_openapi_documents_the_api_with_no_outside_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text  # works on a closed network
    assert client.get("/static/docs/swagger-ui-bundle.js").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/api/v1/municipalities/{code}" in spec["paths"]


def test_a_municipality_by_code(client: TestClient) -> None:
    response = client.get("/api/v1/municipalities/434248")
    assert response.status_code == 200
    assert response.json()["name"] == "小国町"


def test_a_wrong_check_digit_is_a_problem_in_japanese_by_default(client: TestClient) -> None:
    response = client.get("/api/v1/municipalities/434249")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "invalid_municipality_code"
    assert "検査数字" in body["detail"]
    english = client.get("/api/v1/municipalities/434249", headers={"Accept-Language": "en-GB"})
    assert "check digit should be 8" in english.json()["detail"]


def test_an_unregistered_code_is_404_and_unknown_paths_too(client: TestClient) -> None:
    response = client.get("/api/v1/municipalities/011002")
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_municipality"
    nowhere = client.get("/api/v1/nowhere")
    assert nowhere.status_code == 404
    assert nowhere.headers["content-type"] == "application/problem+json"


def test_listing_by_prefecture_and_bad_queries(client: TestClient) -> None:
    body = client.get("/api/v1/municipalities", params={"prefecture": "43"}).json()
    assert body["total"] == 4
    assert [m["code"] for m in body["items"]] == ["432041", "433675", "433683", "434248"]
    assert client.get("/api/v1/municipalities", params={"q": "豊島"}).json()["total"] == 1
    for params in ({"prefecture": "48"}, {"limit": "0"}, {"limit": "many"}):
        response = client.get("/api/v1/municipalities", params=params)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


def test_the_home_page_is_japanese_first(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert '<html lang="ja">' in response.text
    assert "自治体ポイント" in response.text


def test_health_says_when_the_database_is_not_migrated_and_ready_refuses(tmp_path: Path) -> None:
    """/healthz is liveness: the process answers 200 and says what is wrong; /readyz keeps
    traffic away until it is mended."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'blank.db'}"))
    with TestClient(app) as c:
        response = c.get("/healthz")
        ready = c.get("/readyz")
    app.state.engine.dispose()
    assert response.status_code == 200
    assert response.json()["database_state"] == "migration_pending"
    assert "mykey migrate" in response.json()["detail"]
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
