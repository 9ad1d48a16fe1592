"""Card proofs over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from mykey.config import Settings
from mykey.identity.simulator import SimulatedCard
from mykey.web.app import create_app
from tests.conftest import LOG_SIGNER, Database


@pytest.fixture
def client(card_client: TestClient) -> TestClient:
    return card_client


@pytest.fixture
def card(cards: list[SimulatedCard]) -> SimulatedCard:
    return cards[0]


def tap(client: TestClient, card: SimulatedCard) -> dict[str, str]:
    response = client.post("/api/v1/card/challenges")
    assert response.status_code == 201
    challenge = response.json()
    assert len(base64.b64decode(challenge["nonce"])) == 32
    return card.proof(challenge["challenge_id"], base64.b64decode(challenge["nonce"]))


def test_a_card_proves_itself_once(client: TestClient, card: SimulatedCard) -> None:
    proof = tap(client, card)

    response = client.post("/api/v1/card/verifications", json=proof)

    assert response.status_code == 200
    assert response.json()["card_key"] == card.card_key
    replay = client.post("/api/v1/card/verifications", json=proof)
    assert replay.status_code == 409
    assert replay.headers["content-type"] == "application/problem+json"
    assert replay.json()["code"] == "challenge_used"


def test_bad_proofs_get_stable_codes(client: TestClient, card: SimulatedCard) -> None:
    forged = tap(client, card) | {"signature": base64.b64encode(b"\0" * 256).decode()}
    assert client.post("/api/v1/card/verifications", json=forged).json()["code"] == "bad_signature"
    garbled = tap(client, card) | {"certificate": "%%%"}
    response = client.post("/api/v1/card/verifications", json=garbled)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_card_proof")
    missing = client.post("/api/v1/card/verifications", json={"challenge_id": "x"})
    assert (missing.status_code, missing.json()["code"]) == (422, "invalid_request")


def test_without_trust_anchors_verification_is_unavailable(database: Database) -> None:
    app = create_app(
        Settings(
            database_url=database.url,
            environment="production",
            secret_key="s3cret-for-this-test",
            log_signing_key=LOG_SIGNER.key_string(),
        )
    )
    with TestClient(app) as c:
        response = c.post(
            "/api/v1/card/verifications",
            json={"certificate": "AA==", "challenge_id": "x" * 36, "signature": "AA=="},
        )
    app.state.engine.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
