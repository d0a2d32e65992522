"""Reading a bundle, and check 1: its MANIFEST, signed by the log key, lists every file
with its size and SHA-256; and what ``export.json`` says the export holds."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ledger.audit.result import Result
from ledger.core.note import NoteError, Verifier, open_note

FORMAT = "consortium-ledger/audit-export/v1"
MANIFEST = "MANIFEST"
ENTRIES = "entries.jsonl"


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
DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


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


# --- values in the bundle's files ------------------------------------------------------------


def base64_value(value, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleError(f"{what} is not base64") from exc


def hash_list(values, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise BundleError(f"{what} is not a list of hashes")
    out = [base64_value(v, f"{what}[{i}]") for i, v in enumerate(values)]
    if any(len(h) != 32 for h in out):
        raise BundleError(f"{what} holds a hash that is not 32 bytes")
    return out


def non_negative(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BundleError(f"{what} is not a non-negative integer")
    return value


# --- check 1: the MANIFEST -------------------------------------------------------------------


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
        if len(parts) != 3 or len(parts[0]) != 64 or not DECIMAL.fullmatch(parts[1]):
            raise BundleError(f"MANIFEST line {number} is not <sha256> <size> <path>")
        if parts[2] in files or parts[2] == MANIFEST:
            raise BundleError(f"MANIFEST line {number} lists {parts[2]} again")
        files[parts[2]] = (int(parts[1]), parts[0])
    return lines[1][len("origin ") :], lines[2][len("export ") :], files


def digest(stream) -> tuple[int, str]:
    """The size and SHA-256 (hex) of what ``stream`` holds, read a MiB at a time."""
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(1 << 20):
        h.update(chunk)
        size += len(chunk)
    return size, h.hexdigest()


def check_manifest(
    bundle: Bundle, verifiers: list[Verifier], result: Result
) -> tuple[str, str, dict[str, tuple[int, str]]]:
    """The MANIFEST, signed by a log key (``verifiers``: the log's keys, which share its
    origin) for its origin, and every file it lists but the entries (hashed as they are
    read): its origin, export id and files. Which key must sign it (the anchor's) is
    checked once the anchor is known."""
    name = verifiers[0].name
    if not bundle.has(MANIFEST):
        raise BundleError("MANIFEST: missing")
    try:
        # The note's exact bytes: a signed note never has CR or CRLF line ends.
        manifest_text = open_note(bundle.read(MANIFEST), verifiers).text
    except NoteError as exc:
        raise BundleError(f"MANIFEST is not signed by {name}: {exc}") from exc
    origin, export_id, listed = read_manifest(manifest_text)
    if origin != name:
        raise BundleError(f"MANIFEST is for the log {origin!r}, the verifier key for {name!r}")
    result.checks.append(
        f"MANIFEST: export {export_id} of {origin}, signed by the log key, {len(listed)} files"
    )
    _check_files(bundle, listed, result)
    return origin, export_id, listed


def _check_files(bundle: Bundle, listed: dict[str, tuple[int, str]], result: Result) -> None:
    """The bundle holds the files the MANIFEST lists, no other, each of its size and hash."""
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
            got = digest(f)
        if got != listed[name]:
            bad_files.add(name)
            result.fail(f"{name}: its size or SHA-256 is not the MANIFEST's")
    if present & set(listed) and not bad_files - {ENTRIES}:
        result.checks.append("every file but the entries: size and SHA-256 as listed")


# --- export.json -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Description:
    """What ``export.json`` says: a range or a selection of the indexes ``first`` to
    ``end`` (exclusive), proven in the checkpoint of size ``anchor``."""

    mode: str
    first: int
    end: int
    anchor: int
    meta: dict

    @property
    def ranged(self) -> bool:
        return self.mode == "range"

    def total(self) -> int:
        """How many entries ``entries.jsonl`` must hold."""
        if self.ranged:
            return self.end - self.first
        return non_negative(self.meta.get("entries"), "export.json entries")


def read_description(bundle: Bundle, origin: str, export_id: str) -> Description:
    """``export.json``, for the MANIFEST's origin and export."""
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
    first = non_negative(meta.get("first"), "export.json first")
    end = non_negative(meta.get("end"), "end")
    anchor = non_negative(meta.get("anchor"), "export.json anchor")
    if not first <= end <= anchor or anchor == 0:
        raise BundleError(f"export.json: first {first} <= end {end} <= anchor {anchor} (> 0)")
    return Description(mode, first, end, anchor, meta)
