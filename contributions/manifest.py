"""Dataset manifests: every file's path, size and SHA-256, and a root hash over them, so
that a dataset is registered by its hash and its bytes never leave the member.

Pure Python (no Django): a member can run it where the data lives.

The manifest is a text, one line per file, sorted by the path's UTF-8 bytes::

    <path>\\t<size>\\t<sha256>\\n

with paths relative to the dataset's directory, ``/``-separated. The root hash is the
SHA-256 of that text, so anyone can recompute it with standard tools::

    find . -type f -printf '%P\\t%s\\n' | sort | while IFS=$'\\t' read -r p s; do
        printf '%s\\t%s\\t%s\\n' "$p" "$s" "$(sha256sum < "$p" | cut -d' ' -f1)"; done |
        LC_ALL=C sort | sha256sum

Files are hashed by streaming (a fixed buffer, whatever their size), on every core.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path


class ManifestError(ValueError):
    """A directory that cannot be described by a manifest."""


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    files: tuple[FileEntry, ...]

    @property
    def text(self) -> bytes:
        return b"".join(f"{f.path}\t{f.size}\t{f.sha256}\n".encode() for f in self.files)

    @property
    def root(self) -> str:
        return hashlib.sha256(self.text).hexdigest()

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def list_files(root: Path) -> list[tuple[str, Path, int]]:
    """Every regular file below ``root``: (relative path, absolute path, size), sorted by
    the relative path's UTF-8 bytes. Symbolic links are refused: a manifest describes
    bytes, not where they point."""
    if not root.is_dir():
        raise ManifestError(f"{root} is not a directory")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in (*dirnames, *filenames):
            full = Path(dirpath) / name
            if full.is_symlink():
                raise ManifestError(f"{full} is a symbolic link: copy what it points to instead")
        for name in filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if any(ord(c) < 0x20 or c == "\x7f" for c in rel):
                raise ManifestError(f"{rel!r}: a path with a control character (tab, line break)")
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ManifestError(f"{rel!r} is not valid UTF-8") from exc
            if not full.is_file():
                raise ManifestError(f"{full} is not a regular file")
            found.append((rel, full, full.stat().st_size))
    found.sort(key=lambda f: f[0].encode("utf-8"))
    return found


def hash_file(path: Path) -> tuple[str, int]:
    """SHA-256 of a file, streamed through a fixed buffer, and the bytes read."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256")
        return digest.hexdigest(), f.tell()


def build(
    root: Path, *, workers: int | None = None, progress: Callable[[int], None] | None = None
) -> Manifest:
    """The manifest of the directory ``root``, hashing on ``workers`` processes (default:
    every core). ``progress`` is called with the bytes of each file hashed."""
    files = list_files(root)
    workers = workers or os.cpu_count() or 1
    paths = [full for _, full, _ in files]
    results: list[tuple[str, int]]
    if workers == 1 or len(files) < 2:
        results = []
        for p in paths:
            results.append(hash_file(p))
            if progress:
                progress(results[-1][1])
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = []
            # Larger chunks of small files keep the workers busy with little overhead.
            chunk = max(1, min(64, len(paths) // (workers * 8) or 1))
            for result in pool.map(hash_file, paths, chunksize=chunk):
                results.append(result)
                if progress:
                    progress(result[1])
    entries = []
    for (rel, _, size), (digest, read) in zip(files, results, strict=True):
        if read != size:
            raise ManifestError(f"{rel} changed while it was hashed ({size} bytes, then {read})")
        entries.append(FileEntry(rel, size, digest))
    return Manifest(tuple(entries))


def parse(text: bytes) -> Manifest:
    """A manifest from its text (checked: sorted, one line per file, well formed)."""
    entries = []
    for number, line in enumerate(text.decode("utf-8").splitlines(), start=1):
        parts = line.split("\t")
        if (
            len(parts) != 3
            or not (parts[1].isascii() and parts[1].isdigit())
            or len(parts[2]) != 64
        ):
            raise ManifestError(f"line {number}: expected <path>\\t<size>\\t<sha256>")
        entries.append(FileEntry(parts[0], int(parts[1]), parts[2]))
    keys = [e.path.encode() for e in entries]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        raise ManifestError("the manifest's paths are not sorted and unique")
    return Manifest(tuple(entries))
