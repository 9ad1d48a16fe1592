"""The history log over HTTP: public reads that anyone can check, and a resident's receipt
checked offline by the documented script."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mykey.config import Settings
from mykey.history import merkle
from mykey.history.checkpoints import open_checkpoint
from mykey.identity.simulator import SimulatedCard
from mykey.web.app import create_app
from tests.api.conftest import PASSWORD, bearer, proof
from tests.builders import grant, spend, town, wallet
from tests.conftest import LOG_SIGNER, Database


def _b(text: str) -> bytes:
    return base64.b64decode(text)


@pytest.fixture
def client(database: Database, tmp_path: Path, ca: object) -> Iterator[TestClient]:
    ca.save(tmp_path / "ca")  # type: ignore[attr-defined]
    settings = Settings(
        database_url=database.url,
        environment="test",
        card_trust_anchors=str(tmp_path / "ca" / "ca.pem"),
        log_signing_key=LOG_SIGNER.key_string(),
    )
    app = create_app(settings, clock=database.clock)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def test_public_checkpoint_entries_and_proofs(client: TestClient, database: Database) -> None:
    uow = database.uow()
    none_yet = client.get("/api/v1/log/checkpoint")
    assert (none_yet.status_code, none_yet.json()["code"]) == (404, "no_checkpoint")
    t = town(uow)
    w = wallet(uow, t)
    receipts = [grant(uow, t, w, 100 + i) for i in range(3)]
    from mykey.history.log import make_checkpoint

    make_checkpoint(uow, LOG_SIGNER)
    receipts += [spend(uow, t, w, 1) for _ in range(4)]
    make_checkpoint(uow, LOG_SIGNER)

    got = client.get("/api/v1/log/checkpoint")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/plain")
    cp = open_checkpoint(got.text, LOG_SIGNER.verifier())
    assert cp.size == 7

    page = client.get("/api/v1/log/entries", params={"start": 0, "end": 100}).json()["entries"]
    assert [e["index"] for e in page] == list(range(7))
    # A follower rebuilds the root from the entries alone.
    assert merkle.root_of([merkle.leaf_hash(_b(e["leaf"])) for e in page]) == cp.root

    by_id = client.get(
        "/api/v1/log/proofs/inclusion", params={"transfer_id": str(receipts[5].transfer_id)}
    ).json()
    assert by_id["index"] == 5 and by_id["tree_size"] == 7
    merkle.verify_inclusion(
        5, 7, _b(by_id["entry"]["leaf_hash"]), [_b(h) for h in by_id["path"]], cp.root
    )
    old = client.get("/api/v1/log/proofs/inclusion", params={"index": 1, "tree_size": 3}).json()
    merkle.verify_inclusion(
        1, 3, _b(old["entry"]["leaf_hash"]), [_b(h) for h in old["path"]], _b(old["root"])
    )

    c = client.get("/api/v1/log/proofs/consistency", params={"first": 3}).json()
    assert c["second"] == 7
    merkle.verify_consistency(3, 7, _b(c["first_root"]), cp.root, [_b(h) for h in c["path"]])

    for params, code in (
        ({"index": 7}, "not_in_tree"),
        ({"index": 0, "transfer_id": str(receipts[0].transfer_id)}, "index_or_transfer_id"),
        ({"index": 0, "tree_size": 99}, "unknown_tree_size"),
    ):
        r = client.get("/api/v1/log/proofs/inclusion", params=params)
        assert r.status_code in (404, 409, 422) and r.json()["code"] == code, r.json()
    too_many = client.get("/api/v1/log/entries", params={"start": 0, "end": 5000})
    assert (too_many.status_code, too_many.json()["code"]) == (422, "invalid_log_range")


def test_a_resident_checks_their_own_transfer_offline(
    client: TestClient, database: Database, cards: list[SimulatedCard], tmp_path: Path
) -> None:
    client.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(client, cards[0]), "password": PASSWORD, "mykey_id": "MY123456"},
    )
    token = client.post(
        "/api/v1/sessions", json={"mykey_id": "MY123456", "password": PASSWORD}
    ).json()["token"]
    uow = database.uow()
    t = town(uow)
    mine = grant(uow, t, wallet(uow, t, "MY123456"), 500)
    theirs = grant(uow, t, wallet(uow, t, "MY654321"), 700)

    got = client.get(f"/api/v1/me/transfers/{mine.transfer_id}/proof", headers=bearer(token))
    assert got.status_code == 200, got.json()
    receipt = got.json()
    assert receipt["record"]["fields"]["amount"] == 500
    # Another resident's transfer, or none at all, is not found for me.
    for other in (theirs.transfer_id, "not-a-uuid"):
        r = client.get(f"/api/v1/me/transfers/{other}/proof", headers=bearer(token))
        assert (r.status_code, r.json()["code"]) == (404, "transfer_not_found")
    assert client.get(f"/api/v1/me/transfers/{mine.transfer_id}/proof").status_code == 401

    (tmp_path / "proof.json").write_text(json.dumps(receipt))
    (tmp_path / "checkpoint.txt").write_text(receipt["checkpoint"])
    vkey = LOG_SIGNER.verifier().vkey()

    def offline(proof_file: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "mykey.history.verify",
                str(proof_file),
                str(tmp_path / "checkpoint.txt"),
                "--key",
                vkey,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    ok = offline(tmp_path / "proof.json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PROVEN" in ok.stdout
    # Claiming another amount breaks the commitment.
    receipt["record"]["fields"]["amount"] = 5000
    (tmp_path / "forged.json").write_text(json.dumps(receipt))
    forged = offline(tmp_path / "forged.json")
    assert forged.returncode == 1 and "NOT PROVEN" in forged.stdout
