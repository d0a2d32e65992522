"""The log's C2SP tlog-tiles written to storage, so that nginx, an object store or a CDN
serves them without the application (the view in ``ledger.api.tiles`` stays the fallback).

After each checkpoint the task ``ledger.write_tiles`` writes, for every checkpoint
published since the last run, in order of size:

- the full tiles and full entry bundles that size completed (written once: a full
  tile never changes);
- the partial tiles (``.p/<W>``) and the partial entry bundle of that very size, for
  every size ever published, and never deleted: a client that holds an old checkpoint
  still finds the tiles its size needs;
- then, last, the ``checkpoint`` file: the latest checkpoint whose tiles are all there.

The stored ``checkpoint`` is therefore also the writer's progress mark: a run resumes
after the size it names. A run that stops midway leaves that file as it was, naming a
size whose tiles are all stored, so no client is sent to a tile that is missing; the
next run writes what is missing and skips every file that exists (a tile's bytes never
change, so a file that exists is the right one). ``manage.py ledger tiles --write``
rewrites from size 0 (still skipping what exists).

The storage is ``settings.STORAGES["tiles"]`` (``ledger.tile_storage``). Before it builds
on a stored checkpoint the writer checks that this log signed that size with that root:
tiles of another tree (a storage shared by mistake, a log rolled back) are refused, not
extended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from ledger import tiles as cut
from ledger.core import tiles
from ledger.core.note import NoteError, parse_checkpoint, split_note
from ledger.errors import LedgerError
from ledger.models import Checkpoint
from ledger.proofs import tree_size
from ledger.tile_storage import CHECKPOINT

STORAGE = "tiles"  # the alias in settings.STORAGES
log = logging.getLogger("ledger.log")


def storage() -> Storage:
    return storages[STORAGE]


@dataclass
class Written:
    """What a run did: files written and found already there, sizes covered, the size the
    stored checkpoint names afterwards, and bundles that cannot be written (a leaf over
    65,535 bytes, possible only in a log older than that limit: the view answers 409)."""

    written: int = 0
    present: int = 0
    sizes: int = 0
    size: int = 0
    unbundlable: list[str] = field(default_factory=list)


def stored_checkpoint(store: Storage | None = None) -> tuple[int, bytes] | None:
    """``(size, root)`` of the stored ``checkpoint`` file, ``None`` if there is none."""
    data = _read(store or storage(), CHECKPOINT)
    if data is None:
        return None
    try:
        body = parse_checkpoint(split_note(data)[0])
    except NoteError as exc:
        raise LedgerError(f"the stored tiles' checkpoint file is not a checkpoint: {exc}") from exc
    return body.size, body.root


def _resume_point(store: Storage) -> int:
    """The size the stored checkpoint names, after checking the log signed it."""
    stored = stored_checkpoint(store)
    if stored is None:
        return 0
    size, root = stored
    ours = Checkpoint.objects.filter(tree_size=size).first()
    if ours is None or bytes(ours.root_hash) != root or size > tree_size():
        raise LedgerError(
            f"the tiles storage holds a checkpoint at size {size} that this log did not "
            "publish: it holds another tree's tiles (point it at an empty location, or "
            "clear it and run `manage.py ledger tiles --write`)"
        )
    return size


def new_tiles(old: int, new: int) -> Iterator[tuple[int | str, int, int]]:
    """The tiles ``(level, n, width)`` to write when the published size grows from
    ``old`` to ``new``: the full tiles and bundles completed since ``old``, then the
    partial ones of size ``new``. Level ``"entries"`` names an entry bundle."""
    level = 0
    while new >> (tiles.HEIGHT * level):
        before, nodes = old >> (tiles.HEIGHT * level), new >> (tiles.HEIGHT * level)
        for n in range(before // tiles.WIDTH, nodes // tiles.WIDTH):
            if level == 0:
                yield tiles.ENTRIES, n, tiles.WIDTH
            yield level, n, tiles.WIDTH
        if nodes % tiles.WIDTH:
            if level == 0:
                yield tiles.ENTRIES, nodes // tiles.WIDTH, nodes % tiles.WIDTH
            yield level, nodes // tiles.WIDTH, nodes % tiles.WIDTH
        level += 1


def checkpoint_note(cp: Checkpoint) -> str:
    """The text of the ``checkpoint`` file for a checkpoint: the signed note."""
    return cp.note


def write_tiles(
    *, from_start: bool = False, progress: Callable[[int, int, Written], None] | None = None
) -> Written:
    """Write the tiles of every checkpoint published since the stored one (of all of them
    with ``from_start``), then the ``checkpoint`` file; again while checkpoints arrive.
    ``progress(done, total, written)`` is called after each checkpoint's tiles."""
    store = storage()
    done = Written()
    done.size = _resume_point(store)
    old = 0 if from_start else done.size
    seen: set[str] = set()
    while True:
        sizes = list(
            Checkpoint.objects.filter(tree_size__gt=old, tree_size__lte=tree_size())
            .order_by("tree_size")
            .values_list("tree_size", flat=True)
        )
        if not sizes:
            return done
        for i, size in enumerate(sizes):
            for level, n, width in new_tiles(old, size):
                _write_one(store, level, n, width, size, done, seen)
            old = size
            done.sizes += 1
            if progress:
                progress(i + 1, len(sizes), done)
        # Last: only now may a client be sent to the tiles of this size; never back to
        # a smaller size another run (without a shared cache lock) stored meanwhile.
        stored = stored_checkpoint(store)
        if stored is None or stored[0] <= sizes[-1]:
            note = checkpoint_note(Checkpoint.objects.get(tree_size=sizes[-1])).encode()
            if _read(store, CHECKPOINT) == note:
                done.present += 1
            else:
                _put(store, CHECKPOINT, note, replace=True)
                done.written += 1
        done.size = max(sizes[-1], stored[0] if stored else 0)


def _write_one(
    store: Storage, level, n: int, width: int, size: int, done: Written, seen: set[str]
) -> None:
    path = tiles.tile_path(level, n, width)
    if path in seen:
        return
    seen.add(path)
    if store.exists(path):
        done.present += 1
        return
    try:
        if level == tiles.ENTRIES:
            data = cut.entry_bundle(n, width, size)
        else:
            data = cut.tile(level, n, width, size)
    except tiles.TileError as exc:
        done.unbundlable.append(path)
        log.warning("tile %s not written: %s", path, exc)
        return
    _put(store, path, data)
    done.written += 1


def _read(store: Storage, name: str) -> bytes | None:
    if not store.exists(name):
        return None
    with store.open(name, "rb") as handle:
        return handle.read()


def _put(store: Storage, name: str, data: bytes, replace: bool = False) -> None:
    if replace and store.get_available_name(name) != name:
        store.delete(name)  # a storage that would save beside it (the tile storages replace)
    saved = store.save(name, ContentFile(data))
    if saved != name:
        raise LedgerError(f"the tiles storage saved {name} as {saved}: it must keep names")
