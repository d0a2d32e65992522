"""The newest checkpoint the log ever published, kept outside the database.

A database restored from an old backup holds fewer entries than the log has already
shown the world; signing on from there would fork the log (two checkpoints of the same
size with different roots). So every publication first writes its signed note to
``LEDGER_PUBLISHED_PATH``, a file that production keeps on storage restored separately
from the database (docs/backups.md), and the log refuses to sign or append while its
database is behind that note or not a prefix of it. ``ledger ingest`` brings the missing
entries back.

Witnesses are a second copy outside the database: a witness that answers the log's
collection with a size larger than the log's tree (it cosigned a larger tree before the
restore) is recorded beside the note (``<path>.witnessed``) and counts the same way.

``behind_published()`` is the check ``/readyz`` and the commands call; the append path
calls ``refuse_append(size)``, which costs a ``stat`` in the common case (the file's
content and the consistency of the database with it are cached per process, keyed by
the file's identity and modification time).
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

from ledger.core.note import NoteError, Verifier, key_id, open_checkpoint, parse_checkpoint
from ledger.core.note import split_note as _split_note
from ledger.errors import LedgerError, LogBehind

INGEST_HINT = "re-ingest them with `manage.py ledger ingest <export or mirror>`"


@dataclass(frozen=True)
class Published:
    size: int
    root: bytes
    note: str


def path() -> Path:
    return Path(settings.LEDGER_PUBLISHED_PATH)


def _witnessed_path() -> Path:
    p = path()
    return p.with_name(p.name + ".witnessed")


# (path, st_ino, st_mtime_ns, st_size) -> what the file held; one entry per file.
_read_cache: dict[str, tuple[tuple, object]] = {}
# What this process has found consistent: (database, published size, root).
_consistent: set[tuple[str, int, bytes]] = set()


def _stat_key(p: Path) -> tuple | None:
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _cached(p: Path, parse):
    key = _stat_key(p)
    if key is None:
        _read_cache.pop(str(p), None)
        return None
    hit = _read_cache.get(str(p))
    if hit is not None and hit[0] == key:
        return hit[1]
    value = parse(p.read_bytes())
    _read_cache[str(p)] = (key, value)
    return value


def _parse_note(data: bytes) -> Published:
    note = data.decode("utf-8")
    try:
        text, _ = _split_note(note)
        body = parse_checkpoint(text)
    except NoteError as exc:
        # Read-only until someone looks: the guard cannot tell what was published.
        raise LogBehind(
            f"the log is read-only: {path()} does not hold a checkpoint note ({exc}); "
            "restore it from its own backup"
        ) from exc
    return Published(body.size, body.root, note)


def read_published() -> Published | None:
    """The newest checkpoint ever published, as the file outside the database holds it."""
    return _cached(path(), _parse_note)


def read_witnessed() -> dict[str, int]:
    """The sizes witnesses said they hold when they were ahead of the log's tree."""
    return _cached(_witnessed_path(), lambda data: json.loads(data or b"{}")) or {}


# --- writing ---------------------------------------------------------------------------------


@contextmanager
def _locked():
    """One writer at a time across processes (read, compare, replace)."""
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p.with_name(p.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _replace(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically and durably: a temporary file, fsync,
    rename over the target, fsync of the directory (so the rename survives a crash)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def record_published(note: str) -> None:
    """Keep ``note`` (a checkpoint the log signs) as the newest published, unless a larger
    one is kept already. The same size with another root is a fork: raised, nothing kept.

    ``publish_checkpoint`` calls it inside the transaction that stores the checkpoint,
    before the commit makes the row visible: no client can see a checkpoint this file
    does not hold. If that commit then fails, the file is ahead of the checkpoint rows
    but not of the entries, which were committed before publication read the tree:
    the database still holds every entry the note covers, with that root, so the guard
    is satisfied and the next publication signs the same size again (the same note:
    Ed25519 signatures are deterministic). Only a note over entries that never commit
    could block, and publication never runs inside the transaction that appends them
    (services commit their appends first; ``request_checkpoint`` runs on commit).
    """
    new = _parse_note(note.encode())
    with _locked():
        p = path()
        _read_cache.pop(str(p), None)
        kept = read_published()
        if kept is not None and kept.size > new.size:
            return
        if kept is not None and kept.size == new.size:
            if kept.root != new.root:
                raise LedgerError(
                    f"FORK ALARM: a checkpoint of size {new.size:,} was already published with "
                    f"root {kept.root.hex()}, and this one has root {new.root.hex()}; "
                    "nothing was published"
                )
            return
        _replace(p, note.encode())
        _read_cache.pop(str(p), None)
    _consistent.add((_database(), new.size, new.root))


def record_witnessed(witness: str, size: int) -> None:
    """Keep the size a witness holds when it is ahead of the log's tree (only growing)."""
    with _locked():
        p = _witnessed_path()
        _read_cache.pop(str(p), None)
        held = dict(read_witnessed())
        if held.get(witness, -1) >= size:
            return
        held[witness] = size
        _replace(p, json.dumps(held, sort_keys=True).encode() + b"\n")
        _read_cache.pop(str(p), None)


# --- checking --------------------------------------------------------------------------------


def _database() -> str:
    s = connection.settings_dict
    return f"{connection.vendor}:{s.get('HOST')}:{s.get('PORT')}:{s.get('NAME')}"


def _tree_size() -> int:
    from ledger.proofs import tree_size

    return tree_size()


def _missing(size: int, published: int, seen: str) -> str:
    return (
        f"the database holds {size:,} entries but {seen}: "
        f"entries {size:,} to {published - 1:,} are missing; {INGEST_HINT}"
    )


def _inconsistency(pub: Published) -> str | None:
    """Why the database's tree is not a prefix of the published checkpoint, or None."""
    from ledger.keys import log_key_for_size
    from ledger.proofs import root_at

    key = log_key_for_size(pub.size)
    if key is None:
        return f"no log key in the database signs the published checkpoint of size {pub.size:,}"
    public_key = bytes(key.public_key)
    try:
        open_checkpoint(pub.note, Verifier(key.name, key_id(key.name, public_key), public_key))
    except NoteError as exc:
        return (
            f"the published checkpoint of size {pub.size:,} is not signed by this log's key: {exc}"
        )
    root = root_at(pub.size)
    if root != pub.root:
        return (
            f"FORK: the database's tree at size {pub.size:,} has root {root.hex()}, but the "
            f"published checkpoint of that size has root {pub.root.hex()}; the database is "
            "not the log it published (restore a backup that is, or investigate)"
        )
    return None


def behind_published(size: int | None = None) -> str | None:
    """None when the database is at or beyond the newest published checkpoint and
    consistent with it (and holds at least what any witness cosigned); otherwise a
    sentence saying what is missing or what differs."""
    return verdict(size)[1]


def verdict(size: int | None = None) -> tuple[bool, str | None]:
    """``behind_published``'s sentence, and whether it only says entries are missing
    (True: re-ingesting them is the cure) rather than that the database differs."""
    size = _tree_size() if size is None else size
    pub = read_published()
    if pub is not None:
        if size < pub.size:
            return True, _missing(size, pub.size, f"checkpoint {pub.size:,} was published")
        mark = (_database(), pub.size, pub.root)
        if mark not in _consistent:
            reason = _inconsistency(pub)
            if reason:
                return False, reason
            _consistent.add(mark)
    for witness, held in sorted(read_witnessed().items()):
        if held > size:
            seen = f"the witness {witness} cosigned a tree of {held:,} entries"
            return True, _missing(size, held, seen)
    return False, None


def refuse_if_behind(size: int | None = None, what: str = "sign a checkpoint") -> None:
    """Raise ``LogBehind`` with the sentence when ``behind_published`` has one."""
    reason = behind_published(size)
    if reason is not None:
        raise LogBehind(f"the log is read-only and will not {what}: {reason}")


# The append path's memory of its last check that passed: the files' identities, the
# database, and the least tree size that passed (the tree only grows under the lock).
_passed: dict[str, tuple] = {}


def _stat_of(name: str) -> tuple | None:
    try:
        st = os.stat(name)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def refuse_append(size: int) -> None:
    """On the append path, under the sequence lock: two stats (the file and the
    witnesses' record) when nothing changed since the last check that passed."""
    p = str(settings.LEDGER_PUBLISHED_PATH)
    db = connection.settings_dict
    keys = (_stat_of(p), _stat_of(p + ".witnessed"), db.get("HOST"), db.get("PORT"), db["NAME"])
    seen = _passed.get(p)
    if seen is not None and seen[0] == keys and size >= seen[1]:
        return
    refuse_if_behind(size, "append")
    _passed[p] = (keys, size)
