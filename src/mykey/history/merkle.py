"""RFC 6962 / RFC 9162 Merkle trees: hashing, proofs from stored subtree hashes, verification.

Pure functions, no database. A tree over leaves d(0)…d(n-1):

    MTH({})     = SHA-256()
    MTH({d})    = SHA-256(0x00 ‖ d)                      (the leaf hash)
    MTH(D[n])   = SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n])), k the largest power of 2 < n

Storage model: every *complete* subtree (2^level leaves starting at a multiple of 2^level) is
kept under the key (level, index), level 0 being the leaf hashes; about two hashes per leaf.
Any range the RFC recursion needs splits into O(log n) complete subtrees (`range_keys`), so a
proof costs one read of O(log n) stored hashes (`inclusion_ranges`, `consistency_ranges`, then
`fold`). Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 to the letter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Key = tuple[int, int]  # (level, index) of a complete subtree
Range = tuple[int, int]  # leaves [start, end)


class ProofError(ValueError):
    """A proof that does not verify, or arguments no proof can exist for."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of_subtree(hashes: Sequence[bytes]) -> bytes:
    """The hash of a complete subtree from its 2^k hashes one level (or k levels) down."""
    if not hashes or len(hashes) & (len(hashes) - 1):
        raise ProofError(f"{len(hashes)} hashes are not a complete subtree")
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def root_of(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, iteratively (no recursion depth limit, O(n))."""
    return root_of_pieces([(1, h) for h in hashes])


def root_of_pieces(pieces: Sequence[tuple[int, bytes]]) -> bytes:
    """MTH of a tree given as complete subtrees left to right, (leaves, hash) each, their
    sizes powers of two that never grow from one to the next except by merging (leaf hashes;
    or equal subtrees, then the smaller ones of the tree's right edge)."""
    if not pieces:
        return EMPTY_ROOT
    # Fold complete power-of-two subtrees left to right, then the ragged right edge.
    stack: list[tuple[int, bytes]] = []  # (size, hash), sizes strictly decreasing
    for size, h in pieces:
        value = h
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, value = left_size + size, node_hash(left, value)
        stack.append((size, value))
    value = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        value = node_hash(left, value)
    return value


# ---------------------------------------------------------------------------------------------
# proofs as ranges of leaves (RFC 6962 §2.1.1 and §2.1.2), independent of storage


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """PATH(index, D[size]) as the leaf ranges whose MTH make up the path, leaf side first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    out: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo = lo + k
    out.reverse()
    return out


def consistency_ranges(first: int, second: int) -> list[Range]:
    """PROOF(first, D[second]) as leaf ranges (0 < first <= second; empty when equal)."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    out: list[Range] = []
    lo, hi, m, whole = 0, second, first, True
    while True:
        if m == hi - lo:
            if not whole:
                out.append((lo, hi))
            break
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    out.reverse()
    return out


def range_keys(start: int, end: int) -> list[Key]:
    """The complete subtrees, left to right, whose right fold is MTH(D[start:end]).

    Valid for the ranges the RFC recursion produces (start is a multiple of the largest power
    of two not smaller than end - start)."""
    if end <= start:
        raise ProofError("empty range")
    keys: list[Key] = []
    lo = start
    while lo < end:
        n = end - lo
        k = n if n & (n - 1) == 0 else _split(n)
        level = k.bit_length() - 1
        if lo % k:
            raise ProofError(f"range [{start}, {end}) is not a subtree of an RFC 6962 tree")
        keys.append((level, lo >> level))
        lo += k
    return keys


def fold(hashes: Sequence[bytes]) -> bytes:
    """Right fold of complete-subtree hashes: H(a, H(b, H(c, d)))."""
    value = hashes[-1]
    for left in reversed(hashes[:-1]):
        value = node_hash(left, value)
    return value


NodeReader = Callable[[Iterable[Key]], Mapping[Key, bytes]]


def hashes_for(ranges: Sequence[Range], read: NodeReader) -> list[bytes]:
    """MTH of each range, reading every needed stored subtree hash in one call of `read`."""
    per_range = [range_keys(lo, hi) for lo, hi in ranges]
    wanted = {key for keys in per_range for key in keys}
    got = read(wanted)
    missing = wanted - set(got)
    if missing:
        raise ProofError(f"stored tree is missing subtree hashes {sorted(missing)[:4]}")
    return [fold([got[key] for key in keys]) for keys in per_range]


def root_from(size: int, read: NodeReader) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return hashes_for([(0, size)], read)[0]


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    return hashes_for(inclusion_ranges(index, size), read)


def consistency_proof(first: int, second: int, read: NodeReader) -> list[bytes]:
    if first == second:
        return []
    return hashes_for(consistency_ranges(first, second), read)


def new_subtrees(old_size: int, new_hashes: Sequence[bytes], read: NodeReader) -> dict[Key, bytes]:
    """The complete subtrees that appending `new_hashes` (leaf hashes) after `old_size` leaves
    completes, level 0 included; reads only the O(log n) left siblings already stored."""
    new_size = old_size + len(new_hashes)
    out: dict[Key, bytes] = {(0, old_size + i): h for i, h in enumerate(new_hashes)}
    needed: set[Key] = set()
    level = 1
    while (1 << level) <= new_size:
        first = old_size >> level  # first subtree at this level not complete before
        last = new_size >> level  # one past the last complete now
        if first < last and (2 * first) < (old_size >> (level - 1)):
            needed.add((level - 1, 2 * first))  # its left child completed earlier
        level += 1
    stored = dict(read(needed)) if needed else {}
    level = 1
    while (1 << level) <= new_size:
        for j in range(old_size >> level, new_size >> level):
            left, right = (level - 1, 2 * j), (level - 1, 2 * j + 1)
            lh = out.get(left) or stored.get(left)
            rh = out.get(right) or stored.get(right)
            if lh is None or rh is None:
                raise ProofError(f"stored tree is missing the children of {(level, j)}")
            out[(level, j)] = node_hash(lh, rh)
        level += 1
    return out


# ---------------------------------------------------------------------------------------------
# verification, RFC 9162 §2.1.3.2 and §2.1.4.2


def _check_hashes(*hashes: bytes) -> None:
    for h in hashes:
        if len(h) != HASH_SIZE:
            raise ProofError(f"a hash is {len(h)} bytes, not {HASH_SIZE}")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1–3)."""
    if index >= size or index < 0:
        raise ProofError(f"leaf index {index} is not smaller than tree size {size}")
    _check_hashes(leaf, *proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise `ProofError` unless `proof` shows leaf hash `leaf` at `index` under `root`."""
    _check_hashes(root)
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError("inclusion proof leads to another root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise `ProofError` unless `proof` shows the tree of size `first` is a prefix of the tree
    of size `second` (0 < first). Equal sizes need an empty proof and equal roots."""
    if first < 1:
        raise ProofError("a consistency proof from size 0 is meaningless")
    if first > second:
        raise ProofError(f"size {first} is larger than size {second}")
    if first == second:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError("two different roots for one tree size")
        return
    _check_hashes(first_root, second_root, *proof)
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != first_root:
        raise ProofError("consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("consistency proof does not lead to the second root")
