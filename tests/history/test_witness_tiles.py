"""A witness catches up by tiles (issue #15): it checks the log's tiles against the signed
checkpoint first, then copies entries in steps of whole bundles, each leaf checked against its
tile as it arrives; a log whose tiles disagree with its checkpoint gets no cosignature and
the witness keeps nothing of that round."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import text

from mykey.config import Settings
from mykey.db import UnitOfWork, make_engine
from mykey.history import log as hlog
from mykey.history import witness
from mykey.history.cosign import Cosigner
from mykey.history.merkle import leaf_hash
from mykey.history.witness import WitnessConfig, WitnessError, follow_once
from mykey.migrations import upgrade
from mykey.web.app import create_app
from tests.api.test_outage import served
from tests.builders import bulk_grant, town
from tests.conftest import LOG_SIGNER, Database
from tests.history.test_log import _disable_append_only, _enable_append_only

WITNESS = Cosigner("witness.tiles.test.invalid", bytes([7]) * 32)


def _grants(uow: UnitOfWork, budget: Any, n: int) -> None:
    bulk_grant(uow, budget, [(f"W{uuid4().hex[:12]}", 5) for _ in range(n)])
    hlog.make_checkpoint(uow, LOG_SIGNER)


@pytest.fixture
def log_url(database: Database) -> Iterator[str]:
    settings = Settings(
        database_url=database.url,
        environment="test",
        log_signing_key=LOG_SIGNER.key_string(),
        log_witnesses=WITNESS.verifier().vkey(),
        log_checkpoint_seconds=0,
        daily_expiry=False,
    )
    app = create_app(settings, clock=database.clock)
    with served(app) as url:
        yield url
    app.state.engine.dispose()


def test_a_witness_catches_up_by_tiles_and_refuses_tiles_its_checkpoint_does_not_sign(
    database: Database, log_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uow = database.uow()
    budget = town(uow).budget.id
    _grants(uow, budget, 1_000)
    engine = make_engine(f"sqlite:///{tmp_path / 'witness.db'}")
    upgrade(engine)
    mine = UnitOfWork(engine)
    config = WitnessConfig(log_url, LOG_SIGNER.verifier(), WITNESS)
    asked: list[str] = []
    real = witness._request

    def counted(url: str, **kwargs: Any) -> bytes:
        asked.append(url.removeprefix(log_url))
        return real(url, **kwargs)

    monkeypatch.setattr(witness, "_request", counted)

    assert follow_once(mine, config).outcome == "cosigned"
    # The tiles first (1,000 = 512 + 256 + 128 + 64 + 32 + 8: one level-1 tile, one partial
    # level-0 tile), then the entries in steps of whole bundles, their tiles as they come.
    assert asked[:3] == [
        "/api/v1/log/checkpoint",
        "/api/v1/log/tile/1/000.p/3",
        "/api/v1/log/tile/0/003.p/232",
    ]
    entries = [a.split("?")[1] for a in asked if "/witness/entries" in a]
    assert entries == ["start=0&end=768", "start=768&end=1000"]
    assert [a for a in asked if "/tile/0/" in a] == [
        "/api/v1/log/tile/0/003.p/232",
        "/api/v1/log/tile/0/000",
        "/api/v1/log/tile/0/001",
        "/api/v1/log/tile/0/002",
    ]

    _grants(uow, budget, 600)
    asked.clear()
    assert follow_once(mine, config).size == 1_600
    entries = [a.split("?")[1] for a in asked if "/witness/entries" in a]
    assert entries == ["start=1000&end=1536", "start=1536&end=1600"]  # from a bundle's edge

    # The log rewrites an entry it has signed, with its leaf's hash (so it still serves the
    # entry), but not the tree above: the level-0 tile no longer hashes to the level-1 tile.
    _grants(uow, budget, 300)
    with database.engine.begin() as conn:
        _disable_append_only(conn, database, "history_nodes")
        leaf = conn.execute(text("SELECT leaf FROM history_leaves WHERE idx = 1700")).scalar_one()
        forged = bytes(leaf[:-1]) + bytes([leaf[-1] ^ 1])
        conn.execute(text("UPDATE history_leaves SET leaf = :l WHERE idx = 1700"), {"l": forged})
        conn.execute(
            text("UPDATE history_nodes SET hash = :h WHERE level = 0 AND idx = 1700"),
            {"h": leaf_hash(forged)},
        )
    _enable_append_only(database, "history_nodes")
    with pytest.raises(WitnessError) as refused:
        follow_once(mine, config)
    assert "do not agree with its checkpoint of size 1900" in str(refused.value)
    assert "tile/0/006 does not hash to the tile above it" in str(refused.value)
    with engine.connect() as conn:  # nothing of the round is kept
        assert conn.execute(text("SELECT count(*) FROM witness_entries")).scalar() == 1_600
        assert conn.execute(text("SELECT max(size) FROM witness_logs")).scalar() == 1_600
    engine.dispose()
