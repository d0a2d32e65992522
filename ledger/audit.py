"""Verify an audit export, or a single standard artefact, offline.

Needs Python and PyNaCl only: no Django, no database, no network::

    python -m ledger.audit verify <bundle.zip or directory> --vkey '<verifier key>'
    python -m ledger.audit checkpoint <note file> --vkey '<verifier key>' [--origin O]
    python -m ledger.audit inclusion --index I --size N (--leaf FILE | --leaf-hash H)
                                     --proof FILE (--root R | --checkpoint NOTE --vkey K)
    python -m ledger.audit consistency --old M --new N --proof FILE
                                     (--old-root R --new-root R | --old-checkpoint NOTE
                                      --new-checkpoint NOTE --vkey K)

The export format is described in ``docs/audit-export.md``. ``verify`` checks, and names
what fails (file, entry index, checkpoint size):

1. ``MANIFEST`` is a signed note by the log key, every file it lists has its size and
   SHA-256, and the bundle holds no file it does not list;
2. every checkpoint is a C2SP signed note by the log key, for the log's origin, and
   consecutive checkpoints are consistent (RFC 9162 consistency proofs);
3. every key entry (``keys.jsonl``) is included in the anchor checkpoint, and replaying
   them gives each entry's author key at its index (registrations, rotations,
   revocations); the genesis registers the verifier's key;
4. every entry's leaf has the leaf layout, its index, and a signature by the key valid at
   that index;
5. a contiguous export: the tree rebuilt from the entries (starting from the hashes of
   the subtrees before it) has the signed root at every checkpoint size in range, and is
   a prefix of the anchor checkpoint; a selection: every entry is included in the anchor;
6. what the callers add (``consortium.audit.figures`` recomputes the report's figures from the
   entries and compares them with the CSV files and the report).

Exit status: 0 when everything holds and everything could be checked; 1 when anything
fails; 3 when nothing fails but some checks could not be made on this bundle (each is
listed as SKIP, with the reason); 2 for a usage error.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import io
import itertools
import json
import os
import re
import sys
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ledger.core import merkle
from ledger.core.envelope import EnvelopeError, parse_leaf, verify_leaf_signature
from ledger.core.keyring import CORE_KEY_KINDS, Keyring, KeyringError, KeyState
from ledger.core.leafcheck import HEAD, TAIL, check_exported
from ledger.core.note import NoteError, open_checkpoint, open_note, parse_verifier_key

FORMAT = "consortium-ledger/audit-export/v1"
MANIFEST = "MANIFEST"
ENTRIES = "entries.jsonl"
BATCH = 2000
# Exit status when nothing failed but some checks could not be made (a selection, a
# range that does not start at index 0): not 0, which means everything was verified.
PARTIAL = 3
# Past this many failures of one kind, the rest are counted, not listed.
LISTED = 20


class BundleError(ValueError):
    """The bundle cannot be read far enough to check the rest; the message says why."""


# What reading a damaged or hostile bundle may raise: each becomes a named failure.
UNREADABLE = (
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    RecursionError,
    UnicodeDecodeError,
    zipfile.BadZipFile,
    OSError,
    EOFError,
)
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass
class Result:
    checks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # Checks that could not be made on this bundle (and why): nothing failed, but not
    # everything was verified.
    skipped: list[str] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def complete(self) -> bool:
        """Everything held, and everything could be checked."""
        return self.ok and not self.skipped

    def fail(self, message: str, group: str | None = None) -> None:
        """Record a failure; failures of one ``group`` are listed up to ``LISTED``."""
        if group is not None:
            n = self._counts[group] = self._counts.get(group, 0) + 1
            if n > LISTED:
                return
        self.failures.append(message)

    def close(self) -> None:
        for group, n in sorted(self._counts.items()):
            if n > LISTED:
                self.failures.append(f"... and {n - LISTED} more: {group}")
        self._counts.clear()


class Extension(Protocol):
    """A check that needs the payloads of some entries (the domain's figures)."""

    kinds: tuple[str, ...]  # kinds, or prefixes ending with "."

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        """An entry of one of ``kinds``: its leaf as JSON (``entry``, ``index``,
        ``integrated_time``, ``signature``), and its author's key state (``None`` if the
        author could not sign it)."""

    def finish(self, bundle: Bundle, result: Result) -> None: ...


# --- reading a bundle ------------------------------------------------------------------------


class Bundle:
    """A bundle as a zip file or as the directory it was unpacked into."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._zip = None
        if self.path.is_dir():
            self._names = sorted(
                p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()
            )
        else:
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (OSError, zipfile.BadZipFile) as exc:
                raise BundleError(f"{self.path}: not a zip file or a directory ({exc})") from exc
            names = [i.filename for i in self._zip.infolist() if not i.is_dir()]
            twice = sorted(n for n, k in Counter(names).items() if k > 1)
            if twice:
                # Zip tools differ on which copy they show: what is checked must be what
                # the auditor opens.
                raise BundleError(f"{self.path}: holds {twice[0]} more than once")
            self._names = sorted(names)

    def names(self) -> list[str]:
        return list(self._names)

    def has(self, name: str) -> bool:
        return name in self._names

    def open(self, name: str) -> io.BufferedIOBase:
        if self._zip is not None:
            return self._zip.open(name)
        target = (self.path / name).resolve()
        if self.path.resolve() not in target.parents:
            raise BundleError(f"{name}: outside the bundle")
        return open(target, "rb")

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def lines(self, name: str) -> Iterator[bytes]:
        with self.open(name) as f:
            for line in f:
                yield line.rstrip(b"\n")

    def json_lines(self, name: str) -> Iterator[tuple[int, dict]]:
        for number, line in enumerate(self.lines(name), start=1):
            try:
                value = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise BundleError(f"{name} line {number} is not JSON: {exc}") from exc
            if not isinstance(value, dict):
                raise BundleError(f"{name} line {number} is not a JSON object")
            yield number, value

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _b64(value, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleError(f"{what} is not base64") from exc


def _hashes(values, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise BundleError(f"{what} is not a list of hashes")
    out = [_b64(v, f"{what}[{i}]") for i, v in enumerate(values)]
    if any(len(h) != 32 for h in out):
        raise BundleError(f"{what} holds a hash that is not 32 bytes")
    return out


def _int(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BundleError(f"{what} is not a non-negative integer")
    return value


def read_manifest(text: str) -> tuple[str, str, dict[str, tuple[int, str]]]:
    """The origin, export id and files (path -> size, SHA-256) of a manifest's text."""
    lines = text.split("\n")[:-1]
    if len(lines) < 3 or lines[0] != FORMAT:
        raise BundleError(f"MANIFEST does not start with {FORMAT}")
    if not lines[1].startswith("origin ") or not lines[2].startswith("export "):
        raise BundleError("MANIFEST names its origin and export on its second and third lines")
    files: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(lines[3:], start=4):
        parts = line.split(" ")
        if len(parts) != 3 or len(parts[0]) != 64 or not _DECIMAL.fullmatch(parts[1]):
            raise BundleError(f"MANIFEST line {number} is not <sha256> <size> <path>")
        if parts[2] in files or parts[2] == MANIFEST:
            raise BundleError(f"MANIFEST line {number} lists {parts[2]} again")
        files[parts[2]] = (int(parts[1]), parts[0])
    return lines[1][len("origin ") :], lines[2][len("export ") :], files


def _digest(stream) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(1 << 20):
        h.update(chunk)
        size += len(chunk)
    return size, h.hexdigest()


# --- verifying a bundle ----------------------------------------------------------------------


@dataclass
class _KeyEntry:
    index: int
    leaf_bytes: bytes
    kind: str
    author: str
    payload: dict
    leaf: object


def verify(
    path: Path,
    vkey: str,
    *,
    extensions: Sequence[Extension] = (),
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Check the bundle at ``path`` under the log's verifier key ``vkey``."""
    result = Result()
    try:
        bundle = Bundle(path)
    except BundleError as exc:
        result.fail(str(exc))
        return result
    try:
        _verify(bundle, vkey, result, extensions, workers, progress)
    except BundleError as exc:
        result.fail(str(exc))
    except UNREADABLE as exc:
        result.fail(f"the bundle cannot be read: {type(exc).__name__}: {exc}")
    finally:
        bundle.close()
    result.close()
    return result


def _verify(bundle: Bundle, vkey: str, result: Result, extensions, workers, progress) -> None:
    try:
        verifier = parse_verifier_key(vkey)
    except NoteError as exc:
        raise BundleError(f"the verifier key: {exc}") from exc
    if not bundle.has(MANIFEST):
        raise BundleError("MANIFEST: missing")
    try:
        # The note's exact bytes: a signed note never has CR or CRLF line ends.
        manifest_text = open_note(bundle.read(MANIFEST), [verifier]).text
    except NoteError as exc:
        raise BundleError(f"MANIFEST is not signed by {verifier.name}: {exc}") from exc
    origin, export_id, listed = read_manifest(manifest_text)
    if origin != verifier.name:
        raise BundleError(
            f"MANIFEST is for the log {origin!r}, the verifier key for {verifier.name!r}"
        )
    result.checks.append(
        f"MANIFEST: export {export_id} of {origin}, signed by the log key, {len(listed)} files"
    )
    present = set(bundle.names()) - {MANIFEST}
    for name in sorted(present - set(listed)):
        result.fail(f"{name}: in the bundle but not in the MANIFEST")
    for name in sorted(set(listed) - present):
        result.fail(f"{name}: in the MANIFEST but missing from the bundle")
    bad_files = set()
    for name in sorted(present & set(listed)):
        if name == ENTRIES:
            continue  # hashed while its entries are read
        with bundle.open(name) as f:
            got = _digest(f)
        if got != listed[name]:
            bad_files.add(name)
            result.fail(f"{name}: its size or SHA-256 is not the MANIFEST's")
    if present & set(listed) and not bad_files - {ENTRIES}:
        result.checks.append("every file but the entries: size and SHA-256 as listed")

    try:
        meta = json.loads(bundle.read("export.json"))
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise BundleError(f"export.json: missing or not JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"export.json is not a {FORMAT} description")
    if (meta.get("origin"), meta.get("export")) != (origin, export_id):
        raise BundleError("export.json names another origin or export than the MANIFEST")
    mode = meta.get("mode")
    if mode not in ("range", "selection"):
        raise BundleError("export.json: mode is range or selection")
    first, end = _int(meta.get("first"), "export.json first"), _int(meta.get("end"), "end")
    anchor = _int(meta.get("anchor"), "export.json anchor")
    if not first <= end <= anchor or anchor == 0:
        raise BundleError(f"export.json: first {first} <= end {end} <= anchor {anchor} (> 0)")

    roots = _checkpoints(bundle, verifier, origin, result)
    if anchor not in roots:
        raise BundleError(f"checkpoints/{anchor}.note (the anchor): missing or not valid")
    end_proof = _consistency(bundle, roots, end, result)
    keys = _key_entries(bundle, anchor, roots[anchor], end, result)
    keyring = Keyring()
    pending = iter(sorted(keys))
    state = {"next": next(pending, None)}

    def advance(to: int) -> None:
        """Admit the key entries before index ``to``."""
        while state["next"] is not None and state["next"] < to:
            _admit(keyring, keys[state["next"]], verifier, result)
            state["next"] = next(pending, None)

    if first > 0:
        result.skipped.append(
            f"the key history before index {first:,}: an export that does not "
            f"start at index 0 cannot show that no key entry before it is "
            f"missing"
        )
    if mode == "selection":
        result.skipped.append(
            "the selection's completeness: each entry is proven in the log, "
            "not that every entry concerning the scope was selected"
        )
    total = (end - first) if mode == "range" else _int(meta.get("entries"), "export.json entries")
    if mode == "range":
        builder = _frontier(bundle, first)
        checker = _RangeTree(builder, roots, first, end, result)
    else:
        checker = _Selection(bundle, anchor, roots[anchor], first, end, result)
    digest = hashlib.sha256()
    size = 0
    count = 0
    seen_keys: set[int] = set()
    batch: list[tuple[int, bytes, bytes | None]] = []
    wanted = [(e, tuple(e.kinds)) for e in extensions]
    with _Checker(workers, total) as run:
        if not bundle.has(ENTRIES):
            raise BundleError(f"{ENTRIES}: missing")
        with bundle.open(ENTRIES) as f:
            for number, raw in enumerate(f, start=1):
                digest.update(raw)
                size += len(raw)
                line = raw[:-1] if raw.endswith(b"\n") else raw
                index = checker.expect(number)
                head = HEAD.match(line)
                tail = TAIL.search(line, max(0, len(line) - 256))
                said = int(tail.group(2)) if tail else None
                if said is not None and said != index and mode == "range":
                    result.fail(
                        f"{ENTRIES} line {number}: the entry at index {said} stands "
                        f"where index {index} belongs (an entry dropped, added or "
                        f"moved)",
                        "entries out of place",
                    )
                if mode == "selection":
                    index = said if said is not None else -1
                    checker.place(number, index)
                advance(index if index else 1)  # the genesis registers its own signer
                public_key = None
                if head is not None:
                    author, kind = head.group(1).decode(), head.group(3).decode()
                    try:
                        public_key = keyring.public_key_for(author, index)
                    except KeyringError as exc:
                        result.fail(f"{ENTRIES} line {number} (index {index}): {exc}", "authors")
                    if kind in CORE_KEY_KINDS:
                        seen_keys.add(index)
                        k = keys.get(index)
                        if k is None or k.leaf_bytes != line:
                            result.fail(
                                f"{ENTRIES} line {number} (index {index}): a {kind} "
                                f"entry that keys.jsonl does not hold"
                            )
                    for ext, kinds in wanted:
                        if kind in kinds or any(
                            k.endswith(".") and kind.startswith(k) for k in kinds
                        ):
                            # A malformed leaf is reported by the leaf check.
                            with contextlib.suppress(
                                ValueError, KeyError, TypeError, RecursionError
                            ):
                                ext.take(
                                    index,
                                    json.loads(line),
                                    keyring.keys.get(author) if public_key else None,
                                )
                batch.append((index, line, public_key))
                count += 1
                if len(batch) >= BATCH:
                    run.submit(batch, checker)
                    batch = []
                    if progress:
                        progress(count, total)
            if batch:
                run.submit(batch, checker)
        run.drain(checker)
    if progress:
        progress(count, total)
    advance(end)
    kinds = Counter((k.kind, k.custody) for k in keyring.keys.values())
    if kinds:
        # Which signatures the operator could have made: those of hosted keys.
        result.checks.append(
            "keys registered: "
            + ", ".join(f"{n} {kind} ({custody})" for (kind, custody), n in sorted(kinds.items()))
        )
    if ENTRIES in listed and (size, digest.hexdigest()) != listed[ENTRIES]:
        result.fail(f"{ENTRIES}: its size or SHA-256 is not the MANIFEST's")
    for index in sorted(k for k in keys if first <= k < end and k not in seen_keys):
        if mode == "range":
            result.fail(f"keys.jsonl holds the key entry at index {index}, which {ENTRIES} lacks")
    checker.finish(count, total, end_proof, anchor, roots)
    for failure in run.failures:
        index, reason = failure
        result.fail(f"{ENTRIES}: entry {index}: {reason}", "entries")
    if not run.failures:
        result.checks.append(
            f"{count:,} entries: layout, index and signature by the key valid at their index"
        )
    for ext in extensions:
        try:
            ext.finish(bundle, result)
        except UNREADABLE as exc:
            result.fail(
                f"the report cannot be read ({type(ext).__name__}): {type(exc).__name__}: {exc}"
            )


def _checkpoints(bundle: Bundle, verifier, origin: str, result: Result) -> dict[int, bytes]:
    roots: dict[int, bytes] = {}
    for name in bundle.names():
        if not name.startswith("checkpoints/"):
            continue
        stem = name[len("checkpoints/") :].removesuffix(".note")
        if not _DECIMAL.fullmatch(stem) or not name.endswith(".note"):
            result.fail(f"{name}: not a checkpoints/<size>.note file")
            continue
        try:
            cp = open_checkpoint(bundle.read(name), verifier, origin=origin)
        except NoteError as exc:
            result.fail(f"{name}: not a checkpoint signed by the log key ({exc})")
            continue
        if cp.size != int(stem):
            result.fail(f"{name}: the checkpoint is for tree size {cp.size}")
            continue
        roots[cp.size] = cp.root
    if roots:
        result.checks.append(
            f"{len(roots)} checkpoints signed by the log key, sizes "
            f"{min(roots):,} to {max(roots):,}"
        )
    return roots


def _consistency(bundle: Bundle, roots: dict[int, bytes], end: int, result: Result):
    """Check consistency.jsonl; return the proof from ``end`` to the anchor, if any."""
    proven: set[tuple[int, int]] = set()
    end_proofs: dict[int, list[bytes]] = {}
    if not bundle.has("consistency.jsonl"):
        raise BundleError("consistency.jsonl: missing")
    for number, item in bundle.json_lines("consistency.jsonl"):
        old, new = _int(item.get("old"), "old"), _int(item.get("new"), "new")
        proof = _hashes(item.get("proof"), f"consistency.jsonl line {number} proof")
        if old == end and old not in roots:
            end_proofs[new] = proof
            continue
        if old not in roots or new not in roots:
            result.fail(f"consistency.jsonl line {number}: no checkpoint of size {old} or {new}")
            continue
        try:
            merkle.verify_consistency(old, new, roots[old], roots[new], proof)
        except merkle.ProofError as exc:
            result.fail(
                f"consistency.jsonl line {number}: the checkpoint of size {new:,} does "
                f"not extend the one of size {old:,} ({exc})"
            )
            continue
        proven.add((old, new))
    sizes = sorted(roots)
    missing = [(a, b) for a, b in itertools.pairwise(sizes) if (a, b) not in proven]
    for a, b in missing:
        result.fail(f"no valid consistency proof from checkpoint {a:,} to {b:,}")
    if len(sizes) > 1 and not missing:
        result.checks.append(f"{len(sizes) - 1} consistency proofs between consecutive checkpoints")
    return end_proofs


def _key_entries(
    bundle: Bundle, anchor: int, root: bytes, end: int, result: Result
) -> dict[int, _KeyEntry]:
    keys: dict[int, _KeyEntry] = {}
    if not bundle.has("keys.jsonl"):
        raise BundleError("keys.jsonl: missing")
    last = -1
    for number, item in bundle.json_lines("keys.jsonl"):
        index = _int(item.get("index"), f"keys.jsonl line {number} index")
        leaf_bytes = _b64(item.get("leaf"), f"keys.jsonl line {number} leaf")
        proof = _hashes(item.get("proof"), f"keys.jsonl line {number} proof")
        if index <= last:
            raise BundleError(f"keys.jsonl line {number}: indexes must increase")
        last = index
        try:
            leaf = parse_leaf(leaf_bytes)
        except EnvelopeError as exc:
            result.fail(f"keys.jsonl line {number} (index {index}): {exc}")
            continue
        kind = leaf.envelope["kind"]
        if leaf.index != index or kind not in CORE_KEY_KINDS:
            result.fail(f"keys.jsonl line {number}: not the key entry at index {index}")
            continue
        try:
            merkle.verify_inclusion(index, anchor, merkle.leaf_hash(leaf_bytes), proof, root)
        except merkle.ProofError as exc:
            result.fail(
                f"keys.jsonl line {number} (index {index}): not in the anchor checkpoint ({exc})"
            )
            continue
        keys[index] = _KeyEntry(
            index, leaf_bytes, kind, leaf.envelope["author"], leaf.envelope["payload"], leaf
        )
    if 0 not in keys:
        raise BundleError("keys.jsonl: the log's genesis (index 0) is missing")
    result.checks.append(f"{len(keys)} key entries, each included in the anchor checkpoint")
    return keys


def _admit(keyring: Keyring, k: _KeyEntry, verifier, result: Result) -> None:
    try:
        if k.index == 0:
            keyring.admit(0, k.kind, k.payload, k.author)
            if keyring.keys[keyring.log_key].public_key != verifier.public_key:
                raise KeyringError("the genesis registers another log key than the verifier key")
            public_key = verifier.public_key
        else:
            public_key = keyring.public_key_for(k.author, k.index)
            if not verify_leaf_signature(k.leaf, public_key):
                raise KeyringError("its signature does not verify")
            keyring.admit(k.index, k.kind, k.payload, k.author)
            return
        if not verify_leaf_signature(k.leaf, public_key):
            raise KeyringError("its signature does not verify")
    except KeyringError as exc:
        result.fail(f"key entry at index {k.index} ({k.kind}): {exc}")


def _frontier(bundle: Bundle, first: int) -> merkle.TreeBuilder:
    if first == 0:
        return merkle.TreeBuilder()
    try:
        data = json.loads(bundle.read("frontier.json"))
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise BundleError(f"frontier.json: missing or not JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("size") != first:
        raise BundleError(f"frontier.json is not the frontier at size {first}")
    hashes = _hashes(data.get("hashes"), "frontier.json hashes")
    if len(hashes) != len(merkle.root_indexes(first)):
        raise BundleError(
            f"frontier.json holds {len(hashes)} hashes; size {first} has "
            f"{len(merkle.root_indexes(first))}"
        )
    return merkle.TreeBuilder.resume(first, hashes)


class _RangeTree:
    """A contiguous export: rebuild the tree and compare it with every checkpoint."""

    def __init__(self, builder, roots, first, end, result):
        self.builder, self.roots, self.first, self.end, self.result = (
            builder,
            roots,
            first,
            end,
            result,
        )
        self.matched = 0

    def expect(self, number: int) -> int:
        return self.first + number - 1

    def hashes(self, batch, hashes: bytes) -> None:
        for i in range(len(batch)):
            self.builder.push(hashes[32 * i : 32 * i + 32])
            size = self.builder.size
            if size in self.roots:
                if self.builder.root() != self.roots[size]:
                    self.result.fail(
                        f"checkpoint at size {size:,}: the tree rebuilt from the "
                        f"entries does not have its root"
                    )
                else:
                    self.matched += 1

    def finish(self, count, total, end_proofs, anchor, roots) -> None:
        if count != total:
            self.result.fail(
                f"{ENTRIES} holds {count:,} entries; indexes {self.first:,} to "
                f"{self.end:,} are {total:,}"
            )
            return
        if self.end in roots:
            if self.matched:
                self.result.checks.append(
                    f"the tree rebuilt from the entries has the signed "
                    f"root at {self.matched} checkpoint sizes"
                )
            return
        proof = end_proofs.get(anchor)
        if proof is None:
            self.result.fail(
                f"consistency.jsonl: no proof from the export's end {self.end:,} "
                f"to the anchor {anchor:,}"
            )
            return
        try:
            merkle.verify_consistency(self.end, anchor, self.builder.root(), roots[anchor], proof)
        except merkle.ProofError as exc:
            self.result.fail(
                f"the entries up to {self.end:,} are not a prefix of the signed "
                f"tree of size {anchor:,} ({exc})"
            )
            return
        self.result.checks.append(
            f"the tree rebuilt from the entries has the signed root at "
            f"{self.matched} checkpoint sizes and is a prefix of the "
            f"anchor ({anchor:,})"
        )


class _Selection:
    """Selected entries: each proven included in the anchor checkpoint."""

    def __init__(self, bundle, anchor, root, first, end, result):
        self.anchor, self.root, self.first, self.end, self.result = anchor, root, first, end, result
        self.proofs = (
            bundle.json_lines("inclusion.jsonl") if bundle.has("inclusion.jsonl") else None
        )
        if self.proofs is None:
            raise BundleError("inclusion.jsonl: missing")
        self.last = -1
        self.indexes: list[int] = []
        self.bad = 0

    def expect(self, number: int) -> int:
        return -1

    def place(self, number: int, index: int) -> None:
        if index <= self.last or not self.first <= index < self.end:
            self.result.fail(
                f"{ENTRIES} line {number}: index {index} is out of order or out of "
                f"the export's range",
                "entries out of place",
            )
        self.last = max(self.last, index)
        self.indexes.append(index)

    def hashes(self, batch, hashes: bytes) -> None:
        for i, (index, _, _) in enumerate(batch):
            try:
                number, item = next(self.proofs)
            except StopIteration:
                raise BundleError("inclusion.jsonl holds fewer proofs than entries") from None
            if item.get("index") != index:
                raise BundleError(f"inclusion.jsonl line {number} is not the proof for {index}")
            proof = _hashes(item.get("proof"), f"inclusion.jsonl line {number} proof")
            try:
                merkle.verify_inclusion(
                    index, self.anchor, hashes[32 * i : 32 * i + 32], proof, self.root
                )
            except merkle.ProofError as exc:
                self.bad += 1
                self.result.fail(
                    f"entry {index}: not included in the anchor checkpoint ({exc})", "inclusion"
                )

    def finish(self, count, total, end_proofs, anchor, roots) -> None:
        if count != total:
            self.result.fail(f"{ENTRIES} holds {count:,} entries; export.json says {total:,}")
        if next(self.proofs, None) is not None:
            self.result.fail("inclusion.jsonl holds more proofs than entries")
        if not self.bad:
            self.result.checks.append(
                f"{count:,} selected entries, each included in the anchor checkpoint ({anchor:,})"
            )


class _Checker:
    """Leaf checks (layout, signature, leaf hash) on a process pool, results in order."""

    def __init__(self, workers: int | None, total: int):
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        if total < 4 * BATCH:
            self.workers = 0
        self.pool = None
        self.waiting: list = []
        self.failures: list[tuple[int, str]] = []

    def __enter__(self):
        if self.workers > 0:
            import multiprocessing

            self.pool = multiprocessing.get_context("spawn").Pool(self.workers)
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()

    def submit(self, batch, checker) -> None:
        if self.pool is None:
            self._take(batch, check_exported(batch), checker)
            return
        self.waiting.append((batch, self.pool.apply_async(check_exported, (batch,))))
        while len(self.waiting) > 2 * self.workers + 2:
            self._take_first(checker)

    def _take_first(self, checker) -> None:
        batch, pending = self.waiting.pop(0)
        self._take(batch, pending.get(), checker)

    def _take(self, batch, done, checker) -> None:
        failures, hashes = done
        self.failures.extend(failures)
        checker.hashes(batch, hashes)

    def drain(self, checker) -> None:
        while self.waiting:
            self._take_first(checker)


# --- single artefacts ------------------------------------------------------------------------


def _read_hash(text: str, what: str) -> bytes:
    text = text.strip()
    if not text:
        raise BundleError(f"{what}: empty, not a hash")
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise BundleError(f"{what}: not hex or base64") from exc
    if len(raw) != 32:
        raise BundleError(f"{what}: not 32 bytes")
    return raw


def read_proof(path: Path) -> list[bytes]:
    """A proof file: JSON (a list of hashes, or an object with ``proof`` or ``hashes``, as
    the API returns it), or one base64 or hex hash per line (any line end: each hash is
    checked against the root, so spacing cannot change what is proven)."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{path}: not UTF-8") from exc
    try:
        value = json.loads(text)
    except ValueError:
        # Every line is a hash: a blank one is garbage in a proof, not padding.
        return [
            _read_hash(line, f"{path} line {n}")
            for n, line in enumerate(text.splitlines(), start=1)
        ]
    if isinstance(value, dict):
        value = value.get("proof", value.get("hashes"))
    if not isinstance(value, list):
        raise BundleError(f"{path}: not a list of hashes")
    return [_read_hash(str(h), f"{path}[{i}]") for i, h in enumerate(value)]


def read_checkpoint(path: Path, vkey: str, origin: str | None = None):
    """A signed checkpoint from a file, read as bytes: a text read would fold CRLF line
    ends into newlines and accept a note no other reader does."""
    verifier = parse_verifier_key(vkey)
    try:
        return open_checkpoint(Path(path).read_bytes(), verifier, origin=origin)
    except NoteError as exc:
        raise BundleError(f"{path}: {exc}") from exc


def _root(args, which: str = "") -> tuple[int | None, bytes]:
    note = getattr(args, f"{which}checkpoint")
    if note is not None:
        if not args.vkey:
            raise BundleError("--vkey is needed to read a checkpoint")
        cp = read_checkpoint(note, args.vkey)
        return cp.size, cp.root
    root = getattr(args, f"{which}root")
    if root is None:
        raise BundleError(
            f"give --{which.replace('_', '-')}root or --{which.replace('_', '-')}checkpoint"
        )
    return None, _read_hash(root, f"--{which.replace('_', '-')}root")


def _artefact(args) -> list[str]:
    """Check one standard artefact; returns what was checked (raises on failure)."""
    if args.action == "checkpoint":
        cp = read_checkpoint(args.note, args.vkey, origin=args.origin)
        return [
            f"checkpoint of {cp.origin!r}: tree size {cp.size:,}, root "
            f"{base64.b64encode(cp.root).decode()}, signed by the key"
        ]
    if args.action == "inclusion":
        size, root = _root(args)
        if size is not None and size != args.size:
            raise BundleError(f"the checkpoint is for size {size}, not --size {args.size}")
        if args.leaf is not None:
            leaf_hash = merkle.leaf_hash(Path(args.leaf).read_bytes())
        elif args.leaf_hash is not None:
            leaf_hash = _read_hash(args.leaf_hash, "--leaf-hash")
        else:
            raise BundleError("give --leaf or --leaf-hash")
        merkle.verify_inclusion(args.index, args.size, leaf_hash, read_proof(args.proof), root)
        return [
            f"leaf {leaf_hash.hex()} is at index {args.index:,} of the tree of size {args.size:,}"
        ]
    old_size, old_root = _root(args, "old_")
    new_size, new_root = _root(args, "new_")
    old = args.old if args.old is not None else old_size
    new = args.new if args.new is not None else new_size
    if old is None or new is None:
        raise BundleError("give --old and --new (or checkpoints)")
    if (old_size not in (None, old)) or (new_size not in (None, new)):
        raise BundleError("a checkpoint's size differs from --old/--new")
    merkle.verify_consistency(old, new, old_root, new_root, read_proof(args.proof))
    return [f"the tree of size {old:,} is a prefix of the tree of size {new:,}"]


# --- command line ----------------------------------------------------------------------------


def _progress_bar() -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        end = "\n" if done >= total else ""
        print(
            f"\rentries {done:>12,}/{total:,} [{bar:<30}] {share:4.0%}",
            end=end,
            file=sys.stderr,
            flush=True,
        )

    return show


def parser(prog: str = "python -m ledger.audit", what: str = "") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Verify an audit export" + what + ", a signed checkpoint, or an RFC 9162 "
        "inclusion or consistency proof, offline (Python and PyNaCl only).",
        epilog="Exit status: 0 everything held and could be checked; 1 something failed; "
        "3 nothing failed but some checks could not be made on this bundle (listed as SKIP); "
        "2 usage error.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    v = sub.add_parser("verify", help="Check a whole audit export (zip file or directory).")
    v.add_argument(
        "bundle", type=Path, help="The export: its zip file, or the directory it was unpacked into."
    )
    v.add_argument("--vkey", required=True, help="The log's verifier key, name+hex8+base64.")
    v.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Processes checking signatures (default: one per core).",
    )
    c = sub.add_parser("checkpoint", help="Check a C2SP signed checkpoint.")
    c.add_argument("note", type=Path, help="The signed note, as a file.")
    c.add_argument("--vkey", required=True, help="The log's verifier key, name+hex8+base64.")
    c.add_argument("--origin", default=None, help="Require this origin line.")
    i = sub.add_parser("inclusion", help="Check an RFC 9162 inclusion proof.")
    i.add_argument("--index", type=int, required=True, help="The leaf's index.")
    i.add_argument("--size", type=int, required=True, help="The size of the tree it is in.")
    i.add_argument("--leaf", type=Path, help="The leaf bytes (hashed as RFC 9162 leaves are).")
    i.add_argument("--leaf-hash", help="The leaf hash, hex or base64.")
    i.add_argument("--proof", type=Path, required=True, help="JSON or one hash per line.")
    i.add_argument("--root", help="The root hash, hex or base64.")
    i.add_argument("--checkpoint", type=Path, help="A signed checkpoint (with --vkey).")
    i.add_argument("--vkey")
    k = sub.add_parser("consistency", help="Check an RFC 9162 consistency proof.")
    k.add_argument("--old", type=int, help="The older tree's size.")
    k.add_argument("--new", type=int, help="The newer tree's size.")
    k.add_argument("--proof", type=Path, required=True, help="JSON or one hash per line.")
    k.add_argument("--old-root")
    k.add_argument("--new-root")
    k.add_argument("--old-checkpoint", type=Path)
    k.add_argument("--new-checkpoint", type=Path)
    k.add_argument("--vkey")
    return p


def run(
    argv: list[str] | None = None,
    extensions: Sequence[Extension] = (),
    prog: str | None = None,
    what: str = "",
) -> int:
    args = parser(prog or "python -m ledger.audit", what).parse_args(argv)
    if args.action == "verify":
        result = verify(
            args.bundle,
            args.vkey,
            extensions=extensions,
            workers=args.workers,
            progress=_progress_bar(),
        )
    else:
        result = Result()
        try:
            result.checks.extend(_artefact(args))
        except (BundleError, NoteError, merkle.ProofError, OSError, ValueError) as exc:
            result.fail(str(exc))
    for line in result.checks:
        print(f"ok   {line}")
    for line in result.skipped:
        print(f"SKIP {line}")
    for line in result.failures:
        print(f"FAIL {line}")
    if not result.ok:
        print(f"NOT VERIFIED: {len(result.failures)} failures")
        return 1
    if result.skipped:
        print(f"VERIFIED IN PART: {len(result.skipped)} checks could not be made on this bundle")
        return PARTIAL
    print("VERIFIED")
    return 0


if __name__ == "__main__":
    sys.exit(run())
