"""The stored tree: its size, the stored hashes, roots and RFC 9162 proofs.

Roots and proofs are computed from the stored hashes (``ledger.core.merkle`` says which
ones each needs), never from the leaves.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.core import merkle
from ledger.errors import LedgerError
from ledger.models import Entry, TreeHash
from ledger.reads import reader

ENTRY_T = Entry._meta.db_table
HASH_T = TreeHash._meta.db_table
# Proofs made together read their hashes together, this many proofs to a query.
PROOFS_PER_QUERY = 200


def tree_size() -> int:
    # A replica's connection inside a read endpoint (ledger.reads), else the primary's.
    connection = reader()
    with connection.cursor() as cur:
        cur.execute(f"SELECT MAX({connection.ops.quote_name('index')}) FROM {ENTRY_T}")
        (top,) = cur.fetchone()
    return 0 if top is None else top + 1


def read_hashes(indexes: Sequence[int]) -> list[bytes]:
    """Stored hashes at ``indexes``, in that order, in one query."""
    if not indexes:
        return []
    wanted = sorted(set(indexes))
    marks = ",".join(["%s"] * len(wanted))
    with reader().cursor() as cur:
        cur.execute(f"SELECT idx, hash FROM {HASH_T} WHERE idx IN ({marks})", wanted)
        found = {idx: bytes(h) for idx, h in cur.fetchall()}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise LedgerError(f"stored hashes missing at {missing[:5]}: the tree is damaged")
    return [found[i] for i in indexes]


def root_at(size: int) -> bytes:
    return merkle.tree_root(size, read_hashes)


def inclusion_proof(index: int, size: int) -> list[bytes]:
    return merkle.prove_inclusion(index, size, read_hashes)


def consistency_proof(old_size: int, new_size: int) -> list[bytes]:
    return merkle.prove_consistency(old_size, new_size, read_hashes)


def _batched(needs: list[list[int]]) -> list[list[bytes]]:
    """The stored hashes at each list of indexes, reading them a batch at a time."""
    out: list[list[bytes]] = []
    for at in range(0, len(needs), PROOFS_PER_QUERY):
        batch = needs[at : at + PROOFS_PER_QUERY]
        wanted = sorted({i for need in batch for i in need})
        found = dict(zip(wanted, read_hashes(wanted), strict=True))
        out += [[found[i] for i in need] for need in batch]
    return out


def inclusion_proofs(indexes: Sequence[int], size: int) -> list[list[bytes]]:
    """Inclusion proofs of many leaves in the tree of ``size``, in order."""
    needs = [merkle.inclusion_indexes(i, size) for i in indexes]
    return [
        merkle.inclusion_from(i, size, hashes)
        for i, hashes in zip(indexes, _batched(needs), strict=True)
    ]


def consistency_proofs(pairs: Sequence[tuple[int, int]]) -> list[list[bytes]]:
    """Consistency proofs between many (old size, new size) pairs, in order."""
    needs = [merkle.consistency_indexes(old, new) for old, new in pairs]
    return [
        merkle.consistency_from(old, new, hashes)
        for (old, new), hashes in zip(pairs, _batched(needs), strict=True)
    ]
