"""R1.2: the My Number is never read, stored or logged.

The simulator plants a fake 12-digit number in the certificates' subject. After a full
scenario (MyKey ID, logins, links, lookups, failed proofs, a renewed and a suspended card)
neither any table nor the logs contain it, nor the certificates' other fields.
"""

from __future__ import annotations

import base64
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mykey.config import Settings
from mykey.db import Base
from mykey.identity.keys import create_key
from mykey.identity.links import add_provider
from mykey.identity.simulator import SimulatedCard, SimulatorCA
from mykey.web.app import create_app
from tests.conftest import Clock, Database

NUMBERS = ("123456789018", "987654321098")


def test_no_number_from_a_certificate_is_ever_stored_or_logged(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ca = SimulatorCA.create(now=Clock().now - timedelta(days=30))
    card, renewed = (
        ca.issue(now=Clock().now - timedelta(days=1), planted_number=n) for n in NUMBERS
    )
    fields = [
        str(attribute.value)
        for c in (card, renewed)
        for attribute in c.certificate.subject
        if len(str(attribute.value)) >= 8  # "JP" is everywhere; names and numbers are not
    ] + [str(c.certificate.serial_number) for c in (card, renewed)]
    assert NUMBERS[0] in fields
    uow = database.uow()
    add_provider(uow, provider_id="A1", name="図書館", kind="library", municipality="402028")
    terminal = create_key(uow, role="terminal", label="desk", provider_id="A1")[0]
    ca.save(tmp_path / "ca")
    app = create_app(
        Settings(
            database_url=database.url,
            environment="test",
            card_trust_anchors=str(tmp_path / "ca" / "ca.pem"),
        ),
        clock=database.clock,
    )

    def proof(c: TestClient, which: SimulatedCard) -> dict[str, str]:
        challenge = c.post("/api/v1/card/challenges").json()
        return which.proof(challenge["challenge_id"], base64.b64decode(challenge["nonce"]))

    with TestClient(app) as c:
        c.post(
            "/api/v1/mykey-ids",
            json={
                "card_proof": proof(c, card),
                "password": "a long password",
                "mykey_id": "MY123456",
            },
        )
        token = c.post("/api/v1/sessions", json={"card_proof": proof(c, card)}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        c.post("/api/v1/me/links", headers=auth, json={"provider_id": "A1", "user_number": "7"})
        c.post(
            "/api/v1/terminal/lookups",
            headers={"Authorization": f"Bearer {terminal}"},
            json={"card_proof": proof(c, card)},
        )
        bad = proof(c, card) | {"signature": base64.b64encode(b"\1" * 256).decode()}
        c.post("/api/v1/card/verifications", json=bad)
        c.post(
            "/api/v1/me/cards",
            headers=auth,
            json={"new_card_proof": proof(c, renewed), "old_card_proof": proof(c, card)},
        )
        c.post(f"/api/v1/me/cards/{card.card_key}/suspend", headers=auth)
        c.post("/api/v1/sessions", json={"card_proof": proof(c, card)})
    app.state.engine.dispose()

    with database.engine.connect() as conn:
        dump = "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in conn.execute(text(f"SELECT * FROM {table.name}"))
        )
    assert "MY123456" in dump  # the scenario did run
    logs = caplog.text
    for value in fields:
        assert value not in dump, f"certificate field {value!r} found in the database"
        assert value not in logs, f"certificate field {value!r} found in the logs"
