"""The witness's memory: per log origin, the latest checkpoint it cosigned, in SQLite.

The check of a request's ``old`` size against the stored size and the write of the new
checkpoint happen in one ``BEGIN IMMEDIATE`` transaction, committed with
``synchronous=FULL`` before the witness replies (tlog-witness v1.0.0 requires both: a
witness that checked and wrote separately could be made to roll a log back). A log's row
is never deleted (a trigger refuses it), so a log dropped from the configuration and
added again continues from the size it had: a witness that forgot would cosign a split
view. Checkpoints that contradict what was cosigned are kept in ``conflicts``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from ledger.core.merkle import EMPTY_ROOT
from ledger.witness.mirror_state import MIRROR_SCHEMA, MirrorState

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS logs (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    checkpoint TEXT,
    updated REAL NOT NULL
);
CREATE TRIGGER IF NOT EXISTS logs_never_deleted BEFORE DELETE ON logs
BEGIN SELECT RAISE(ABORT, 'a witnessed log is never removed'); END;
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    cosigned_size INTEGER NOT NULL,
    cosigned_checkpoint TEXT,
    offered_old INTEGER NOT NULL,
    offered_checkpoint TEXT NOT NULL,
    offered_proof TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS conflicts_never_deleted BEFORE DELETE ON conflicts
BEGIN SELECT RAISE(ABORT, 'evidence of a fork is never removed'); END;
"""
    + MIRROR_SCHEMA
)


@dataclass(frozen=True)
class Latest:
    """The latest checkpoint cosigned for a log (size 0, the empty tree, before any)."""

    size: int
    root: bytes
    checkpoint: str | None


@dataclass(frozen=True)
class Store:
    """Write this cosigned checkpoint as the log's latest."""

    size: int
    root: bytes
    checkpoint: str
    cosignatures: str = ""  # the witness's own lines, the reply to the log


@dataclass(frozen=True)
class Conflict:
    """Keep this refused checkpoint as evidence against the log."""

    kind: str  # "fork": same size, another root; "inconsistent": the proof fails
    offered_old: int
    offered_checkpoint: str
    offered_proof: str
    reason: str


class State(MirrorState):
    """One SQLite file; a connection per thread, writers serialised. The mirror's tables
    and their methods are ``MirrorState``'s."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        # Writers in this process queue here instead of spinning on SQLite's busy
        # handler; BEGIN IMMEDIATE still guards against another process on the file.
        self._write_lock = threading.Lock()
        with closing(self._connect()) as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    def add_log(self, origin: str) -> None:
        """Start witnessing ``origin`` at the empty tree, unless it was witnessed before."""
        self._db().execute(
            "INSERT OR IGNORE INTO logs (origin, size, root, checkpoint, updated) "
            "VALUES (?, 0, ?, NULL, ?)",
            (origin, EMPTY_ROOT, time.time()),
        )

    def latest(self, origin: str) -> Latest | None:
        row = (
            self._db()
            .execute("SELECT size, root, checkpoint FROM logs WHERE origin = ?", (origin,))
            .fetchone()
        )
        return Latest(row[0], bytes(row[1]), row[2]) if row else None

    def advance(self, origin: str, decide: Callable[[Latest], object]):
        """Run ``decide`` on the stored latest and apply what it returns, atomically.

        ``decide`` returns a :class:`Store` (the new latest), a :class:`Conflict` (kept
        as evidence) or anything else (nothing written); that value is returned once the
        transaction is committed to disk.
        """
        db = self._db()
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT size, root, checkpoint FROM logs WHERE origin = ?", (origin,)
                ).fetchone()
                if row is None:
                    raise KeyError(origin)
                latest = Latest(row[0], bytes(row[1]), row[2])
                outcome = decide(latest)
                if isinstance(outcome, Store):
                    # Conditional on the size read above: the compare-and-swap itself.
                    done = db.execute(
                        "UPDATE logs SET size = ?, root = ?, checkpoint = ?, updated = ? "
                        "WHERE origin = ? AND size = ? AND root = ?",
                        (
                            outcome.size,
                            outcome.root,
                            outcome.checkpoint,
                            time.time(),
                            origin,
                            latest.size,
                            latest.root,
                        ),
                    )
                    if done.rowcount != 1:
                        raise RuntimeError("the witness state changed under its own lock")
                elif isinstance(outcome, Conflict):
                    db.execute(
                        "INSERT INTO conflicts (origin, kind, at, cosigned_size, "
                        "cosigned_checkpoint, offered_old, offered_checkpoint, "
                        "offered_proof, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            origin,
                            outcome.kind,
                            time.time(),
                            latest.size,
                            latest.checkpoint,
                            outcome.offered_old,
                            outcome.offered_checkpoint,
                            outcome.offered_proof,
                            outcome.reason,
                        ),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return outcome

    def conflicts(self, origin: str | None = None) -> list[dict]:
        """The evidence kept against logs, oldest first."""
        return self._evidence("conflicts", origin)

    def _evidence(self, table: str, origin: str | None) -> list[dict]:
        """The rows of an evidence table (``conflicts``, ``mirror_faults``), oldest first."""
        db = self._db()
        db.row_factory = sqlite3.Row
        try:
            sql = f"SELECT * FROM {table}"
            rows = db.execute(
                sql + (" WHERE origin = ? ORDER BY id" if origin else " ORDER BY id"),
                (origin,) if origin else (),
            ).fetchall()
        finally:
            db.row_factory = None
        return [dict(r) for r in rows]
