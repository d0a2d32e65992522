"""Check 4: every entry's leaf has the leaf layout, its index, and a signature by the key
valid at that index.

``entries.jsonl`` is read once, line by line: each line is hashed for the MANIFEST, put
in its place (``tree``), its author looked up in the key history at its index
(``keys``), and handed to the callers' checks that want its kind. The leaf checks
(layout, signature, leaf hash) run on a pool of processes, a batch at a time, and their
leaf hashes come back in order for the tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.audit.bundle import ENTRIES, Bundle, BundleError
from ledger.audit.keys import KeyHistory
from ledger.audit.result import Extension, Result
from ledger.audit.tree import RangeTree, Selection
from ledger.core.keyring import CORE_KEY_KINDS, KeyringError
from ledger.core.leafcheck import HEAD, TAIL, check_exported

BATCH = 2000


@dataclass
class Read:
    """What reading ``entries.jsonl`` found besides the failures it recorded."""

    count: int = 0
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)  # of the file's bytes
    # Indexes of the key entries met among the entries.
    seen_keys: set[int] = field(default_factory=set)
    # (index, reason) of every leaf that failed its checks.
    failures: list[tuple[int, str]] = field(default_factory=list)


class _Reader:
    """One pass over ``entries.jsonl``."""

    def __init__(
        self,
        history: KeyHistory,
        tree: RangeTree | Selection,
        extensions: Sequence[Extension],
        result: Result,
    ):
        self.history, self.tree, self.result = history, tree, result
        self.wanted = [(e, tuple(e.kinds)) for e in extensions]
        self.read = Read()

    def line(self, number: int, raw: bytes) -> tuple[int, bytes, bytes | None]:
        """One line of the file: what the leaf checks need of it."""
        self.read.digest.update(raw)
        self.read.size += len(raw)
        self.read.count += 1
        line = raw[:-1] if raw.endswith(b"\n") else raw
        tail = TAIL.search(line, max(0, len(line) - 256))
        index = self.tree.index_of(number, int(tail.group(2)) if tail else None)
        self.history.advance(index if index else 1)  # the genesis registers its own signer
        head = HEAD.match(line)
        public_key = None
        if head is not None:
            author, kind = head.group(1).decode(), head.group(3).decode()
            public_key = self._author_key(number, index, author)
            if kind in CORE_KEY_KINDS:
                self._key_entry(number, index, kind, line)
            self._extensions(index, kind, author, line, public_key)
        return index, line, public_key

    def _author_key(self, number: int, index: int, author: str) -> bytes | None:
        try:
            return self.history.keyring.public_key_for(author, index)
        except KeyringError as exc:
            self.result.fail(f"{ENTRIES} line {number} (index {index}): {exc}", "authors")
            return None

    def _key_entry(self, number: int, index: int, kind: str, line: bytes) -> None:
        """A key entry among the entries must be the one the key history holds."""
        self.read.seen_keys.add(index)
        k = self.history.entries.get(index)
        if k is None or k.leaf_bytes != line:
            self.result.fail(
                f"{ENTRIES} line {number} (index {index}): a {kind} "
                f"entry that keys.jsonl does not hold"
            )

    def _extensions(self, index, kind, author, line, public_key) -> None:
        for ext, kinds in self.wanted:
            if kind in kinds or any(k.endswith(".") and kind.startswith(k) for k in kinds):
                # A malformed leaf is reported by the leaf check.
                with contextlib.suppress(ValueError, KeyError, TypeError, RecursionError):
                    ext.take(
                        index,
                        json.loads(line),
                        self.history.keyring.keys.get(author) if public_key else None,
                    )


def read_entries(
    bundle: Bundle,
    total: int,
    history: KeyHistory,
    tree: RangeTree | Selection,
    extensions: Sequence[Extension],
    workers: int | None,
    progress: Callable[[int, int], None] | None,
    result: Result,
) -> Read:
    """Read ``entries.jsonl`` of ``total`` entries, checking every leaf on ``workers``
    processes (one per core by default)."""
    reader = _Reader(history, tree, extensions, result)
    with _Checker(workers, total, history.origin) as pool:
        if not bundle.has(ENTRIES):
            raise BundleError(f"{ENTRIES}: missing")
        batch: list[tuple[int, bytes, bytes | None]] = []
        with bundle.open(ENTRIES) as f:
            for number, raw in enumerate(f, start=1):
                batch.append(reader.line(number, raw))
                if len(batch) >= BATCH:
                    pool.submit(batch, tree)
                    batch = []
                    if progress:
                        progress(reader.read.count, total)
            if batch:
                pool.submit(batch, tree)
        pool.drain(tree)
    if progress:
        progress(reader.read.count, total)
    reader.read.failures = pool.failures
    return reader.read


class _Checker:
    """Leaf checks (layout, signature, leaf hash) on a process pool, results in order."""

    def __init__(self, workers: int | None, total: int, origin: str):
        self.origin = origin
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
            self._take(batch, check_exported(batch, self.origin), checker)
            return
        self.waiting.append((batch, self.pool.apply_async(check_exported, (batch, self.origin))))
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
