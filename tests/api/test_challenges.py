"""Stateless challenges at the counter (issue #14), over HTTP on SQLite and PostgreSQL: issuing
one touches no database; a forged, expired, another terminal's or reused one is refused, and
nothing is paid."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from mykey.config import Settings
from mykey.identity.simulator import SimulatedCard, SimulatorCA
from mykey.web.app import create_app
from tests.api.conftest import bearer
from tests.api.test_counter import MAEBASHI, keys, town  # noqa: F401 -- fixtures used here
from tests.conftest import Database
from tests.roundtrips import statements as _statements


def _tap(c: TestClient, card: SimulatedCard, terminal: str | None) -> dict[str, str]:
    """A challenge asked for by `terminal` (with its key; None: with no key), signed by the card."""
    headers = bearer(terminal) if terminal else {}
    answer = c.post("/api/v1/card/challenges", headers=headers)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return card.proof(body["challenge_id"], base64.b64decode(body["nonce"]))


def _pay(c: TestClient, terminal: str, card_proof: dict[str, str], key: str) -> Any:
    return c.post(
        "/api/v1/terminal/payments",
        headers=bearer(terminal),
        json={"card_proof": card_proof, "municipality": MAEBASHI, "points": 100, "key": key},
    )


def _balance(c: TestClient, terminal: str, card: SimulatedCard) -> int:
    answer = c.post(
        "/api/v1/terminal/balances",
        headers=bearer(terminal),
        json={"card_proof": _tap(c, card, terminal)},
    )
    assert answer.status_code == 200, answer.text
    return sum(b["balance"] for b in answer.json()["balances"] if b["municipality"] == MAEBASHI)


def test_asking_for_a_challenge_makes_no_database_statement(
    card_client: TestClient,
    town: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    engine: Engine = cast(FastAPI, card_client.app).state.engine
    with _statements(engine) as seen:
        for headers in ({}, bearer(town["museum"]), bearer("not even a key")):
            assert card_client.post("/api/v1/card/challenges", headers=headers).status_code == 201
    assert seen == []  # no statement, no connection taken from the pool
    # and the challenges asked for so are good ones
    assert _pay(card_client, town["museum"], _tap(card_client, cards[0], None), "k1").is_success
    assert _pay(
        card_client, town["museum"], _tap(card_client, cards[0], town["museum"]), "k2"
    ).is_success
    assert database.count("card_challenges") == 0  # no longer written


def test_forged_expired_another_terminals_and_used_challenges_are_refused(
    card_client: TestClient,
    town: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    c, alice = card_client, cards[0]
    museum, shop = town["museum"], town["museum2"]  # two terminals of one place
    before = _balance(c, museum, alice)
    uses = database.count("card_challenge_uses")

    # another terminal's: refused, and still good for the terminal that asked for it
    mine = _tap(c, alice, museum)
    stolen = _pay(c, shop, mine, "k-stolen")
    assert (stolen.status_code, stolen.json()["code"]) == (409, "challenge_not_yours")
    assert database.count("card_challenge_uses") == uses

    # forged: another nonce put in a token, or a token made up
    token = mine["challenge_id"]
    altered = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    for forged_id in (altered, "A" * len(token)):
        forged = alice.proof(forged_id, base64.urlsafe_b64decode(forged_id + "=")[-32:])
        answer = _pay(c, museum, forged, "k-forged")
        assert (answer.status_code, answer.json()["code"]) == (404, "unknown_challenge")

    # expired: a challenge lasts 60 seconds
    late = _tap(c, alice, museum)
    database.clock.advance(seconds=61)
    expired = _pay(c, museum, late, "k-late")
    assert (expired.status_code, expired.json()["code"]) == (409, "challenge_expired")

    # the one who asked may still use its challenge only until it expires: tap again
    paid = _pay(c, museum, _tap(c, alice, museum), "k-paid")
    assert paid.status_code == 201, paid.text
    again = _pay(c, museum, mine | {}, "k-again")
    assert again.json()["code"] == "challenge_expired"

    # used: a good proof sent again under another key
    used_proof = _tap(c, alice, museum)
    assert _pay(c, museum, used_proof, "k-once").status_code == 201
    reused = _pay(c, museum, used_proof, "k-twice")
    assert (reused.status_code, reused.json()["code"]) == (409, "challenge_used")
    anyones = _tap(c, alice, None)  # asked for with no key: anyone's, as before issue #14
    assert _pay(c, shop, anyones, "k-anyone").status_code == 201
    assert _pay(c, museum, anyones, "k-anyone-again").json()["code"] == "challenge_used"

    assert _balance(c, museum, alice) == before - 300  # k-paid, k-once, k-anyone; nothing else
    attempts = database.count("card_proof_attempts")
    assert attempts == 7  # stolen, two forged, late, again (expired), reused, anyone-again


def test_web_processes_sharing_the_key_accept_each_others_challenges_and_a_rotation_ends_them(
    database: Database, ca: SimulatorCA, cards: list[SimulatedCard], tmp_path: Path
) -> None:
    ca.save(tmp_path / "ca")

    def process(**secrets: str) -> FastAPI:
        return create_app(
            Settings(
                database_url=database.url,
                environment="test",
                card_trust_anchors=str(tmp_path / "ca" / "ca.pem"),
                **secrets,  # type: ignore[arg-type] -- secret_key and challenge_key, strings
            ),
            clock=database.clock,
        )

    shared = {"secret_key": "one secret " * 4, "challenge_key": "challenge key one " * 2}
    apps = [process(**shared), process(**shared), process(**shared | {"challenge_key": "2" * 32})]
    first, second, rotated = (TestClient(app) for app in apps)
    try:
        a, b = _tap(first, cards[0], None), _tap(first, cards[0], None)
        assert second.post("/api/v1/card/verifications", json=a).status_code == 200
        assert first.post("/api/v1/card/verifications", json=a).json()["code"] == "challenge_used"
        refused = rotated.post("/api/v1/card/verifications", json=b)
        assert (refused.status_code, refused.json()["code"]) == (404, "unknown_challenge")
        assert _tap(rotated, cards[0], None)  # the new key's challenges are good
    finally:
        for app in apps:
            app.state.engine.dispose()


def test_a_short_challenge_key_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="MYKEY_CHALLENGE_KEY must be at least 32 characters"):
        Settings(environment="test", challenge_key="too short")
