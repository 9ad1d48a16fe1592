"""The log as C2SP tlog-tiles: the paths, the widths of a tree, and a reader that rebuilds the
signed root, proofs and entries from tiles alone, which agree with the log's own proofs."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from mykey.db import UnitOfWork
from mykey.errors import MyKeyError
from mykey.history import log as hlog
from mykey.history import merkle, tiles
from mykey.history.tiles import Tile, TileReader
from tests.builders import leaves_in_log
from tests.conftest import LOG_SIGNER, Database
from tests.history.test_log import _disable_append_only


def test_tile_paths_are_spelled_one_way() -> None:
    assert tiles.index_path(1234067) == "x001/x234/067"
    assert tiles.index_path(0) == "000"
    assert Tile(0, 1234067).path == "tile/0/x001/x234/067"
    assert Tile(None, 2, 88).path == "tile/entries/002.p/88"
    for path in ["tile/0/x001/x234/067", "tile/entries/002.p/88", "tile/3/000.p/1"]:
        assert tiles.parse(path).path == path
    assert tiles.parse("tile/1/x001/000") == Tile(1, 1000)
    for wrong in [
        "tile/0/x000/001",  # 1, but not as it is spelled
        "tile/0/1",
        "tile/0/0001",
        "tile/00/000",
        "tile/64/000",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/088",
        "tile/0/x001",
        "tile/0/001/x002",
        "tile/entries",
        "tile/-1/000",
        "tiles/0/000",
        "tile/0/00a",
    ]:
        with pytest.raises(MyKeyError) as refused:
            tiles.parse(wrong)
        assert refused.value.code == "log_tile_not_found", wrong


def test_the_widths_of_a_tree_of_70000_entries_are_the_specifications() -> None:
    """c2sp.org/tlog-tiles' example: 273 full level-0 tiles and one of width 112, one full
    level-1 tile and one of width 17, one level-2 tile of width 1."""
    size = 70_000
    assert [tiles.published(Tile(0, n), size) for n in (272, 273)] == [True, False]
    assert tiles.tile_for(0, 273 * 256, size) == Tile(0, 273, 112)
    assert tiles.published(Tile(0, 273, 112), size)
    assert not tiles.published(Tile(0, 273, 113), size)
    assert tiles.tile_for(1, 0, size) == Tile(1, 0)
    assert tiles.tile_for(1, 256, size) == Tile(1, 1, 17)
    assert tiles.tile_for(2, 0, size) == Tile(2, 0, 1)
    assert not tiles.published(Tile(3, 0, 1), size)


def test_a_reader_rebuilds_the_signed_root_proofs_and_entries_from_tiles(
    uow: UnitOfWork, database: Database
) -> None:
    if database.kind == "postgres":
        pytest.skip(
            "70,000 entries run on SQLite only, to keep the suite under 10 minutes; tiles are"
            " read from PostgreSQL over HTTP by tests/api/test_log_api.py"
        )
    leaves_in_log(database.engine, 70_000)
    signed = hlog.integrate(uow, chunk=35_000)
    root = hlog.make_checkpoint(uow, LOG_SIGNER).checkpoint.root

    def fetch(path: str) -> bytes:
        return tiles.read(uow, tiles.parse(path))

    reader = TileReader(fetch, signed)
    assert reader.root() == root
    # 65,536 + 4,096 + 256 + 64 + 32 + 16 leaves: the level-2, level-1 and last level-0 tiles
    assert reader.fetched == 3
    rng = random.Random(70_000)
    for index in [0, 255, 256, 65_535, 65_536, 69_999, *rng.sample(range(signed), 40)]:
        assert reader.inclusion_proof(index) == hlog.inclusion(uow, index=index).path
    for first in [1, 256, 4_096, 65_536, 69_999, *rng.sample(range(1, signed), 20)]:
        assert reader.consistency_proof(first) == hlog.consistency(uow, first=first).path
    got = reader.entries(65_530, 65_545)
    assert got == [e.leaf for e in hlog.entries(uow, start=65_530, end=65_545)]
    assert reader.entries(69_990, 70_000)[-1] == b"leaf 69999"
    # Only what the checkpoint signs is served.
    with pytest.raises(MyKeyError) as beyond:
        fetch("tile/0/273.p/113")
    assert beyond.value.code == "log_tile_not_found"

    # Changed in the database: a subtree hash, and a leaf.
    with database.engine.begin() as conn:
        _disable_append_only(conn, database, "history_nodes")
        conn.execute(
            text("UPDATE history_nodes SET hash = :h WHERE level = 8 AND idx = 3"),
            {"h": bytes(32)},
        )
        conn.execute(text("UPDATE history_leaves SET leaf = :l WHERE idx = 5000"), {"l": b"x"})
    # A proof built from the changed level-1 tile does not lead to the signed root.
    fresh = TileReader(fetch, signed)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(600, signed, fresh.node(0, 600), fresh.inclusion_proof(600), root)
    # A changed leaf's bundle is not served (it no longer hashes to the signed tree).
    with pytest.raises(MyKeyError) as damaged:
        fetch("tile/entries/019")
    assert damaged.value.code == "log_entry_damaged"
    # A reader sent a bundle that does not match its level-0 tile refuses it.
    lie = tiles.bundle([b"not leaf 0", *(f"leaf {i}".encode() for i in range(1, 256))])
    liar = TileReader(lambda p: lie if p == "tile/entries/000" else fetch(p), signed)
    with pytest.raises(merkle.ProofError):
        liar.entries(0, 10)
