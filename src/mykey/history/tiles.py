"""The log as C2SP tlog-tiles: static, cacheable files anyone can copy and check.

Beside the proof API, the log is served as the files Tessera and Rekor v2 serve
(c2sp.org/tlog-tiles), under the log's prefix `/api/v1/log`:

    checkpoint                        the latest signed checkpoint (text, short-lived)
    tile/<L>/<N>[.p/<W>]              hashes of W consecutive nodes at tree level 8·L
    tile/entries/<N>[.p/<W>]          the leaves (entries) N·256 … N·256+W-1

A full tile holds 256 hashes (8,192 bytes); a partial tile `.p/W` the first W (1–255) of a
tile not yet full. A tile at level L, index N holds the hashes of the complete subtrees of
2^(8·L) leaves numbered N·256 … N·256+W-1; the log stores every complete subtree
(`merkle`), so a tile is one range read. An entry bundle is the leaves' bytes, each behind
its length as a big-endian uint16; a leaf's hash is SHA-256(0x00 ‖ leaf), as in RFC 6962.

Only what the latest signed checkpoint commits to is served: a reader who has the checkpoint
can fetch every tile it needs, and nothing it fetches changes afterwards (a tile's content
is fixed by its path), so tiles are served as immutable and a CDN or a mirror may keep them.

`TileReader` is the other side: it builds any subtree hash, the root, inclusion and
consistency proofs, and checked entries from fetched tiles alone (a witness, an auditor or a
mirror needs no proof API).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Connection, Table, func, select

from mykey.db import UnitOfWork
from mykey.errors import ErrorKind, MyKeyError
from mykey.history import merkle
from mykey.history.models import HistoryNode

NODES = cast(Table, HistoryNode.__table__)
HEIGHT = 8  # tree levels per tile
WIDTH = 1 << HEIGHT  # hashes in a full tile, entries in a full bundle
MAX_LEVEL = 63
MAX_ENTRY = 0xFFFF  # an entry's length is a uint16
_GROUP = re.compile(r"x\d{3}|\d{3}")
_NUMBER = re.compile(r"0|[1-9]\d*")


@dataclass(frozen=True)
class Tile:
    """A tile (`level` ≥ 0) or an entry bundle (`level` None), `width` of its 256 filled."""

    level: int | None
    index: int
    width: int = WIDTH

    @property
    def partial(self) -> bool:
        return self.width < WIDTH

    @property
    def path(self) -> str:
        level = "entries" if self.level is None else str(self.level)
        tail = f".p/{self.width}" if self.partial else ""
        return f"tile/{level}/{index_path(self.index)}{tail}"

    @property
    def tree_level(self) -> int:
        """The tree level of the hashes a tile holds (0 for an entry bundle's leaves)."""
        return HEIGHT * (self.level or 0)


def index_path(n: int) -> str:
    """N as path elements of three digits, all but the last prefixed with x:
    1234067 → x001/x234/067."""
    if n < 0:
        raise ValueError("a tile index is not negative")
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def not_a_tile(path: str) -> MyKeyError:
    return MyKeyError(
        "log_tile_not_found",
        ErrorKind.NOT_FOUND,
        f"The log has no tile {path!r}: tiles are tile/<L>/<N>[.p/<W>] and"
        " tile/entries/<N>[.p/<W>] (c2sp.org/tlog-tiles), up to the latest checkpoint.",
        f"履歴ログにタイル {path!r} はありません。タイルは tile/<L>/<N>[.p/<W>] と"
        " tile/entries/<N>[.p/<W>] で、最新のチェックポイントまでです（c2sp.org/tlog-tiles）。",
        details={"path": path},
    )


def parse(path: str) -> Tile:
    """The tile a path names (after the `tile/` prefix's `tile`), in its one canonical
    spelling only: any other spelling of the same numbers is not found."""
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "tile":
        raise not_a_tile(path)
    head, rest = parts[1], parts[2:]
    width = WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        if not _NUMBER.fullmatch(rest[-1]) or not 1 <= int(rest[-1]) < WIDTH:
            raise not_a_tile(path)
        width = int(rest[-1])
        rest = [*rest[:-2], rest[-2][:-2]]
    if not rest or not all(_GROUP.fullmatch(g) for g in rest):
        raise not_a_tile(path)
    index = 0
    for group in rest:
        index = index * 1000 + int(group.lstrip("x"))
    level: int | None = None
    if head != "entries":
        if not _NUMBER.fullmatch(head) or int(head) > MAX_LEVEL:
            raise not_a_tile(path)
        level = int(head)
    tile = Tile(level, index, width)
    if tile.path != "/".join(parts):  # x000/001, 1/002, … name 1 but are not its spelling
        raise not_a_tile(path)
    return tile


def tiles_at(size: int, level: int) -> int:
    """How many hashes (or entries, level 0) a tree of `size` leaves has at tile level L."""
    return size >> (HEIGHT * level)


def published(tile: Tile, size: int) -> bool:
    """Whether a tree of `size` leaves holds this tile (a full one: all 256 of its hashes)."""
    return tile.index * WIDTH + tile.width <= tiles_at(size, tile.level or 0)


def tile_for(level: int, index: int, size: int) -> Tile:
    """The tile of a tree of `size` leaves holding position `index` of tile level `level`:
    full if that tile is full at this size, else partial."""
    n = index // WIDTH
    filled = tiles_at(size, level) - n * WIDTH
    return Tile(level, n, min(WIDTH, filled))


# ---------------------------------------------------------------------------------------------
# serving


def read(uow: UnitOfWork, tile: Tile) -> bytes:
    """The bytes of a tile or bundle that the latest signed checkpoint commits to."""
    from mykey.history import log  # log imports nothing of the tiles

    size = log.latest_checkpoint(uow).checkpoint.size
    if not published(tile, size):
        raise not_a_tile(tile.path)
    first = tile.index * WIDTH
    if tile.level is None:
        found = log.entries(uow, start=first, end=first + tile.width)
        if len(found) != tile.width:  # the checkpoint says they are there
            raise log.tree_damaged(f"entries {first}…{first + tile.width - 1} are missing")
        return bundle([e.leaf for e in found])
    level = tile.tree_level
    return uow.read(lambda: _hashes(uow.connection, level, first, tile.width))


def _hashes(conn: Connection, level: int, first: int, width: int) -> bytes:
    from mykey.history import log

    query = (
        select(NODES.c.idx, NODES.c.hash)
        .where(NODES.c.level == level, NODES.c.idx >= first, NODES.c.idx < first + width)
        .order_by(NODES.c.idx)
    )
    if conn.dialect.name == "sqlite":  # a value stored as another type (tampered) is none
        query = query.where(func.typeof(NODES.c.hash) == "blob")
    got = {
        int(idx): bytes(value)
        for idx, value in conn.execute(query)
        if isinstance(idx, int) and len(value) == merkle.HASH_SIZE
    }
    missing = [i for i in range(first, first + width) if i not in got]
    if missing:
        raise log.tree_damaged(f"the subtree hash {(level, missing[0])} is missing")
    return b"".join(got[i] for i in range(first, first + width))


def bundle(leaves: Iterable[bytes]) -> bytes:
    out = bytearray()
    for leaf in leaves:
        if len(leaf) > MAX_ENTRY:
            raise ValueError(f"an entry of {len(leaf)} bytes does not fit a bundle")
        out += struct.pack(">H", len(leaf)) + leaf
    return bytes(out)


def unbundle(data: bytes) -> list[bytes]:
    out: list[bytes] = []
    at = 0
    while at < len(data):
        if at + 2 > len(data):
            raise merkle.ProofError("an entry bundle ends inside a length")
        (length,) = struct.unpack_from(">H", data, at)
        if at + 2 + length > len(data):
            raise merkle.ProofError("an entry bundle ends inside an entry")
        out.append(data[at + 2 : at + 2 + length])
        at += 2 + length
    return out


# ---------------------------------------------------------------------------------------------
# reading


class TileReader:
    """The tree of `size` leaves as tiles fetched with `fetch(path) -> bytes` (the path
    relative to the log's prefix, e.g. `tile/0/x001/234`). Every subtree hash is computed
    from tiles; nothing is trusted until the root it gives is the signed checkpoint's
    (`root`); every full tile is checked against the tile above it when fetched, and the
    entries it gives against the level-0 tiles."""

    def __init__(self, fetch: Callable[[str], bytes], size: int) -> None:
        self.fetch = fetch
        self.size = size
        self._tiles: dict[Tile, list[bytes]] = {}
        self.fetched = 0  # tiles and bundles fetched (each once)

    def tile(self, tile: Tile) -> list[bytes]:
        if tile not in self._tiles:
            data = self.fetch(tile.path)
            self.fetched += 1
            if len(data) != tile.width * merkle.HASH_SIZE:
                raise merkle.ProofError(
                    f"{tile.path} is {len(data)} bytes, not {tile.width * merkle.HASH_SIZE}"
                )
            hashes = [data[i : i + merkle.HASH_SIZE] for i in range(0, len(data), merkle.HASH_SIZE)]
            if not tile.partial and tile.level is not None:
                # A full tile is one subtree hash of the tile above; a partial one lies on the
                # tree's right edge, where the root reads every hash it holds.
                parent = self.node(HEIGHT * (tile.level + 1), tile.index)
                if merkle.root_of_subtree(hashes) != parent:
                    raise merkle.ProofError(f"{tile.path} does not hash to the tile above it")
            self._tiles[tile] = hashes
        return self._tiles[tile]

    def forget(self, below: int) -> None:
        """Drop the fetched level-0 tiles of leaves before `below` (a reader that walks the
        entries once keeps one tile of them, not all)."""
        for tile in [t for t in self._tiles if t.level == 0 and (t.index + 1) * WIDTH <= below]:
            del self._tiles[tile]

    def node(self, level: int, index: int) -> bytes:
        """The complete subtree of 2^level leaves numbered from index·2^level."""
        if (index + 1) << level > self.size:
            raise merkle.ProofError(f"the tree of size {self.size} has no subtree {(level, index)}")
        tile_level, below = divmod(level, HEIGHT)
        first = index << below  # its first hash at the tile's level
        tile = tile_for(tile_level, first, self.size)
        return merkle.root_of_subtree(self.tile(tile)[first % WIDTH : first % WIDTH + (1 << below)])

    def nodes(self, keys: Iterable[merkle.Key]) -> Mapping[merkle.Key, bytes]:
        """A `merkle.NodeReader`: proofs and roots built from tiles by the same code that
        builds them from the log's database."""
        return {key: self.node(*key) for key in keys}

    def root(self) -> bytes:
        return merkle.root_from(self.size, self.nodes)

    def inclusion_proof(self, index: int) -> list[bytes]:
        return merkle.inclusion_proof(index, self.size, self.nodes)

    def consistency_proof(self, first: int) -> list[bytes]:
        return merkle.consistency_proof(first, self.size, self.nodes)

    def entries(self, start: int, end: int) -> list[bytes]:
        """Leaves [start, end) from the entry bundles, each checked against its hash in the
        level-0 tile (so, once `root` is the checkpoint's, against the checkpoint)."""
        out: list[bytes] = []
        at = start
        while at < end:
            tile = tile_for(0, at, self.size)
            bundle_tile = Tile(None, tile.index, tile.width)
            leaves = unbundle(self.fetch(bundle_tile.path))
            self.fetched += 1
            if len(leaves) != tile.width:
                raise merkle.ProofError(
                    f"{bundle_tile.path} holds {len(leaves)} entries, not {tile.width}"
                )
            hashes = self.tile(tile)
            for i, leaf in enumerate(leaves):
                if merkle.leaf_hash(leaf) != hashes[i]:
                    n = tile.index * WIDTH + i
                    raise merkle.ProofError(f"entry {n} does not hash to its level-0 tile")
            lo = at - tile.index * WIDTH
            hi = min(end - tile.index * WIDTH, tile.width)
            out.extend(leaves[lo:hi])
            at = tile.index * WIDTH + hi
        return out
