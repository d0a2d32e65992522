"""C2SP tlog-tiles: paths, the tiles of a tree, entry bundles, and roots and proofs
computed from tiles equal to those the API computes from the stored hashes."""

from __future__ import annotations

import base64
import random

import pytest
from rest_framework.test import APIClient

from ledger.checkpoints import publish_checkpoint
from ledger.core import merkle, tiles
from ledger.core.note import open_checkpoint, parse_verifier_key
from ledger.services import Draft, entries_append
from tests.steps.ledger import log_vkey

# --- paths and the tiles of a tree, as the spec's own examples give them -----------------------


def test_an_index_is_written_in_three_digit_elements_all_but_the_last_prefixed_with_x():
    assert tiles.index_path(1234067) == "x001/x234/067"
    assert tiles.index_path(5) == "005"
    assert tiles.index_path(1000) == "x001/000"
    assert tiles.tile_path(0, 1234067, 112) == "tile/0/x001/x234/067.p/112"
    assert tiles.tile_path("entries", 0) == "tile/entries/000"


def test_a_tree_of_70000_has_the_tiles_the_spec_lists():
    of = tiles.tiles_of(70000)
    full = [t for t in of if t[2] == tiles.WIDTH]
    assert sum(1 for level, _, _ in full if level == 0) == 273
    assert sum(1 for level, _, _ in full if level == 1) == 1
    assert [t for t in of if t[2] < tiles.WIDTH] == [(0, 273, 112), (1, 1, 17), (2, 0, 1)]
    assert tiles.tiles_of(256) == [(0, 0, 256), (1, 0, 1)]
    assert tiles.tiles_of(0) == []


@pytest.mark.parametrize(
    "path",
    ["tile/0/x001/x234/067.p/112", "tile/entries/000", "tile/63/999", "tile/1/x001/000.p/1"],
)
def test_a_canonical_path_reads_back_as_itself(path):
    level, n, width = tiles.parse_tile_path(path)
    assert tiles.tile_path(level, n, width) == path


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/x001/x234/67",  # an element of two digits
        "tile/00/001",  # a level with a leading zero
        "tile/0/x000/001",  # an index with a leading zero element
        "tile/0/001.p/256",  # a partial tile as wide as a full one
        "tile/0/001.p/0",
        "tile/0/001.p/012",
        "tile/64/001",  # past the deepest level
        "tile/0/001/",
        "tile/entries/x001",
    ],
)
def test_any_other_spelling_is_refused(path):
    with pytest.raises(tiles.TileError):
        tiles.parse_tile_path(path)


def test_an_entry_bundle_reads_back_and_refuses_what_does_not_fit():
    entries = [b"", b"a", b"x" * 300, bytes(range(256))]
    bundle = tiles.entry_bundle(entries)
    assert bundle[:3] == b"\x00\x00\x00" and tiles.read_entry_bundle(bundle) == entries
    assert tiles.entry_bundle([b"y" * tiles.MAX_ENTRY])[:2] == b"\xff\xff"
    with pytest.raises(tiles.TileError, match="does not fit"):
        tiles.entry_bundle([b"y" * (tiles.MAX_ENTRY + 1)])
    for damaged in (bundle[:-1], bundle + b"\x00", b"\x00\x05abc"):
        with pytest.raises(tiles.TileError):
            tiles.read_entry_bundle(damaged)


def test_every_stored_hash_position_maps_back_to_its_level_and_node():
    for index in range(20000):
        level, n = tiles.stored_index_position(index)
        assert merkle.stored_hash_index(level, n) == index


# --- roots and proofs from tiles, in memory ---------------------------------------------------


def _stored_tree(size: int) -> list[bytes]:
    """Every stored hash of a tree of ``size`` random leaves, in storage order."""
    rng = random.Random(size)
    builder, stored = merkle.TreeBuilder(), []
    for _ in range(size):
        stored += builder.push(merkle.leaf_hash(rng.randbytes(8)))
    return stored


def _tile_reader(stored: list[bytes], size: int):
    def read_tile(level: int, n: int) -> list[bytes]:
        width = tiles.width_at(level, n, size)
        return [stored[i] for i in tiles.tile_hash_indexes(level, n, width)]

    return read_tile


def test_roots_and_proofs_from_tiles_equal_those_from_stored_hashes_in_1000_random_cases():
    size = 70000  # three levels of tiles, each with a partial tile
    stored = _stored_tree(size)

    def direct(indexes):
        return [stored[i] for i in indexes]

    from_tiles = tiles.hash_reader(_tile_reader(stored, size))
    rng = random.Random(12)
    for case in range(1000):
        new = rng.randint(1, size)
        old, index = rng.randint(1, new), rng.randrange(new)
        which = case % 3
        if which == 0:
            assert merkle.tree_root(new, from_tiles) == merkle.tree_root(new, direct)
        elif which == 1:
            got = merkle.prove_inclusion(index, new, from_tiles)
            assert got == merkle.prove_inclusion(index, new, direct)
        else:
            got = merkle.prove_consistency(old, new, from_tiles)
            assert got == merkle.prove_consistency(old, new, direct)


def test_a_tile_narrower_than_the_tree_needs_is_refused():
    stored = _stored_tree(300)

    def short(level, n):
        return _tile_reader(stored, 300)(level, n)[:10]

    with pytest.raises(tiles.TileError, match="lacks"):
        merkle.tree_root(300, tiles.hash_reader(short))


# --- the API, against the stored log ----------------------------------------------------------


@pytest.fixture
def api(partner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {partner[2]}")
    return client


@pytest.fixture
def grown(sample_signer):
    """A log of 600 entries (two level-0 tiles and a partial one, a partial level-1 tile)
    with a checkpoint at its size, and 5 entries after it."""
    entries_append(
        signer=sample_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(598)]
    )
    checkpoint = publish_checkpoint()
    entries_append(signer=sample_signer, drafts=[Draft("test.sample", {"n": -i}) for i in range(5)])
    return checkpoint


def _fetch(api, path: str) -> bytes:
    r = api.get(f"/api/v1/ledger/tlog/{path}")
    assert r.status_code == 200, r.content
    assert r["Content-Type"] == "application/octet-stream"
    assert r["Cache-Control"] == "private, max-age=31536000, immutable"
    return r.content


def test_the_tiles_give_the_apis_roots_and_proofs_in_1000_random_cases(api, grown):
    r = api.get("/api/v1/ledger/tlog/checkpoint")
    assert r.status_code == 200 and r["Cache-Control"] == "no-cache"
    checkpoint = open_checkpoint(r.content.decode(), parse_verifier_key(log_vkey()))
    size = checkpoint.size
    assert size == grown.tree_size == 600

    def read_tile(level, n):
        width = tiles.width_at(level, n, size)
        return tiles.split_tile(_fetch(api, tiles.tile_path(level, n, width)), width)

    from_tiles = tiles.hash_reader(read_tile)
    assert merkle.tree_root(size, from_tiles) == checkpoint.root

    rng = random.Random(7)
    for case in range(1000):
        new = rng.randint(1, size)
        old, index = rng.randint(1, new), rng.randrange(new)
        if case % 2:
            got = merkle.prove_inclusion(index, new, from_tiles)
            answer = api.get(f"/api/v1/ledger/proofs/inclusion?index={index}&tree_size={new}")
        else:
            got = merkle.prove_consistency(old, new, from_tiles)
            answer = api.get(f"/api/v1/ledger/proofs/consistency?from={old}&to={new}")
        assert [base64.b64encode(h).decode() for h in got] == answer.json()["proof"]


def test_an_entry_bundle_holds_the_exact_leaves(api, grown):
    bundle = tiles.read_entry_bundle(_fetch(api, "tile/entries/001"))
    assert len(bundle) == 256
    level0 = tiles.split_tile(_fetch(api, "tile/0/001"), 256)
    assert [merkle.leaf_hash(leaf) for leaf in bundle] == level0
    partial = tiles.read_entry_bundle(_fetch(api, "tile/entries/002.p/88"))
    assert len(partial) == 88


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/002",  # the full tile is past the published size (600)
        "tile/0/002.p/89",  # wider than the published tree's partial tile
        "tile/entries/003.p/1",
        "tile/2/000.p/1",  # no level 2 in a tree of 600
        "tile/0/002.p/088",  # not canonical
        "tile/zero/000",
    ],
)
def test_what_the_published_tree_does_not_hold_is_a_404(api, grown, path):
    r = api.get(f"/api/v1/ledger/tlog/{path}")
    assert r.status_code == 404 and r["Content-Type"] == "application/problem+json"


def test_a_narrower_partial_tile_of_an_earlier_size_stays_available(api, grown):
    assert len(_fetch(api, "tile/0/002.p/3")) == 3 * 32
    assert len(_fetch(api, "tile/1/000.p/1")) == 32


def test_the_tiles_need_a_token(grown):
    assert APIClient().get("/api/v1/ledger/tlog/tile/0/000").status_code == 401


def test_a_bundle_that_would_hold_a_leaf_too_large_for_the_format_is_a_409(
    api, sample_signer, monkeypatch
):
    # Appends refuse such a leaf now (tests/ledger/test_leaf_limit.py); a log that took
    # envelopes of up to 256 KiB before that may hold one, and its bundle cannot be
    # written in the spec's format (nothing pretends it can).
    from ledger import log
    from ledger.core import envelope

    monkeypatch.setattr(envelope, "MAX_ENVELOPE_BYTES", 256 * 1024)
    monkeypatch.setattr(log, "MAX_LEAF_BYTES", 256 * 1024)
    entries_append(signer=sample_signer, drafts=[Draft("test.sample", {"blob": "x" * 70000})])
    publish_checkpoint()
    r = api.get("/api/v1/ledger/tlog/tile/entries/000.p/3")
    assert r.status_code == 409 and "does not fit a bundle" in r.json()["detail"]
    assert len(_fetch(api, "tile/0/000.p/3")) == 3 * 32  # its hash is in the tree all the same
