"""Connections that stay (issue #14): a serving process opens its pool's connections once and
keeps them, however many clients come at once, and a request that finds none free in time
answers 503, not a hang or a 500."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from anyio import to_thread
from fastapi.testclient import TestClient
from sqlalchemy import event

from mykey.config import Settings
from mykey.web.app import create_app
from tests.conftest import Database

CLIENTS = 32


def test_32_clients_at_once_open_no_connection_beyond_the_pool(database: Database) -> None:
    settings = Settings(
        database_url=database.url,
        environment="test",
        database_pool_size=4,
        channel_limits="public=0",  # the pool under test, not the public channel's budget
    )
    app = create_app(settings)
    opened: list[int] = []
    checkouts: list[int] = []
    event.listen(app.state.engine, "connect", lambda *_: opened.append(1))
    event.listen(app.state.engine, "checkout", lambda *_: checkouts.append(1))

    def client_session(client: TestClient) -> list[int]:
        return [
            client.get("/api/v1/municipalities", params={"limit": 5}).status_code for _ in range(5)
        ]

    with TestClient(app) as client:
        threads = client.portal.call(lambda: to_thread.current_default_thread_limiter())
        assert threads.total_tokens == 4  # as many threads for the routes as connections
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = [s for c in pool.map(client_session, [client] * CLIENTS) for s in c]
    app.state.engine.dispose()
    assert answers == [200] * CLIENTS * 5
    assert len(checkouts) >= CLIENTS * 5  # every request used the database
    assert 1 <= len(opened) <= 4  # ... on connections opened once, never one per request


def test_a_request_that_finds_no_connection_free_in_time_answers_503(
    database: Database,
) -> None:
    settings = Settings(
        database_url=database.url,
        environment="test",
        database_pool_size=1,
        database_pool_overflow=0,
        database_pool_timeout=0.2,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        held: Any = app.state.engine.connect()  # the only connection, taken elsewhere
        try:
            response = client.get("/api/v1/municipalities", params={"limit": 5})
        finally:
            held.close()
        again = client.get("/api/v1/municipalities", params={"limit": 5})
    app.state.engine.dispose()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["code"] == "database_unavailable"
    assert again.status_code == 200
