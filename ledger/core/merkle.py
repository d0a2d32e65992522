"""RFC 9162 Merkle trees over stored hashes, and proof verification.

Pure Python, no Django: the offline verifiers import this module.

Storage layout. Every hash of a complete subtree is stored once, at a dense
linear position given by :func:`stored_hash_index` (the layout of Go's
``golang.org/x/mod/sumdb/tlog``). Appending leaf ``n`` stores the leaf hash and
the hashes of the subtrees that leaf completes (on average just under two hashes
per leaf), at consecutive positions from ``stored_hash_index(0, n)``: what
:meth:`TreeBuilder.push` returns, resumed from the hashes at ``root_indexes(n)``. The root at any size, an inclusion proof and a consistency proof then
each need at most ``O(log n)`` stored hashes, fetched in one batch: the
``*_indexes`` functions say which, the matching builders combine them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# A reader takes a list of stored-hash indexes and returns their hashes in the same order.
HashReader = Callable[[Sequence[int]], Sequence[bytes]]


class ProofError(ValueError):
    """A proof or its inputs are malformed, or the proof does not verify."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 section 2.1.1: the hash of a leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 section 2.1.1: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


# --- storage index arithmetic -----------------------------------------------------------


def stored_hash_index(level: int, n: int) -> int:
    """Dense storage position of the ``n``-th hash at ``level`` (0 = leaves)."""
    # Level L's n-th hash is written right after level L+1's (2n+1)-th hash, so walk
    # down to level 0 and count how many hashes precede it there.
    for _ in range(level):
        n = 2 * n + 1
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


def stored_hash_count(size: int) -> int:
    """How many hashes a tree of ``size`` leaves has stored."""
    if size == 0:
        return 0
    count = stored_hash_index(0, size - 1) + 1
    i = size - 1
    while i & 1:
        count += 1
        i >>= 1
    return count


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n`` >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def _largest_subtree(n: int) -> tuple[int, int]:
    """The largest power of two ``<= n``, and its log2."""
    level = n.bit_length() - 1
    return 1 << level, level


# --- subtree hashes, roots and proofs from stored hashes ----------------------------------


def _subtree_indexes(lo: int, hi: int, need: list[int]) -> None:
    # [lo, hi) splits into maximal complete subtrees, each stored as one hash.
    while lo < hi:
        k, level = _largest_subtree(hi - lo)
        need.append(stored_hash_index(level, lo >> level))
        lo += k


def _subtree_hash(lo: int, hi: int, hashes: list[bytes], pos: int) -> tuple[bytes, int]:
    count = 0
    while lo < hi:
        k, _ = _largest_subtree(hi - lo)
        count += 1
        lo += k
    parts = hashes[pos : pos + count]
    h = parts[-1]
    for left in reversed(parts[:-1]):
        h = node_hash(left, h)
    return h, pos + count


def root_indexes(size: int) -> list[int]:
    """Stored indexes needed for the root of the tree of ``size`` leaves."""
    need: list[int] = []
    _subtree_indexes(0, size, need)
    return need


def root_from(size: int, hashes: Sequence[bytes]) -> bytes:
    """The root of the tree of ``size`` leaves, from the hashes at :func:`root_indexes`."""
    if size == 0:
        return EMPTY_ROOT
    h, _ = _subtree_hash(0, size, list(hashes), 0)
    return h


def _inclusion_indexes(lo: int, hi: int, n: int, need: list[int]) -> None:
    if lo + 1 == hi:
        return
    k = _split(hi - lo)
    if n < lo + k:
        _inclusion_indexes(lo, lo + k, n, need)
        _subtree_indexes(lo + k, hi, need)
    else:
        _subtree_indexes(lo, lo + k, need)
        _inclusion_indexes(lo + k, hi, n, need)


def _inclusion(lo: int, hi: int, n: int, hashes: list[bytes], pos: int) -> tuple[list[bytes], int]:
    if lo + 1 == hi:
        return [], pos
    k = _split(hi - lo)
    if n < lo + k:
        proof, pos = _inclusion(lo, lo + k, n, hashes, pos)
        h, pos = _subtree_hash(lo + k, hi, hashes, pos)
    else:
        h, pos = _subtree_hash(lo, lo + k, hashes, pos)
        proof, pos = _inclusion(lo + k, hi, n, hashes, pos)
    proof.append(h)
    return proof, pos


def inclusion_indexes(index: int, size: int) -> list[int]:
    """Stored indexes needed to prove leaf ``index`` in the tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    need: list[int] = []
    _inclusion_indexes(0, size, index, need)
    return need


def inclusion_from(index: int, size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 inclusion proof, from the hashes at :func:`inclusion_indexes`."""
    proof, _ = _inclusion(0, size, index, list(hashes), 0)
    return proof


def _consistency_indexes(lo: int, hi: int, m: int, need: list[int]) -> None:
    if m == hi:
        if lo != 0:
            _subtree_indexes(lo, hi, need)
        return
    k = _split(hi - lo)
    if m <= lo + k:
        _consistency_indexes(lo, lo + k, m, need)
        _subtree_indexes(lo + k, hi, need)
    else:
        _subtree_indexes(lo, lo + k, need)
        _consistency_indexes(lo + k, hi, m, need)


def _consistency(
    lo: int, hi: int, m: int, hashes: list[bytes], pos: int
) -> tuple[list[bytes], int]:
    if m == hi:
        if lo == 0:
            # This subtree is exactly the old tree: the verifier knows its hash.
            return [], pos
        h, pos = _subtree_hash(lo, hi, hashes, pos)
        return [h], pos
    k = _split(hi - lo)
    if m <= lo + k:
        proof, pos = _consistency(lo, lo + k, m, hashes, pos)
        h, pos = _subtree_hash(lo + k, hi, hashes, pos)
    else:
        h, pos = _subtree_hash(lo, lo + k, hashes, pos)
        proof, pos = _consistency(lo + k, hi, m, hashes, pos)
    proof.append(h)
    return proof, pos


def consistency_indexes(old_size: int, new_size: int) -> list[int]:
    """Stored indexes needed to prove the tree of ``old_size`` is a prefix of ``new_size``."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    need: list[int] = []
    if old_size < new_size:
        _consistency_indexes(0, new_size, old_size, need)
    return need


def consistency_from(old_size: int, new_size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.4.1 consistency proof, from :func:`consistency_indexes` hashes."""
    if old_size == new_size:
        return []
    proof, _ = _consistency(0, new_size, old_size, list(hashes), 0)
    return proof


def tree_root(size: int, read: HashReader) -> bytes:
    return root_from(size, read(root_indexes(size)))


def prove_inclusion(index: int, size: int, read: HashReader) -> list[bytes]:
    return inclusion_from(index, size, read(inclusion_indexes(index, size)))


def prove_consistency(old_size: int, new_size: int, read: HashReader) -> list[bytes]:
    return consistency_from(old_size, new_size, read(consistency_indexes(old_size, new_size)))


# --- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) ----------------------------------


def _check_hash(h: bytes, what: str) -> None:
    if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
        raise ProofError(f"{what} is not a {HASH_SIZE}-byte hash")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is beyond the tree size {size}")
    _check_hash(leaf, "leaf hash")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof[{i}]")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
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
    """Raise :class:`ProofError` unless ``proof`` shows ``leaf`` at ``index`` under ``root``."""
    _check_hash(root, "root")
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows the old tree is a prefix of the new."""
    if old_size < 0 or new_size < 0:
        raise ProofError("tree sizes cannot be negative")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0:
        # Every tree extends the empty tree; a proof from it proves nothing.
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if old_size == new_size:
        if proof:
            raise ProofError("proof must be empty for equal sizes")
        if old_root != new_root:
            raise ProofError("roots differ for equal sizes")
        return
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof[{i}]")
    if not proof:
        raise ProofError("consistency proof is empty")
    proof = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a complete subtree of the new one: its root starts the path.
        proof.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")


# --- building a tree from leaves, in memory ------------------------------------------------


class TreeBuilder:
    """Incremental RFC 9162 tree over a stream of leaf hashes, in ``O(log n)`` memory.

    Used by verification to rebuild the tree from the entries alone. ``push`` returns
    the hashes appending that leaf stores, so a caller can compare them with storage.
    """

    __slots__ = ("_frontier", "size")

    def __init__(self) -> None:
        self.size = 0
        # Roots of the complete subtrees along the right edge, largest first.
        self._frontier: list[bytes] = []

    @classmethod
    def resume(cls, size: int, frontier: Sequence[bytes]) -> TreeBuilder:
        """Continue a tree of ``size`` leaves from the hashes at ``root_indexes(size)``."""
        builder = cls()
        builder.size = size
        builder._frontier = list(frontier)
        return builder

    def push(self, leaf: bytes) -> list[bytes]:
        out = [leaf]
        h = leaf
        n = self.size
        frontier = self._frontier
        while n & 1:
            h = node_hash(frontier.pop(), h)
            out.append(h)
            n >>= 1
        frontier.append(h)
        self.size += 1
        return out

    def frontier(self) -> list[bytes]:
        """The hashes at ``root_indexes(size)``: the right edge's complete subtrees."""
        return list(self._frontier)

    def root(self) -> bytes:
        if not self._frontier:
            return EMPTY_ROOT
        h = self._frontier[-1]
        for left in reversed(self._frontier[:-1]):
            h = node_hash(left, h)
        return h
