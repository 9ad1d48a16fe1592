"""RFC 6962 / RFC 9162 trees: published vectors, the RFC example, exhaustive small trees."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest

from mykey.history import merkle
from mykey.history.merkle import ProofError
from tests.conftest import SHARED_DATA

VECTORS = SHARED_DATA / "tlog-vectors"


def _ref_mth(hs: list[bytes]) -> bytes:
    """MTH straight from the RFC's recursive definition (the oracle for our stored-node code)."""
    if not hs:
        return merkle.EMPTY_ROOT
    if len(hs) == 1:
        return hs[0]
    k = 1 << ((len(hs) - 1).bit_length() - 1)
    return merkle.node_hash(_ref_mth(hs[:k]), _ref_mth(hs[k:]))


def _ref_path(m: int, hs: list[bytes]) -> list[bytes]:
    if len(hs) <= 1:
        return []
    k = 1 << ((len(hs) - 1).bit_length() - 1)
    if m < k:
        return [*_ref_path(m, hs[:k]), _ref_mth(hs[k:])]
    return [*_ref_path(m - k, hs[k:]), _ref_mth(hs[:k])]


def _ref_proof(m: int, hs: list[bytes], whole: bool = True) -> list[bytes]:
    if m == len(hs):
        return [] if whole else [_ref_mth(hs)]
    k = 1 << ((len(hs) - 1).bit_length() - 1)
    if m <= k:
        return [*_ref_proof(m, hs[:k], whole), _ref_mth(hs[k:])]
    return [*_ref_proof(m - k, hs[k:], False), _ref_mth(hs[:k])]


def test_hasher_vectors() -> None:
    assert merkle.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert merkle.leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert merkle.leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert merkle.node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


EIGHT = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = {
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


def test_roots_of_the_reference_eight_leaf_tree() -> None:
    hashes = [merkle.leaf_hash(d) for d in EIGHT]
    for size, root in ROOTS.items():
        assert merkle.root_of(hashes[:size]).hex() == root


def test_the_rfc_6962_worked_example() -> None:
    """RFC 6962 §2.1.3: seven leaves; paths and proofs named by the subtrees they hash."""
    assert merkle.inclusion_ranges(0, 7) == [(1, 2), (2, 4), (4, 7)]  # b, h, l
    assert merkle.inclusion_ranges(3, 7) == [(2, 3), (0, 2), (4, 7)]  # c, g, l
    assert merkle.inclusion_ranges(4, 7) == [(5, 6), (6, 7), (0, 4)]  # f, j, k
    assert merkle.inclusion_ranges(6, 7) == [(4, 6), (0, 4)]  # i, k
    assert merkle.consistency_ranges(3, 7) == [(2, 3), (3, 4), (0, 2), (4, 7)]  # c, d, g, l
    assert merkle.consistency_ranges(4, 7) == [(4, 7)]  # l
    assert merkle.consistency_ranges(6, 7) == [(4, 6), (6, 7), (0, 4)]  # i, j, k


def _stored_tree(hashes: list[bytes], rng: random.Random) -> dict[merkle.Key, bytes]:
    """Append the leaves in random chunks, as the integrator does, keeping every subtree."""
    store: dict[merkle.Key, bytes] = {}

    def read(keys: Any) -> dict[merkle.Key, bytes]:
        return {k: store[k] for k in keys if k in store}

    size = 0
    while size < len(hashes):
        step = rng.randint(1, 9)
        store.update(merkle.new_subtrees(size, hashes[size : size + step], read))
        size = min(size + step, len(hashes))
    return store


def test_every_proof_of_every_tree_up_to_64_leaves() -> None:
    """Proofs built from stored subtrees equal the RFC recursion and verify with RFC 9162;
    a flipped bit or a wrong index never verifies."""
    rng = random.Random(7)
    hashes = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(64)]
    store = _stored_tree(hashes, rng)

    def read(keys: Any) -> dict[merkle.Key, bytes]:
        return {k: store[k] for k in keys}

    for n in range(1, 65):
        root = merkle.root_from(n, read)
        assert root == _ref_mth(hashes[:n])
        for m in range(n):
            path = merkle.inclusion_proof(m, n, read)
            assert path == _ref_path(m, hashes[:n])
            merkle.verify_inclusion(m, n, hashes[m], path, root)
            if n > 1:
                with pytest.raises(ProofError):
                    merkle.verify_inclusion((m + 1) % n, n, hashes[m], path, root)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, n, read)
            assert proof == _ref_proof(m, hashes[:n])
            first = merkle.root_from(m, read)
            merkle.verify_consistency(m, n, first, root, proof)
            if proof:
                bad = list(proof)
                bad[rng.randrange(len(bad))] = bytes(32)
                with pytest.raises(ProofError):
                    merkle.verify_consistency(m, n, first, root, bad)


def _b(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _vector_files() -> list[Path]:
    return sorted(VECTORS.rglob("*.json")) if VECTORS.is_dir() else []


@pytest.mark.skipif(not VECTORS.is_dir(), reason=f"test vectors not found at {VECTORS}")
def test_transparency_dev_vectors() -> None:
    """All 196 inclusion and consistency vectors of transparency-dev/merkle (testdata/)."""
    files = _vector_files()
    assert len(files) >= 190
    for path in files:
        case = json.loads(path.read_text())
        proof = [_b(p) for p in case["proof"] or []]
        try:
            if "leafIdx" in case:
                merkle.verify_inclusion(
                    case["leafIdx"],
                    case["treeSize"],
                    _b(case["leafHash"]),
                    proof,
                    _b(case["root"]),
                )
            else:
                merkle.verify_consistency(
                    case["size1"], case["size2"], _b(case["root1"]), _b(case["root2"]), proof
                )
        except ProofError:
            assert case["wantErr"], f"{path}: valid proof refused"
        else:
            assert not case["wantErr"], f"{path}: bad proof accepted ({case['desc']})"
