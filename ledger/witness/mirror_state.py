"""The mirror's tables in the witness's SQLite state: the copy of each log's entries, how
far it is verified, and the evidence the mirror found against a log.

- ``mirror_logs``: per origin, the size up to which the copy is verified (every leaf
  checked, and the tree of that size has the root of a checkpoint the log signed), that
  tree's root and right-edge subtree hashes (to resume without rehashing), the log's
  checkpoint that proved it, and the cosigned size last compared with the copy.
- ``mirror_sizes``: the right-edge subtree hashes at every size a sync verified, from
  which the root at any smaller size is rebuilt with the leaf hashes after the nearest.
- ``mirror_entries``: the leaves, by origin and index, with their kind and leaf hash.
  Rows below the verified size are never changed or deleted (triggers refuse it); rows
  at or past it are a sync in progress, written a bundle at a time, and are dropped if
  the tree they make does not have the checkpoint's root, or when a sync starts again.
- ``mirror_faults``: every entry that fails a check and every root that does not match,
  with the leaf or checkpoint that shows it; never deleted. A log with a fault is not
  cosigned again by this witness (``Witness.add_checkpoint`` answers 422).

These tables sit beside ``logs`` and ``conflicts`` and are written in their own
transactions: the witness's compare-and-swap on ``logs`` is untouched.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ledger.core import merkle

MIRROR_SCHEMA = """
CREATE TABLE IF NOT EXISTS mirror_logs (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    frontier BLOB NOT NULL,
    checkpoint TEXT,
    checked_cosigned INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
);
CREATE TRIGGER IF NOT EXISTS mirror_logs_never_deleted BEFORE DELETE ON mirror_logs
BEGIN SELECT RAISE(ABORT, 'a mirrored log is never removed'); END;
CREATE TRIGGER IF NOT EXISTS mirror_logs_never_shrink BEFORE UPDATE OF size ON mirror_logs
WHEN NEW.size < OLD.size
BEGIN SELECT RAISE(ABORT, 'a verified copy never shrinks'); END;
CREATE TABLE IF NOT EXISTS mirror_sizes (
    origin TEXT NOT NULL,
    size INTEGER NOT NULL,
    frontier BLOB NOT NULL,
    PRIMARY KEY (origin, size)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mirror_entries (
    origin TEXT NOT NULL,
    idx INTEGER NOT NULL,
    kind TEXT NOT NULL,
    leaf BLOB NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (origin, idx)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS mirror_entries_verified_kept BEFORE DELETE ON mirror_entries
WHEN OLD.idx < (SELECT size FROM mirror_logs WHERE origin = OLD.origin)
BEGIN SELECT RAISE(ABORT, 'a verified entry is never removed'); END;
CREATE TRIGGER IF NOT EXISTS mirror_entries_never_changed BEFORE UPDATE ON mirror_entries
BEGIN SELECT RAISE(ABORT, 'a mirrored entry is never changed'); END;
CREATE TABLE IF NOT EXISTS mirror_faults (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    position INTEGER NOT NULL,
    checkpoint TEXT,
    evidence BLOB,
    reason TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS mirror_faults_never_deleted BEFORE DELETE ON mirror_faults
BEGIN SELECT RAISE(ABORT, 'evidence against a log is never removed'); END;
"""

# Kinds of fault: "entry" (a leaf fails a check: its layout, index, author key or
# signature, or a key entry the key rules refuse; ``position`` is its index), "root"
# (the entries do not give the root the log signed; ``position`` is the size), "cosigned"
# (they do not give the root of a checkpoint this witness cosigned).
FAULT_KINDS = ("entry", "root", "cosigned")


@dataclass(frozen=True)
class Held:
    """How far a log's copy is verified."""

    size: int
    root: bytes
    frontier: list[bytes]
    checkpoint: str | None
    checked_cosigned: int


@dataclass(frozen=True)
class Fault:
    id: int
    origin: str
    kind: str
    position: int
    reason: str


class MirrorState:
    """The mirror's reads and writes; mixed into ``State`` (one file, one connection per
    thread, writers serialised by ``_write_lock``)."""

    # State's: its lock, its connection per thread, its reader of evidence tables.
    _write_lock: object
    _db: Callable[[], sqlite3.Connection]
    _evidence: Callable[[str, str | None], list[dict]]

    def _write(self):
        """A write transaction: ``with self._write() as db:``."""
        return _Transaction(self)

    def held(self, origin: str) -> Held:
        row = (
            self._db()
            .execute(
                "SELECT size, root, frontier, checkpoint, checked_cosigned FROM mirror_logs "
                "WHERE origin = ?",
                (origin,),
            )
            .fetchone()
        )
        if row is None:
            return Held(0, merkle.EMPTY_ROOT, [], None, 0)
        frontier = bytes(row[2])
        return Held(
            row[0],
            bytes(row[1]),
            [frontier[i : i + 32] for i in range(0, len(frontier), 32)],
            row[3],
            row[4],
        )

    def drop_unverified(self, origin: str) -> None:
        """Forget the rows of a sync that did not finish (at or past the verified size)."""
        with self._write() as db:
            db.execute(
                "DELETE FROM mirror_entries WHERE origin = ? AND idx >= "
                "COALESCE((SELECT size FROM mirror_logs WHERE origin = ?), 0)",
                (origin, origin),
            )

    def stage(self, origin: str, rows: Sequence[tuple[int, str, bytes, bytes]]) -> None:
        """Write checked leaves ``(index, kind, leaf, leaf hash)`` past the verified size."""
        with self._write() as db:
            db.executemany(
                "INSERT INTO mirror_entries (origin, idx, kind, leaf, hash) VALUES (?, ?, ?, ?, ?)",
                [(origin, *row) for row in rows],
            )

    def verified(
        self, origin: str, old: int, held: Held, checked_cosigned: int | None = None
    ) -> None:
        """Move the verified size from ``old`` to ``held.size`` (compare-and-swap)."""
        with self._write() as db:
            count = db.execute(
                "SELECT COUNT(*) FROM mirror_entries WHERE origin = ? AND idx >= ? AND idx < ?",
                (origin, old, held.size),
            ).fetchone()[0]
            if count != held.size - old:
                raise RuntimeError(f"the copy of {origin} lacks entries below {held.size}")
            values = (
                held.size,
                held.root,
                b"".join(held.frontier),
                held.checkpoint,
                held.checked_cosigned if checked_cosigned is None else checked_cosigned,
                time.time(),
            )
            if old == 0:
                db.execute(
                    "INSERT OR IGNORE INTO mirror_logs (size, root, frontier, checkpoint, "
                    "checked_cosigned, updated, origin) VALUES (0, ?, x'', NULL, 0, 0, ?)",
                    (merkle.EMPTY_ROOT, origin),
                )
            done = db.execute(
                "UPDATE mirror_logs SET size = ?, root = ?, frontier = ?, checkpoint = ?, "
                "checked_cosigned = ?, updated = ? WHERE origin = ? AND size = ?",
                (*values, origin, old),
            )
            if done.rowcount != 1:
                raise RuntimeError(f"the copy of {origin} changed under the mirror")
            db.execute(
                "INSERT OR IGNORE INTO mirror_sizes (origin, size, frontier) VALUES (?, ?, ?)",
                (origin, held.size, b"".join(held.frontier)),
            )

    def root_at(self, origin: str, size: int) -> bytes:
        """The root of the copy's tree of ``size`` (at most the verified size): from the
        nearest verified size at or below it, and the leaf hashes after that."""
        db = self._db()
        row = db.execute(
            "SELECT size, frontier FROM mirror_sizes WHERE origin = ? AND size <= ? "
            "ORDER BY size DESC LIMIT 1",
            (origin, size),
        ).fetchone()
        start, frontier = (row[0], bytes(row[1])) if row else (0, b"")
        builder = merkle.TreeBuilder.resume(
            start, [frontier[i : i + 32] for i in range(0, len(frontier), 32)]
        )
        for (h,) in db.execute(
            "SELECT hash FROM mirror_entries WHERE origin = ? AND idx >= ? AND idx < ? "
            "ORDER BY idx",
            (origin, start, size),
        ):
            builder.push(bytes(h))
        if builder.size != size:
            raise RuntimeError(f"the copy of {origin} holds {builder.size} entries, not {size}")
        return builder.root()

    def key_leaves(self, origin: str, below: int, kinds: Sequence[str]) -> list[tuple[int, bytes]]:
        """The copy's leaves of ``kinds`` (the key entries) below ``below``, in order."""
        marks = ",".join("?" * len(kinds))
        rows = self._db().execute(
            f"SELECT idx, leaf FROM mirror_entries WHERE origin = ? AND idx < ? "
            f"AND kind IN ({marks}) ORDER BY idx",
            (origin, below, *kinds),
        )
        return [(i, bytes(leaf)) for i, leaf in rows]

    def leaves(self, origin: str, below: int, batch: int = 4096) -> Iterator[bytes]:
        """The verified leaves from index 0 to ``below``, in order."""
        at = 0
        while at < below:
            rows = (
                self._db()
                .execute(
                    "SELECT idx, leaf FROM mirror_entries WHERE origin = ? AND idx >= ? "
                    "AND idx < ? ORDER BY idx LIMIT ?",
                    (origin, at, below, batch),
                )
                .fetchall()
            )
            if not rows:
                raise RuntimeError(f"the copy of {origin} lacks entry {at}")
            for idx, leaf in rows:
                if idx != at:
                    raise RuntimeError(f"the copy of {origin} lacks entry {at}")
                yield bytes(leaf)
                at += 1

    def record_fault(
        self,
        origin: str,
        kind: str,
        position: int,
        reason: str,
        checkpoint: str | None = None,
        evidence: bytes | None = None,
    ) -> tuple[Fault, bool]:
        """Keep evidence against a log, once: ``(the fault, whether it is new)``."""
        with self._write() as db:
            row = db.execute(
                "SELECT id FROM mirror_faults WHERE origin = ? AND kind = ? AND position = ? "
                "AND reason = ?",
                (origin, kind, position, reason),
            ).fetchone()
            new = row is None
            if new:
                row = (
                    db.execute(
                        "INSERT INTO mirror_faults (origin, kind, at, position, checkpoint, "
                        "evidence, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (origin, kind, time.time(), position, checkpoint, evidence, reason),
                    ).lastrowid,
                )
        return Fault(row[0], origin, kind, position, reason), new

    def mirror_fault(self, origin: str) -> Fault | None:
        """The first evidence the mirror holds against ``origin``, if any."""
        row = (
            self._db()
            .execute(
                "SELECT id, origin, kind, position, reason FROM mirror_faults WHERE origin = ? "
                "ORDER BY id LIMIT 1",
                (origin,),
            )
            .fetchone()
        )
        return Fault(*row) if row else None

    def mirror_faults(self, origin: str | None = None) -> list[dict]:
        """Every piece of evidence the mirror kept, oldest first."""
        return self._evidence("mirror_faults", origin)


class _Transaction:
    def __init__(self, state: MirrorState) -> None:
        self.state = state

    def __enter__(self) -> sqlite3.Connection:
        self.state._write_lock.acquire()
        self.db = self.state._db()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.state._write_lock.release()
            raise
        return self.db

    def __exit__(self, kind, exc, tb) -> None:
        try:
            self.db.execute("ROLLBACK" if kind else "COMMIT")
        finally:
            self.state._write_lock.release()
