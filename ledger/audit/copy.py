"""A log's copy, as a witness's mirror writes it (``python -m ledger.witness export``):
every entry from index 0 and the log's checkpoint of that size.

The same checks as an audit export's (``phases``), from the copy alone: the checkpoint
is signed by the log key for the copy's origin; the key history is the copy's own key
entries, replayed in order (from the genesis, which registers the verifier's key); every
entry has the leaf layout, its index and a signature by the key valid at that index; the
tree rebuilt from the entries has the checkpoint's root.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ledger.audit.bundle import ENTRIES, UNREADABLE, Bundle, BundleError, Description
from ledger.audit.entries import read_entries
from ledger.audit.keys import KeyEntry, KeyHistory, _key_entry
from ledger.audit.phases import _leaf_failures, _verifier
from ledger.audit.result import Result
from ledger.audit.tree import RangeTree
from ledger.core import merkle
from ledger.core.keyring import CORE_KEY_KINDS
from ledger.core.leafcheck import HEAD
from ledger.core.note import NoteError, open_checkpoint

FORMAT = "consortium-ledger/log-copy/v1"


def verify_copy(
    path: Path,
    vkey: str,
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Check the copy at ``path`` (a directory or a zip of it) under the log's key."""
    result = Result()
    try:
        bundle = Bundle(path)
    except BundleError as exc:
        result.fail(str(exc))
        return result
    try:
        _verify(bundle, vkey, result, workers, progress)
    except BundleError as exc:
        result.fail(str(exc))
    except UNREADABLE as exc:
        result.fail(f"the copy cannot be read: {type(exc).__name__}: {exc}")
    finally:
        bundle.close()
    result.close()
    return result


def _verify(bundle: Bundle, vkey: str, result: Result, workers, progress) -> None:
    verifier = _verifier(vkey)
    try:
        meta = json.loads(bundle.read("copy.json"))
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise BundleError(f"copy.json: missing or not JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"copy.json is not a {FORMAT} description")
    try:
        checkpoint = open_checkpoint(bundle.read("checkpoint.note"), verifier, meta.get("origin"))
    except NoteError as exc:
        raise BundleError(f"checkpoint.note is not the log's checkpoint: {exc}") from exc
    size = checkpoint.size
    if meta.get("size") != size or size == 0:
        raise BundleError(f"copy.json says {meta.get('size')} entries; checkpoint.note {size}")
    result.checks.append(
        f"checkpoint.note: {checkpoint.origin}, size {size:,}, signed by the log key"
    )
    history = KeyHistory(_key_entries(bundle, result), verifier, result)
    plan = Description("range", 0, size, size, meta)
    roots = {size: checkpoint.root}
    tree = RangeTree(merkle.TreeBuilder(), roots, plan, result)
    read = read_entries(bundle, size, history, tree, (), workers, progress, result)
    history.advance(size)
    history.report()
    tree.finish(read.count, size, {}, size, roots)
    _leaf_failures(read, result)


def _key_entries(bundle: Bundle, result: Result) -> dict[int, KeyEntry]:
    """The copy's key entries, by index: its key history."""
    if not bundle.has(ENTRIES):
        raise BundleError(f"{ENTRIES}: missing")
    keys: dict[int, KeyEntry] = {}
    for number, line in enumerate(bundle.lines(ENTRIES), start=1):
        head = HEAD.match(line)
        if head is not None and head.group(3).decode() in CORE_KEY_KINDS:
            entry = _key_entry(number, number - 1, line, result)
            if entry is not None:
                keys[number - 1] = entry
    if 0 not in keys:
        raise BundleError(f"{ENTRIES}: the log's genesis (index 0) is not its first entry")
    result.checks.append(f"{len(keys)} key entries, replayed from the genesis")
    return keys
