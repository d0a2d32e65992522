"""C2SP tlog-tiles: the tree as tiles of 256 hashes, and the entries as bundles.

Pure Python, no Django: a client (or an offline verifier) that fetched tiles computes
roots and proofs with these functions, and the server cuts its tiles with them.

Implements the read side of C2SP tlog-tiles as of its repository's main branch of
2026-12 (https://github.com/C2SP/C2SP/blob/main/tlog-tiles.md), over the RFC 9162 tree
of ``ledger.core.merkle``:

- the ``n``-th tile at level ``l`` holds, for ``i`` from 0, the Merkle Tree Hash of
  ``D[(n*256 + i) * 256**l : (n*256 + i + 1) * 256**l]``: the hash at tree level ``8*l``
  of node ``n*256 + i``, which is the stored hash at ``stored_hash_index(8*l, n*256+i)``;
- a full tile is 256 hashes; the partial tile at level ``l`` of a tree of size ``s`` has
  ``floor(s / 256**l) mod 256`` hashes, and an empty tile does not exist;
- paths are ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``, ``<N>`` in
  zero-padded 3-digit elements, all but the last prefixed with ``x``;
- an entry bundle is its entries, each prefixed by its length as a big-endian uint16.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ledger.core import merkle

HEIGHT = 8
WIDTH = 1 << HEIGHT  # hashes in a full tile, entries in a full bundle
MAX_LEVEL = 63
MAX_ENTRY = 0xFFFF  # the largest entry a bundle can hold (its length is a uint16)

ENTRIES = "entries"
_PATH = re.compile(
    r"tile/(?P<level>0|[1-9][0-9]?|entries)/(?P<n>(?:x[0-9]{3}/)*[0-9]{3})(?:\.p/(?P<w>[1-9][0-9]{0,2}))?"
)


class TileError(ValueError):
    """A tile path, a tile or an entry bundle that is not what the spec allows."""


# --- paths -------------------------------------------------------------------------------------


def index_path(n: int) -> str:
    """``n`` as zero-padded 3-digit path elements, all but the last prefixed with x."""
    if n < 0:
        raise TileError("a tile index is not negative")
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def tile_path(level: int | str, n: int, width: int = WIDTH) -> str:
    """The path of a tile (``level`` a number) or an entry bundle (``level`` "entries")."""
    if not 0 < width <= WIDTH:
        raise TileError(f"a tile holds 1 to {WIDTH} hashes")
    if level != ENTRIES and not (isinstance(level, int) and 0 <= level <= MAX_LEVEL):
        raise TileError(f"a tile's level is 0 to {MAX_LEVEL}")
    path = f"tile/{level}/{index_path(n)}"
    return path if width == WIDTH else f"{path}.p/{width}"


def parse_tile_path(path: str) -> tuple[int | str, int, int]:
    """``(level, n, width)`` of a tile path (``level`` "entries" for a bundle). Only the
    one canonical spelling of each tile is accepted: no extra leading zeroes."""
    m = _PATH.fullmatch(path)
    if m is None:
        raise TileError("not a tile path: tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]")
    level: int | str = m["level"] if m["level"] == ENTRIES else int(m["level"])
    n = int(m["n"].replace("x", "").replace("/", ""))
    width = int(m["w"]) if m["w"] else WIDTH
    if (m["w"] and width >= WIDTH) or tile_path(level, n, width) != path:
        raise TileError("not the canonical path of a tile")
    return level, n, width


# --- which tiles a tree has --------------------------------------------------------------------


def width_at(level: int, n: int, size: int) -> int:
    """How many hashes the ``n``-th tile at ``level`` has in a tree of ``size`` (0: none)."""
    nodes = size >> (HEIGHT * level)  # the tree's complete nodes at tree level 8*level
    return max(0, min(WIDTH, nodes - n * WIDTH))


def tiles_of(size: int) -> list[tuple[int, int, int]]:
    """Every tile ``(level, n, width)`` of a tree of ``size``, level by level."""
    out = []
    level = 0
    while size >> (HEIGHT * level):
        nodes = size >> (HEIGHT * level)
        out += [(level, n, width_at(level, n, size)) for n in range(-(-nodes // WIDTH))]
        level += 1
    return out


def tile_hash_indexes(level: int, n: int, width: int) -> list[int]:
    """The stored-hash positions (``ledger.core.merkle``'s layout) of a tile's hashes."""
    return [merkle.stored_hash_index(HEIGHT * level, n * WIDTH + i) for i in range(width)]


def split_tile(data: bytes, width: int) -> list[bytes]:
    """A tile's hashes; its length must be exactly ``width`` hashes."""
    if len(data) != width * merkle.HASH_SIZE:
        raise TileError(f"a tile of width {width} is {width * merkle.HASH_SIZE} bytes")
    return [data[i : i + merkle.HASH_SIZE] for i in range(0, len(data), merkle.HASH_SIZE)]


# --- entry bundles -----------------------------------------------------------------------------


def entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Entries as a bundle: each prefixed by its length, a big-endian uint16."""
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY:
            raise TileError(f"an entry of {len(entry)} bytes does not fit a bundle")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def read_entry_bundle(data: bytes) -> list[bytes]:
    """The entries of a bundle (every byte accounted for)."""
    entries, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise TileError("an entry bundle ends inside a length")
        length = int.from_bytes(data[at : at + 2], "big")
        if at + 2 + length > len(data):
            raise TileError("an entry bundle ends inside an entry")
        entries.append(data[at + 2 : at + 2 + length])
        at += 2 + length
    if len(entries) > WIDTH:
        raise TileError(f"an entry bundle holds at most {WIDTH} entries")
    return entries


# --- hashes from tiles -------------------------------------------------------------------------


def stored_index_position(index: int) -> tuple[int, int]:
    """``(level, n)`` of the stored hash at ``index``: the inverse of
    ``merkle.stored_hash_index``."""
    if index < 0:
        raise TileError("a stored-hash index is not negative")
    # Leaf n is stored at stored_hash_index(0, n), followed by the hashes of the subtrees
    # it completes, one per trailing 1 bit of n. stored_hash_index(0, n) >= n, so the leaf
    # whose run holds ``index`` is at most ``index``; walk down from a close lower bound.
    n = index // 2
    while merkle.stored_hash_index(0, n) > index:
        n -= 1
    while merkle.stored_hash_index(0, n + 1) <= index:
        n += 1
    level = index - merkle.stored_hash_index(0, n)
    return level, n >> level


TileReader = Callable[[int, int], Sequence[bytes]]


def hash_reader(read_tile: TileReader) -> merkle.HashReader:
    """A reader of stored hashes (as ``ledger.core.merkle``'s roots and proofs take) that
    computes them from tiles: ``read_tile(level, n)`` returns the hashes of a tile (as
    wide as the tree the caller verifies has it). A hash between two tile levels is the
    root of the run of hashes below it in its tile."""
    cache: dict[tuple[int, int], Sequence[bytes]] = {}

    def tile(level: int, n: int) -> Sequence[bytes]:
        if (level, n) not in cache:
            cache[(level, n)] = read_tile(level, n)
        return cache[(level, n)]

    def read(indexes: Sequence[int]) -> list[bytes]:
        out = []
        for index in indexes:
            level, n = stored_index_position(index)
            tile_level, up = divmod(level, HEIGHT)
            first = n << up  # the node's first hash at the tile's level
            hashes = tile(tile_level, first // WIDTH)
            run = list(hashes[first % WIDTH : first % WIDTH + (1 << up)])
            if len(run) != 1 << up:
                raise TileError(f"the tile at level {tile_level} lacks hash {first}")
            while len(run) > 1:
                run = [merkle.node_hash(run[i], run[i + 1]) for i in range(0, len(run), 2)]
            out.append(run[0])
        return out

    return read
