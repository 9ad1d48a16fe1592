"""The history log over HTTP: public reads that anyone can check, and a resident's receipt
checked offline by the documented script."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mykey.config import Settings
from mykey.history import merkle
from mykey.history.checkpoints import open_checkpoint
from mykey.history.log import make_checkpoint
from mykey.history.tiles import TileReader
from mykey.identity.simulator import SimulatedCard
from mykey.web.app import create_app
from tests.api.conftest import PASSWORD, bearer, proof
from tests.builders import bulk_grant, grant, spend, town, wallet
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


def _tamper(database: Database, *statements: str) -> None:
    """What an attacker with database access does: the append-only triggers off, rows changed
    (PostgreSQL's triggers go back on at once: its test database is shared by the session)."""
    tables = ("history_leaves", "history_nodes", "history_checkpoints")
    with database.engine.begin() as conn:
        if database.kind == "postgres":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            for table in tables:
                for action in ("update", "delete"):
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{action}"))
        for sql in statements:
            conn.execute(text(sql))


@pytest.mark.tampers_ledger
def test_a_damaged_entry_is_named_by_the_public_reads_never_a_500(
    client: TestClient, database: Database
) -> None:
    """Issue #13 item 10: the entries and proof endpoints read the stored rows as they are. A
    leaf changed, deleted, wrongly typed or moved, an index that is not a number, a subtree
    hash or a checkpoint that is not what the log signed: each answer is a 409 problem naming
    the damaged entry (or what can be checked), never a 500."""
    uow = database.uow()
    t = town(uow)
    w = wallet(uow, t)
    for i in range(8):
        grant(uow, t, w, 100 + i)
    from mykey.history.log import make_checkpoint

    make_checkpoint(uow, LOG_SIGNER)
    sqlite = database.kind == "sqlite"

    def entries(start: int, end: int) -> Any:
        return client.get("/api/v1/log/entries", params={"start": start, "end": end})

    def inclusion(index: int) -> Any:
        return client.get("/api/v1/log/proofs/inclusion", params={"index": index})

    def damaged(answer: Any, index: int) -> None:
        assert answer.status_code == 409, answer.text
        body = answer.json()
        assert body["code"] == "log_entry_damaged" and body["details"]["index"] == index, body
        assert f"{index}" in body["detail_en"] and "mykey audit" in body["detail_en"]

    assert entries(0, 8).status_code == 200

    # a leaf's bytes changed: named; the entries before and after it are still served
    twice = "CAST(leaf || leaf AS BLOB)" if sqlite else "leaf || leaf"
    _tamper(database, f"UPDATE history_leaves SET leaf = {twice} WHERE idx = 2")
    damaged(entries(0, 8), 2)
    damaged(inclusion(2), 2)
    assert [e["index"] for e in entries(3, 8).json()["entries"]] == [3, 4, 5, 6, 7]
    good = inclusion(5).json()
    merkle.verify_inclusion(
        5, 8, _b(good["entry"]["leaf_hash"]), [_b(h) for h in good["path"]], _b(good["root"])
    )

    # a leaf deleted, and one of the wrong type (TEXT that is not UTF-8 / empty bytes)
    _tamper(
        database,
        "DELETE FROM history_leaves WHERE idx = 4",
        "UPDATE history_leaves SET leaf = CAST(X'FF00FE' AS TEXT) WHERE idx = 6"
        if sqlite
        else "UPDATE history_leaves SET leaf = ''::bytea WHERE idx = 6",
    )
    damaged(entries(3, 8), 4)
    damaged(inclusion(4), 4)
    damaged(entries(5, 8), 6)
    damaged(inclusion(6), 6)

    # a leaf moved far beyond the tree, and (SQLite) an index that is not a number
    _tamper(
        database,
        "UPDATE history_leaves SET idx = 1000 WHERE idx = 7",
        *(["UPDATE history_leaves SET idx = 'one' WHERE idx = 1"] if sqlite else []),
    )
    damaged(entries(7, 8), 7)
    damaged(inclusion(7), 7)
    if sqlite:
        damaged(entries(0, 2), 1)
        with database.engine.connect() as conn:
            moved = conn.execute(
                text("SELECT record_id FROM history_leaves WHERE idx = 'one'")
            ).scalar_one()
        answer = client.get("/api/v1/log/proofs/inclusion", params={"transfer_id": moved})
        assert (answer.status_code, answer.json()["code"]) == (409, "log_tree_damaged")
    assert entries(0, 1).status_code == 200
    assert client.get("/api/v1/log/proofs/consistency", params={"first": 3}).status_code == 200

    # a stored subtree hash of the wrong type or gone: the entry it stands for is named
    _tamper(
        database,
        "UPDATE history_nodes SET hash = CAST(X'FF00' AS TEXT) WHERE level = 0 AND idx = 0"
        if sqlite
        else "DELETE FROM history_nodes WHERE level = 0 AND idx = 0",
        "DELETE FROM history_nodes WHERE level = 1 AND idx = 0",
    )
    damaged(entries(0, 1), 0)
    for path, params in (
        ("/api/v1/log/proofs/inclusion", {"index": 3}),
        ("/api/v1/log/proofs/consistency", {"first": 3}),
    ):
        answer = client.get(path, params=params)
        assert answer.status_code == 409, answer.text
        assert answer.json()["code"] == "log_tree_damaged", answer.json()

    # a checkpoint row that is not a signed checkpoint
    _tamper(
        database,
        "INSERT INTO history_checkpoints (size, root, note, created_at)"
        " VALUES (500, X'00', 'junk', '2026-01-01 00:00:00')"
        if sqlite
        else "INSERT INTO history_checkpoints (size, root, note, created_at)"
        " VALUES (500, '\\x00', 'junk', now())",
    )
    answer = client.get("/api/v1/log/checkpoint")
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "log_checkpoint_damaged"
    assert answer.json()["details"]["size"] == 500
    answer = inclusion(0)
    assert answer.status_code == 409 and answer.json()["code"] == "log_checkpoint_damaged"


def test_the_log_is_served_as_tiles_a_reader_checks_against_the_checkpoint(
    client: TestClient, database: Database
) -> None:
    """c2sp.org/tlog-tiles under /api/v1/log: a follower needs only the checkpoint and
    immutable files, which a CDN or a mirror can keep."""
    uow = database.uow()
    assert client.get("/api/v1/log/tile/0/000.p/1").json()["code"] == "no_checkpoint"
    t = town(uow)
    bulk_grant(uow, t.budget.id, [(f"T{i:05d}", 1 + i % 7) for i in range(600)])
    make_checkpoint(uow, LOG_SIGNER)
    note = client.get("/api/v1/log/checkpoint").text
    cp = open_checkpoint(note, LOG_SIGNER.verifier())
    assert cp.size == 600  # two full level-0 tiles and one of width 88; level 1: width 2

    full = client.get("/api/v1/log/tile/0/001")
    assert full.status_code == 200 and len(full.content) == 256 * 32
    assert full.headers["content-type"] == "application/octet-stream"
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert len(client.get("/api/v1/log/tile/0/002.p/88").content) == 88 * 32
    assert len(client.get("/api/v1/log/tile/1/000.p/2").content) == 2 * 32
    bundle = client.get("/api/v1/log/tile/entries/002.p/88")
    assert bundle.status_code == 200 and "immutable" in bundle.headers["cache-control"]

    fetched: list[str] = []

    def fetch(path: str) -> bytes:
        fetched.append(path)
        got = client.get(f"/api/v1/log/{path}")
        assert got.status_code == 200, (path, got.text)
        return got.content

    reader = TileReader(fetch, cp.size)
    assert reader.root() == cp.root
    assert sorted(fetched) == ["tile/0/002.p/88", "tile/1/000.p/2"]  # 512 + 64 + 16 + 8
    proof = client.get("/api/v1/log/proofs/inclusion", params={"index": 300}).json()
    assert reader.inclusion_proof(300) == [_b(h) for h in proof["path"]]
    entries = client.get("/api/v1/log/entries", params={"start": 250, "end": 600}).json()
    assert reader.entries(250, 600) == [_b(e["leaf"]) for e in entries["entries"]]

    for unknown in [
        "tile/0/002",  # not full at this size
        "tile/0/002.p/89",  # wider than the tree
        "tile/entries/003.p/1",
        "tile/2/000.p/1",
        "tile/0/x000/001",  # 1, not as it is spelled
        "tile/0/001.p/0",
        "tile/64/000",
        "tile/0/1",
        "tile/data/000",
    ]:
        got = client.get(f"/api/v1/log/{unknown}", headers={"Accept-Language": "en"})
        assert got.status_code == 404, unknown
        assert got.headers["content-type"] == "application/problem+json"
        assert got.json()["code"] == "log_tile_not_found", unknown
