"""The stored tree cut into C2SP tlog-tiles (``ledger.core.tiles``): tiles of stored
hashes and bundles of leaves, as far as the latest published checkpoint reaches.

A tile's hashes are complete subtree hashes, which never change once stored, so a tile
(full, or partial of any width up to the published tree's) is the same bytes forever:
it may be cached without limit. Nothing past the latest checkpoint is served: a client
verifies a checkpoint first, then fetches the tiles its size needs.
"""

from __future__ import annotations

from ledger import checkpoints
from ledger.core import tiles
from ledger.models import Entry
from ledger.proofs import read_hashes


class NoSuchTile(LookupError):
    """The tile is not (yet) in the published tree."""


def published_size() -> int:
    """The size of the latest published checkpoint (0 before the first)."""
    cp = checkpoints.latest_checkpoint()
    return 0 if cp is None else cp.tree_size


def _check(level: int, n: int, width: int, size: int) -> None:
    if width > tiles.width_at(level, n, size):
        raise NoSuchTile(f"{tiles.tile_path(level, n, width)} is not in the published tree")


def tile(level: int, n: int, width: int, size: int | None = None) -> bytes:
    """The ``n``-th tile at ``level``, ``width`` hashes wide, of the tree of ``size`` (the
    published one by default)."""
    size = published_size() if size is None else size
    _check(level, n, width, size)
    return b"".join(read_hashes(tiles.tile_hash_indexes(level, n, width)))


def entry_bundle(n: int, width: int, size: int | None = None) -> bytes:
    """The ``n``-th bundle of leaves, ``width`` entries long."""
    size = published_size() if size is None else size
    _check(0, n, width, size)
    first = n * tiles.WIDTH
    leaves = (
        Entry.objects.filter(index__gte=first, index__lt=first + width)
        .order_by("index")
        .values_list("leaf", flat=True)
    )
    try:
        return tiles.entry_bundle([bytes(leaf) for leaf in leaves])
    except tiles.TileError as exc:
        raise tiles.TileError(f"{tiles.tile_path(tiles.ENTRIES, n, width)}: {exc}") from exc
