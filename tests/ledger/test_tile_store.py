"""The tiles written to storage after each checkpoint (``ledger.tile_store``): the same
bytes the view serves, partial tiles kept for every size ever published, the checkpoint
file written last, reruns that write nothing, a run stopped midway that leaves nothing a
client would misread, and the command that rewrites them all."""

from __future__ import annotations

import socket
import uuid
from io import StringIO
from pathlib import Path

import boto3
import pytest
from django.core.management import call_command
from moto import server as moto_server
from rest_framework.test import APIClient

from ledger import tasks, tile_store
from ledger.checkpoints import publish_checkpoint
from ledger.core import merkle, tiles
from ledger.core.note import open_checkpoint, parse_verifier_key
from ledger.errors import LedgerError
from ledger.models import Checkpoint
from ledger.services import Draft, entries_append
from tests.steps.ledger import log_vkey

SIZES = (3, 200, 256, 300, 513, 600)  # checkpoints: inside, at and across tile edges


@pytest.fixture
def tile_dir(tmp_path, settings):
    """The tiles storage: a directory of this test's own; the writer on."""
    settings.STORAGES = {
        **settings.STORAGES,
        "tiles": {
            "BACKEND": "ledger.tile_storage.TileFileStorage",
            "OPTIONS": {"location": tmp_path / "tlog"},
        },
    }
    settings.LEDGER_TILES_WRITE = True
    return tmp_path / "tlog"


def _grow_to(signer, size: int) -> None:
    have = Checkpoint.objects.order_by("-tree_size").values_list("tree_size", flat=True).first()
    from ledger.proofs import tree_size

    entries_append(
        signer=signer,
        drafts=[Draft("test.sample", {"n": i}) for i in range(tree_size(), size)],
    )
    assert have is None or have < size


@pytest.fixture
def published(sample_signer, tile_dir):
    """Checkpoints at SIZES, each published by the task (which queues the writer), and
    five entries after the last."""
    for size in SIZES:
        _grow_to(sample_signer, size)
        assert tasks.publish_checkpoint() == size
    entries_append(signer=sample_signer, drafts=[Draft("test.sample", {"n": -i}) for i in range(5)])
    return tile_dir


@pytest.fixture
def api(partner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {partner[2]}")
    return client


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _tile_reader(root: Path, size: int):
    def read_tile(level: int, n: int) -> list[bytes]:
        width = tiles.width_at(level, n, size)
        return tiles.split_tile((root / tiles.tile_path(level, n, width)).read_bytes(), width)

    return read_tile


def test_every_published_size_has_its_tiles_on_disk_equal_to_what_the_view_serves(published, api):
    files = _files(published)
    expected = {"checkpoint"}
    for size in SIZES:
        for level, n, width in tiles.tiles_of(size):
            expected.add(tiles.tile_path(level, n, width))
            if level == 0:
                expected.add(tiles.tile_path(tiles.ENTRIES, n, width))
    # Exactly the tiles of the published sizes: none of the tree past the checkpoint, and
    # no partial tile deleted when its full tile arrived (tile/0/000.p/200, say).
    assert set(files) == expected
    assert "tile/0/000.p/3" in files and "tile/0/000.p/200" in files and "tile/0/000" in files
    for path, data in files.items():
        r = api.get(f"/api/v1/ledger/tlog/{path}")
        assert r.status_code == 200 and r.content == data, path


def test_the_stored_checkpoint_verifies_and_the_stored_tiles_give_every_size_its_root(published):
    note = (published / "checkpoint").read_bytes()
    checkpoint = open_checkpoint(note, parse_verifier_key(log_vkey()))
    assert checkpoint.size == SIZES[-1]
    for cp in Checkpoint.objects.all():
        reader = tiles.hash_reader(_tile_reader(published, cp.tree_size))
        assert merkle.tree_root(cp.tree_size, reader) == bytes(cp.root_hash)
    bundle = tiles.read_entry_bundle((published / "tile/entries/002.p/88").read_bytes())
    level0 = tiles.split_tile((published / "tile/0/002.p/88").read_bytes(), 88)
    assert [merkle.leaf_hash(leaf) for leaf in bundle] == level0


def test_a_rerun_writes_nothing(published):
    before = {p: p.stat().st_mtime_ns for p in published.rglob("*") if p.is_file()}
    assert tile_store.write_tiles().written == 0
    again = tile_store.write_tiles(from_start=True)
    assert again.written == 0 and again.present == len(before)
    assert {p: p.stat().st_mtime_ns for p in published.rglob("*") if p.is_file()} == before


def test_a_run_stopped_midway_leaves_the_old_checkpoint_and_the_next_run_finishes(
    sample_signer, tile_dir, monkeypatch
):
    _grow_to(sample_signer, 300)
    publish_checkpoint()
    assert tile_store.write_tiles().size == 300
    _grow_to(sample_signer, 1100)
    publish_checkpoint()
    real, calls = tile_store._put, []

    def crash_after_five(store, name, data, replace=False):
        calls.append(name)
        if len(calls) > 5:
            raise OSError("disk full")
        real(store, name, data, replace)

    monkeypatch.setattr(tile_store, "_put", crash_after_five)
    with pytest.raises(OSError, match="disk full"):
        tile_store.write_tiles()
    assert "checkpoint" not in calls
    # A client reads the checkpoint of 300 and finds every tile that size needs.
    stored = open_checkpoint((tile_dir / "checkpoint").read_bytes(), parse_verifier_key(log_vkey()))
    assert stored.size == 300
    reader = tiles.hash_reader(_tile_reader(tile_dir, 300))
    assert merkle.tree_root(300, reader) == stored.root
    assert not list(tile_dir.rglob(".tmp-*"))  # no half-written file left behind

    monkeypatch.setattr(tile_store, "_put", real)
    done = tile_store.write_tiles()
    assert done.size == 1100 and done.written > 0
    reader = tiles.hash_reader(_tile_reader(tile_dir, 1100))
    assert merkle.tree_root(1100, reader) == bytes(Checkpoint.objects.get(tree_size=1100).root_hash)


def test_tiles_of_another_tree_are_refused_not_extended(sample_signer, tile_dir):
    _grow_to(sample_signer, 10)
    publish_checkpoint()
    tile_store.write_tiles()
    note = (tile_dir / "checkpoint").read_text()
    lines = note.split("\n")
    lines[1] = "11"  # a size this log never published
    (tile_dir / "checkpoint").write_text("\n".join(lines))
    with pytest.raises(LedgerError, match="did not publish"):
        tile_store.write_tiles()


def test_the_writer_off_writes_nothing(sample_signer, tile_dir, settings):
    settings.LEDGER_TILES_WRITE = False
    _grow_to(sample_signer, 10)
    assert tasks.publish_checkpoint() == 10
    assert not tile_dir.exists() or not any(tile_dir.iterdir())


def test_the_command_writes_them_all_and_then_nothing(sample_signer, tile_dir, settings):
    settings.LEDGER_TILES_WRITE = False  # publications alone write nothing
    for size in (5, 300):
        _grow_to(sample_signer, size)
        publish_checkpoint()
    out = StringIO()
    call_command("ledger", "tiles", "--write", "--no-progress", stdout=out)
    assert "Tiles of 2 checkpoints" in out.getvalue()
    assert "stored checkpoint is at size 300" in out.getvalue()
    assert {"tile/0/000.p/5", "tile/0/000", "tile/0/001.p/44", "checkpoint"} <= set(
        _files(tile_dir)
    )
    out = StringIO()
    call_command("ledger", "tiles", "--write", "--no-progress", stdout=out)
    assert "0 files written" in out.getvalue()


# --- an S3-compatible bucket (moto's server over HTTP) -----------------------------------------


@pytest.fixture
def tile_bucket(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint, name = f"http://127.0.0.1:{port}", f"tiles-{uuid.uuid4().hex[:12]}"
    credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test-secret"}
    client = boto3.client("s3", endpoint_url=endpoint, region_name="eu-north-1", **credentials)
    client.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
    )
    settings.STORAGES = {
        **settings.STORAGES,
        "tiles": {
            "BACKEND": "ledger.tile_storage.TileS3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": endpoint,
                "region_name": "eu-north-1",
                "location": "ledger/tlog",
                "default_acl": None,
                "file_overwrite": True,
                "addressing_style": "path",
                "access_key": "test",
                "secret_key": "test-secret",
            },
        },
    }
    yield client, name
    server.stop()


def test_tiles_in_a_bucket_carry_the_specs_content_types_and_caching(sample_signer, tile_bucket):
    client, name = tile_bucket
    for size in (5, 300):
        _grow_to(sample_signer, size)
        publish_checkpoint()
    assert tile_store.write_tiles().size == 300
    tile = client.get_object(Bucket=name, Key="ledger/tlog/tile/0/000")
    assert tile["ContentType"] == "application/octet-stream"
    assert tile["CacheControl"] == "private, max-age=31536000, immutable"
    assert len(tile["Body"].read()) == 256 * 32
    cp = client.get_object(Bucket=name, Key="ledger/tlog/checkpoint")
    assert cp["ContentType"] == "text/plain; charset=utf-8" and cp["CacheControl"] == "no-cache"
    assert open_checkpoint(cp["Body"].read(), parse_verifier_key(log_vkey())).size == 300
    assert tile_store.write_tiles(from_start=True).written == 0


def test_a_bundle_of_a_leaf_over_the_limit_is_left_to_the_view(
    sample_signer, tile_dir, monkeypatch
):
    # Only a log from before the 65,535-byte limit can hold such a leaf.
    from ledger import log
    from ledger.core import envelope

    monkeypatch.setattr(envelope, "MAX_ENVELOPE_BYTES", 256 * 1024)
    monkeypatch.setattr(log, "MAX_LEAF_BYTES", 256 * 1024)
    entries_append(signer=sample_signer, drafts=[Draft("test.sample", {"blob": "x" * 70000})])
    publish_checkpoint()
    done = tile_store.write_tiles()
    assert done.unbundlable == ["tile/entries/000.p/3"] and done.size == 3
    assert (tile_dir / "tile/0/000.p/3").exists() and (tile_dir / "checkpoint").exists()
    assert not (tile_dir / "tile/entries/000.p/3").exists()


def test_tiles_that_cannot_be_written_leave_the_checkpoint_published(
    sample_signer, tile_dir, caplog
):
    _grow_to(sample_signer, 10)
    assert tasks.publish_checkpoint() == 10
    (tile_dir / "checkpoint").write_text("not a checkpoint\n")
    _grow_to(sample_signer, 20)
    with caplog.at_level("ERROR", logger="ledger.log"):
        assert tasks.publish_checkpoint() == 20  # published all the same
    assert "the tiles were not written" in caplog.text and "not a checkpoint" in caplog.text
    assert Checkpoint.objects.filter(tree_size=20).exists()


def test_the_files_are_readable_by_the_web_servers_user_whatever_the_umask(sample_signer, tile_dir):
    import os

    old = os.umask(0o077)
    try:
        _grow_to(sample_signer, 300)
        publish_checkpoint()
        tile_store.write_tiles()
    finally:
        os.umask(old)
    modes = {
        p.relative_to(tile_dir).as_posix(): p.stat().st_mode & 0o777 for p in tile_dir.rglob("*")
    }
    assert modes["tile"] == modes["tile/0"] == modes["tile/entries"] == 0o755
    assert modes["checkpoint"] == modes["tile/0/000"] == modes["tile/entries/001.p/44"] == 0o644
