"""Writing audit exports: the entries of an index range (or a selection of them) with
everything needed to check them offline, in one zip file.

The format is ``docs/audit-export.md``; ``ledger.audit`` verifies it. This module knows
nothing of the domain: what to select and which report files to add are the caller's.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ledger import proofs as stored
from ledger import services
from ledger.audit import ENTRIES, FORMAT, MANIFEST
from ledger.core import merkle
from ledger.core.envelope import format_time
from ledger.core.keyring import CORE_KEY_KINDS
from ledger.core.note import sign_note
from ledger.models import Checkpoint, Entry

PAGE = 5000


class ExportError(ValueError):
    """The export cannot be made as asked; the message says why."""


@dataclass
class Built:
    export_id: str
    first: int
    end: int
    anchor: int
    entries: int
    manifest_sha256: str
    files: dict[str, tuple[int, str]] = field(default_factory=dict)


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def _line(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode() + b"\n"


def index_at(when: datetime) -> int:
    """The first index integrated at or after ``when`` (the tree size if none): the log
    integrates entries in time order, so this is a binary search over the leaves."""
    lo, hi = 0, stored.tree_size()
    target = format_time(when.astimezone(UTC))
    while lo < hi:
        mid = (lo + hi) // 2
        if Entry.objects.get(index=mid).integrated_time < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


class _Writer:
    """Zip members written once each, their sizes and SHA-256 kept for the MANIFEST."""

    def __init__(self, target):
        self.zip = zipfile.ZipFile(
            target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True
        )
        self.files: dict[str, tuple[int, str]] = {}

    def add(self, name: str, data: bytes) -> None:
        self.zip.writestr(name, data)
        self.files[name] = (len(data), hashlib.sha256(data).hexdigest())

    def stream(self, name: str, lines: Iterable[bytes]) -> None:
        h = hashlib.sha256()
        size = 0
        with self.zip.open(name, "w", force_zip64=True) as out:
            for chunk in lines:
                out.write(chunk)
                h.update(chunk)
                size += len(chunk)
        self.files[name] = (size, h.hexdigest())

    def close(self) -> None:
        self.zip.close()


def _pages(first: int, end: int) -> Iterable[tuple[int, bytes]]:
    at = first
    while at < end:
        rows = list(
            Entry.objects.filter(index__gte=at, index__lt=end)
            .order_by("index")
            .values_list("index", "leaf")[:PAGE]
        )
        if not rows:
            return
        for index, leaf in rows:
            yield index, bytes(leaf)
        at = rows[-1][0] + 1


def _anchor(end: int):
    """The checkpoint every proof leads to, the note to write for it, and the current log
    key, which signs the MANIFEST: the checkpoint served as cosigned when it covers
    ``end`` (with its cosignatures), else the latest (published first if none covers
    ``end``); signed by the current log key (a new one is published if it predates a
    rotation)."""
    from ledger.keys import log_key_for_size, log_signer

    covering = services.checkpoint_covering(end)
    if covering is None:
        raise ExportError("no checkpoint covers the export; publish one and try again")
    latest, note = covering
    signer = log_signer()
    if log_key_for_size(latest.tree_size).fingerprint != signer.fingerprint:
        latest = services.publish_checkpoint() or services.latest_checkpoint()
        note = services.cosigned_note(latest)
    if log_key_for_size(latest.tree_size).fingerprint != signer.fingerprint:
        raise ExportError("the log key changed during the export; try again")
    return latest, note, signer


def build(
    target,
    *,
    export_id: str,
    first: int = 0,
    end: int | None = None,
    select: Callable[[int, bytes], bool] | None = None,
    extra_files: Iterable[tuple[str, bytes]] = (),
    description: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Built:
    """Write the export of entries ``first .. end-1`` (all of them, or those ``select``
    keeps) to ``target`` (a path or a binary file), with the report files given.

    The anchor every proof leads to is the checkpoint the log serves as cosigned when it
    covers ``end`` (written with its witnesses' cosignatures); else the latest, published
    first if none covers ``end``. It is signed by the current log key (a new checkpoint
    is published if it predates a rotation), which signs the MANIFEST.
    """
    size = stored.tree_size()
    end = size if end is None else end
    if not 0 <= first < end <= size:
        raise ExportError(f"the range {first}-{end} is empty or outside the log (size {size})")
    latest, anchor_note, signer = _anchor(end)
    anchor = latest.tree_size
    mode = "range" if select is None else "selection"
    w = _Writer(target)
    try:
        checkpoints = list(
            Checkpoint.objects.filter(tree_size__gt=first, tree_size__lte=end).order_by("tree_size")
        )
        if not checkpoints or checkpoints[-1].tree_size != anchor:
            checkpoints.append(latest)
        for cp in checkpoints:
            note = anchor_note if cp.tree_size == anchor else cp.note
            w.add(f"checkpoints/{cp.tree_size}.note", note.encode())
        sizes = [cp.tree_size for cp in checkpoints]
        pairs = list(itertools.pairwise(sizes))
        if mode == "range" and end not in sizes:
            pairs.append((end, anchor))
        w.add(
            "consistency.jsonl",
            b"".join(
                _line({"old": a, "new": b, "proof": [_b64(h) for h in proof]})
                for (a, b), proof in zip(pairs, stored.consistency_proofs(pairs), strict=True)
            ),
        )
        # The key entries up to the anchor: the log key rotations among them show which
        # key signs each checkpoint.
        keys = list(
            Entry.objects.filter(kind__in=CORE_KEY_KINDS, index__lt=anchor)
            .order_by("index")
            .values_list("index", "leaf")
        )
        key_proofs = stored.inclusion_proofs([i for i, _ in keys], anchor)
        w.add(
            "keys.jsonl",
            b"".join(
                _line({"index": i, "leaf": _b64(bytes(leaf)), "proof": [_b64(h) for h in proof]})
                for (i, leaf), proof in zip(keys, key_proofs, strict=True)
            ),
        )
        if mode == "range" and first > 0:
            frontier = stored.read_hashes(merkle.root_indexes(first))
            w.add("frontier.json", _line({"size": first, "hashes": [_b64(h) for h in frontier]}))
        total = end - first
        # Progress about every 1 % of the range (at most every PAGE entries): a person
        # following a small export sees it move too.
        every = max(1, min(PAGE, total // 100))
        chosen: list[int] = []

        def lines() -> Iterable[bytes]:
            done = 0
            for index, leaf in _pages(first, end):
                if b"\n" in leaf:
                    raise ExportError(f"the leaf at {index} holds a newline")
                done += 1
                if select is None or select(index, leaf):
                    chosen.append(index)
                    yield leaf + b"\n"
                if progress and done % every == 0:
                    progress(done, total)
            if progress:
                progress(done, total)

        w.stream(ENTRIES, lines())
        if mode == "selection":

            def proofs() -> Iterable[bytes]:
                # A batch at a time: one query per batch, and memory flat however many.
                for at in range(0, len(chosen), stored.PROOFS_PER_QUERY):
                    batch = chosen[at : at + stored.PROOFS_PER_QUERY]
                    for i, proof in zip(batch, stored.inclusion_proofs(batch, anchor), strict=True):
                        yield _line({"index": i, "proof": [_b64(h) for h in proof]})

            w.stream("inclusion.jsonl", proofs())
        for name, data in extra_files:
            if name in w.files or name == MANIFEST or name.startswith(("checkpoints/", "/")):
                raise ExportError(f"{name}: a report file may not take that name")
            w.add(name, data)
        meta = {
            "format": FORMAT,
            "origin": signer.name,
            "export": export_id,
            "mode": mode,
            "first": first,
            "end": end,
            "anchor": anchor,
            "entries": len(chosen),
            "created": format_time(datetime.now(UTC)),
            **(description or {}),
        }
        w.add("export.json", json.dumps(meta, indent=2, sort_keys=True).encode() + b"\n")
        text = "".join(
            [f"{FORMAT}\n", f"origin {signer.name}\n", f"export {export_id}\n"]
            + [f"{sha} {n} {name}\n" for name, (n, sha) in sorted(w.files.items())]
        )
        manifest = sign_note(text, signer.note_signer())
        w.zip.writestr(MANIFEST, manifest.encode())
    finally:
        w.close()
    return Built(
        export_id,
        first,
        end,
        anchor,
        len(chosen),
        hashlib.sha256(manifest.encode()).hexdigest(),
        dict(w.files),
    )
