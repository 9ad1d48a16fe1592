"""Reads over HTTP take no write lock (issue #14): a resident's balances (`GET /api/v1/me/points`,
My Page) and a counter's payments of today (`GET /counter`) run read-only transactions on both
engines; on SQLite they say no `BEGIN IMMEDIATE`, and they answer while another process holds
the write lock (a write then still waits, and answers 503 after the busy timeout)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import make_url

from mykey import demo
from mykey.config import Settings
from mykey.db import READONLY_OPTION
from mykey.identity.simulator import SimulatorCA
from mykey.web.app import create_app
from tests.conftest import Database

BUSY_TIMEOUT = 0.3  # seconds the app's SQLite waits for another writer


@dataclass
class Seen:
    """What the app's engine did: each transaction begun (read-only or not) and each
    statement sent."""

    transactions: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.transactions.clear()
        self.statements.clear()


@pytest.fixture
def app(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Seen]]:
    """The demo's data with a simulator card for MY123456; the app, and what its engine does."""
    monkeypatch.chdir(tmp_path)
    ca = SimulatorCA.create(now=database.clock())
    ca.save(tmp_path / "var" / "cards")
    card = ca.issue(now=database.clock())
    (tmp_path / "var" / "cards" / "cards").mkdir()
    (tmp_path / "var" / "cards" / "cards" / "MY123456.json").write_text(card.to_json())
    uow = database.uow()
    demo.load(uow)
    demo.register_residents(uow, {"MY123456": card})
    demo.register_staff(uow)
    settings = Settings(
        database_url=database.url,
        environment="test",
        card_trust_anchors=str(tmp_path / "var" / "cards" / "ca.pem"),
        database_busy_timeout=BUSY_TIMEOUT,
    )
    application = create_app(settings, clock=database.clock)
    seen = Seen()
    engine = application.state.engine

    @event.listens_for(engine, "begin")
    def _begun(conn: Any) -> None:
        readonly = conn.get_execution_options().get(READONLY_OPTION, False)
        seen.transactions.append("read" if readonly else "write")

    @event.listens_for(engine, "before_cursor_execute")
    def _sent(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.statements.append(statement.strip().upper())

    with TestClient(application) as client:
        yield client, seen
    engine.dispose()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def _signed_in(client: TestClient) -> dict[str, str]:
    """A shop clerk at the museum's counter who took 120 points from MY123456 (the counter
    page's cookie), and MY123456's API session (the bearer header)."""
    form = client.get("/login").text
    home = client.post(
        "/login",
        data={
            "csrf_token": _csrf(form),
            "username": "arts-maebashi",
            "password": demo.DEMO_STAFF_PASSWORD,
            "next": "/counter",
        },
    ).text
    tapped = client.post("/counter/tap", data={"csrf_token": _csrf(home), "card": "MY123456"})
    binding = re.search(r'name="holder_binding" value="([^"]+)"', tapped.text)
    assert binding, tapped.text
    paid = client.post(
        "/counter/payments",
        data={
            "csrf_token": _csrf(home),
            "card": "MY123456",
            "municipality": "102016",
            "points": "120",
            "key": "k-read",
            "holder_binding": binding.group(1),
        },
    )
    assert paid.status_code == 200, paid.text
    # The first look at the counter's home after a payment forgets its customer (a write, by
    # design: the counter keeps no resident); from then on the home page only reads.
    assert client.get("/counter").status_code == 200
    session = client.post(
        "/api/v1/sessions", json={"mykey_id": "MY123456", "password": demo.DEMO_PASSWORD}
    )
    assert session.status_code == 201, session.text
    return {"Authorization": f"Bearer {session.json()['token']}"}


def _balance(client: TestClient, resident: dict[str, str]) -> int:
    got = client.get("/api/v1/me/points", headers=resident)
    assert got.status_code == 200, got.text
    return {h["municipality"]: h["balance"] for h in got.json()["holdings"]}["102016"]


def test_a_get_of_balances_and_of_todays_payments_takes_no_write_lock(
    app: tuple[TestClient, Seen], database: Database
) -> None:
    client, seen = app
    resident = _signed_in(client)
    before = _balance(client, resident)
    for path, shows in (
        ("/api/v1/me/points", str(before)),
        ("/counter", "/cancellation"),  # today's payment, with its cancel button
    ):
        seen.clear()
        got = client.get(path, headers=resident if path.startswith("/api") else {})
        assert got.status_code == 200, got.text
        assert shows in got.text
        assert seen.transactions and set(seen.transactions) == {"read"}, (path, seen.statements)
        assert "BEGIN IMMEDIATE" not in seen.statements
        if database.kind == "sqlite":
            assert seen.statements.count("BEGIN") == len(seen.transactions)
    # a write still takes the write lock: signing in makes a session
    seen.clear()
    _signed_in(client)
    assert "write" in seen.transactions
    if database.kind == "sqlite":
        assert seen.statements.count("BEGIN IMMEDIATE") == seen.transactions.count("write")


def test_reads_answer_while_another_process_holds_the_write_lock(
    app: tuple[TestClient, Seen], database: Database
) -> None:
    if database.kind != "sqlite":
        pytest.skip("PostgreSQL has no database-wide write lock")
    client, _ = app
    resident = _signed_in(client)
    before = _balance(client, resident)
    path = make_url(database.url).database
    assert path
    holder = sqlite3.connect(path, isolation_level=None, timeout=5)
    holder.execute("BEGIN IMMEDIATE")  # a long write elsewhere: a bulk grant, the month's close
    try:
        assert _balance(client, resident) == before
        counter = client.get("/counter")
        assert counter.status_code == 200 and "/cancellation" in counter.text
        mypage = client.get("/api/v1/me/history", headers=resident)
        assert mypage.status_code == 200, mypage.text
        # a write waits for the lock, gives up after the busy timeout: 503, try again
        signing_in = client.post(
            "/api/v1/sessions", json={"mykey_id": "MY123456", "password": demo.DEMO_PASSWORD}
        )
        assert signing_in.status_code == 503, signing_in.text
        assert signing_in.json()["code"] == "database_unavailable"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _signed_in(client)  # once the lock is let go, the write goes through
