"""Shared by the API tests that tap cards: a simulator CA, its cards, and an app that trusts it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mykey.config import Settings
from mykey.identity.simulator import SimulatedCard, SimulatorCA
from mykey.web.app import create_app
from tests.conftest import Clock, Database

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def ca() -> SimulatorCA:
    return SimulatorCA.create(now=Clock().now - timedelta(days=30))


@pytest.fixture(scope="session")
def cards(ca: SimulatorCA) -> list[SimulatedCard]:
    return [ca.issue(now=Clock().now - timedelta(days=1)) for _ in range(3)]


@pytest.fixture
def card_client(database: Database, ca: SimulatorCA, tmp_path: Path) -> Iterator[TestClient]:
    """The app on the test database, on the test clock, trusting the simulator CA."""
    ca.save(tmp_path / "ca")
    settings = Settings(
        database_url=database.url,
        environment="test",
        card_trust_anchors=str(tmp_path / "ca" / "ca.pem"),
    )
    app = create_app(settings, clock=database.clock)
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


def proof(client: TestClient, card: SimulatedCard) -> dict[str, str]:
    """Tap: a fresh challenge from the server, signed by the card."""
    challenge = client.post("/api/v1/card/challenges").json()
    return card.proof(challenge["challenge_id"], base64.b64decode(challenge["nonce"]))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
