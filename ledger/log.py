"""The log: serialised appends, and the registry of the appliers that project them.

The hot path uses SQL through Django's connection rather than the ORM: an append
holds the sequence lock for a handful of statements and nothing else.

Serialisation. An append locks the single log-head row (SELECT ... FOR UPDATE on
PostgreSQL; on SQLite transactions begin IMMEDIATE, see settings, which takes the
database's write lock), then reads the tree size and key states in later statements,
so under READ COMMITTED it sees every append committed before the lock was granted.
The lock is held until the surrounding transaction commits, so a domain service that
appends inside its own ``transaction.atomic`` gets the index its commit makes real:
one gapless sequence, no fork. The primary keys on entry index and stored-hash index
are the last line of defence: two writers can never both commit index ``n``.

Everything costly (canonical JSON, signing, checking client signatures) happens
before the lock; under it only reading the head and key states, leaf assembly and SHA-256.

Reading the stored tree (its size, roots, proofs) is ``ledger.proofs``; signing
checkpoints, ``ledger.checkpoints``; sharing one commit between callers,
``ledger.group_commit``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from django.db import IntegrityError, connection, transaction
from prometheus_client import Histogram

from ledger import events, published
from ledger.checkpoints import request_checkpoint
from ledger.core import merkle
from ledger.core.envelope import (
    MAX_LEAF_BYTES,
    SignedEnvelope,
    build_leaf,
    canonical,
    format_time,
)
from ledger.core.keyring import CORE_KEY_KINDS, Keyring, KeyringError, KeyState
from ledger.errors import EntryTooLarge, IdempotencyConflict, LedgerError
from ledger.group_commit import GroupCommit
from ledger.models import Entry, Key, LogHead
from ledger.proofs import ENTRY_T, HASH_T, read_hashes

# The log's own names. The domains reach them, and the errors, through ledger.services;
# the reads and checkpoints live in ledger.proofs and ledger.checkpoints.
__all__ = [
    "Appended",
    "EntryTooLarge",
    "IdempotencyConflict",
    "LedgerError",
    "append_signed",
    "applier",
    "apply",
]

KEY_T = Key._meta.db_table
HEAD_T = LogHead._meta.db_table
# The events stream's wake-up (ledger/events): NOTIFY is transactional, so listeners hear
# the new tree size when the append commits, and never of one rolled back.
NOTIFY_SQL = f"SELECT pg_notify('{events.CHANNEL}', %s)"
KEY_COLS = (
    "fingerprint, public_key, kind, owner, custody, name, registered_in, valid_from, revoked_at"
)


@dataclass(frozen=True, slots=True)
class Appended:
    """An entry as the log integrated it; what appliers and callers receive."""

    index: int
    entry_id: str
    kind: str
    author: str
    payload: dict
    time: str
    integrated_time: str
    leaf_hash: bytes
    created: bool = True  # False when the id was already in the log (idempotent retry)


Applier = Callable[[Appended], None]
_appliers: dict[str, Applier] = {}


def applier(kind: str) -> Callable[[Applier], Applier]:
    """Register the one function that applies entries of ``kind`` to the tables."""

    def register(fn: Applier) -> Applier:
        if kind in _appliers and _appliers[kind] is not fn:
            raise RuntimeError(f"{kind} already has an applier")
        _appliers[kind] = fn
        return fn

    return register


def apply(entry: Appended) -> None:
    fn = _appliers.get(entry.kind)
    if fn is not None:
        fn(entry)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


# --- appending -----------------------------------------------------------------------------


def _lock() -> None:
    """Take the sequence lock for the rest of the transaction (used by ledger_init)."""
    _read_head_and_keys(set())


# Appends of up to this many entries check their ids under the lock, in one round trip.
IN_LOCK_ID_CHECK = 1000
ID_SQL = f"SELECT entry_id, {connection.ops.quote_name('index')}, leaf FROM {Entry._meta.db_table} WHERE entry_id"


def _read_head_and_keys(
    authors: set[str], ids: Sequence[str] = ()
) -> tuple[int, list[bytes], Keyring, dict[str, tuple[int, bytes]]]:
    """Under the sequence lock: tree size, frontier, the keys that matter, and which of
    ``ids`` the log already holds (index and leaf).

    On PostgreSQL the three statements go in one round trip (psycopg pipeline). The
    key and size reads are separate statements, so under READ COMMITTED each takes its
    snapshot after the head's row lock is granted and sees every earlier append.
    """
    fps = sorted(authors)
    head_sql = f"SELECT size, frontier FROM {HEAD_T} WHERE id = 1"
    max_sql = f"SELECT MAX({_q('index')}) FROM {ENTRY_T}"
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        raw = connection.connection
        with connection.wrap_database_errors:
            # Results are fetched after the pipeline block: fetching inside it would
            # add a round trip.
            with raw.pipeline():
                head_cur = psycopg.Cursor(raw)
                head_cur.execute(head_sql + " FOR UPDATE")
                max_cur = psycopg.Cursor(raw)
                max_cur.execute(max_sql)
                key_cur = psycopg.Cursor(raw)
                key_cur.execute(
                    f"SELECT {KEY_COLS} FROM {KEY_T} WHERE fingerprint = ANY(%s) OR kind = 'log'",
                    [fps],
                )
                if ids:
                    id_cur = psycopg.Cursor(raw)
                    id_cur.execute(f"{ID_SQL} = ANY(%s)", [list(ids)])
            head, top, key_rows = head_cur.fetchone(), max_cur.fetchone()[0], key_cur.fetchall()
            id_rows = id_cur.fetchall() if ids else []
    elif connection.vendor == "sqlite":
        # BEGIN IMMEDIATE already holds the database's write lock (see settings).
        if connection.settings_dict.get("OPTIONS", {}).get("transaction_mode") != "IMMEDIATE":
            raise LedgerError("SQLite must run with transaction_mode IMMEDIATE")
        with connection.cursor() as cur:
            cur.execute(head_sql)
            head = cur.fetchone()
            cur.execute(max_sql)
            top = cur.fetchone()[0]
            marks = ",".join(["%s"] * len(fps)) or "NULL"
            cur.execute(
                f"SELECT {KEY_COLS} FROM {KEY_T} WHERE fingerprint IN ({marks}) OR kind = 'log'",
                fps,
            )
            key_rows = cur.fetchall()
            id_rows = []
            if ids:
                cur.execute(f"{ID_SQL} IN ({','.join(['%s'] * len(ids))})", list(ids))
                id_rows = cur.fetchall()
    else:  # pragma: no cover - settings allow only the two engines
        raise LedgerError(f"unsupported database engine {connection.vendor}")
    if head is None:
        raise LedgerError("the log head row is missing: run `manage.py migrate`")
    size, frontier = head[0], bytes(head[1])
    if size != (0 if top is None else top + 1):
        raise LedgerError(
            f"the log head says size {size} but the entries end at {top}: run ledger verify"
        )
    if len(frontier) != 32 * len(merkle.root_indexes(size)):
        raise LedgerError("the log head's frontier does not fit its size: run ledger verify")
    hashes = [frontier[i : i + 32] for i in range(0, len(frontier), 32)]
    keys, log_key = {}, None
    for fp, pk, kind, owner, custody, name, reg, vfrom, revoked in key_rows:
        if hashlib.sha256(bytes(pk)).hexdigest() != fp:
            raise LedgerError(f"the registry's key {fp[:16]}… does not match its fingerprint")
        if reg >= size or (revoked is not None and revoked >= size):
            raise LedgerError(
                f"the registry's key {fp[:16]}… points past the log: run ledger verify"
            )
        keys[fp] = KeyState(fp, bytes(pk), kind, owner, custody, name, reg, vfrom, revoked)
        if kind == "log" and revoked is None:
            log_key = fp  # the current one: a rotation revoked the others
    found = {eid: (idx, bytes(leaf)) for eid, idx, leaf in id_rows}
    return size, hashes, Keyring(keys, log_key), found


def _existing(ids: list[str]) -> dict[str, tuple[int, bytes]]:
    if not ids:
        return {}
    found: dict[str, tuple[int, bytes]] = {}
    with connection.cursor() as cur:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join(["%s"] * len(chunk))
            cur.execute(
                f"SELECT entry_id, {_q('index')}, leaf FROM {ENTRY_T} WHERE entry_id IN ({marks})",
                chunk,
            )
            found.update({eid: (idx, bytes(leaf)) for eid, idx, leaf in cur.fetchall()})
    return found


ENTRY_COLS = ["index", "entry_id", "kind", "author", "leaf", "leaf_hash"]


def _values_sql(table: str, columns: Sequence[str], rows: int) -> str:
    cols = ", ".join(_q(c) for c in columns)
    marks = ", ".join("(" + ",".join(["%s"] * len(columns)) + ")" for _ in range(rows))
    return f"INSERT INTO {table} ({cols}) VALUES {marks}"


def _write(
    entry_rows: list[tuple],
    hash_rows: list[tuple],
    head: tuple[int, bytes],
    frontier_was: tuple[int, list[bytes]],
) -> None:
    """Insert the entries and their stored hashes, and move the head.

    The head's frontier, which the new hashes were built on, is checked against the
    stored hashes in the same round trip: a head changed behind the log's back makes
    the append fail (and roll back) instead of storing hashes of a different tree.
    """
    head_sql = f"UPDATE {HEAD_T} SET size = %s, frontier = %s WHERE id = 1"
    old_size, old_frontier = frontier_was
    need = merkle.root_indexes(old_size)
    if connection.vendor == "postgresql":
        raw = connection.connection
        with connection.wrap_database_errors:
            if len(entry_rows) <= 32:
                # The usual small append: four statements, one round trip.
                with raw.pipeline():
                    check = psycopg.Cursor(raw)
                    check.execute(f"SELECT idx, hash FROM {HASH_T} WHERE idx = ANY(%s)", [need])
                    cur = psycopg.Cursor(raw)
                    cur.execute(
                        _values_sql(ENTRY_T, ENTRY_COLS, len(entry_rows)),
                        [v for r in entry_rows for v in r],
                    )
                    cur.execute(
                        _values_sql(HASH_T, ["idx", "hash"], len(hash_rows)),
                        [v for r in hash_rows for v in r],
                    )
                    cur.execute(head_sql, head)
                    cur.execute(NOTIFY_SQL, [str(head[0])])
                found = dict(check.fetchall())
                stored = [bytes(found[i]) if i in found else None for i in need]
            else:
                stored = read_hashes(need)
                # Bulk imports: COPY is several times faster than INSERT.
                with psycopg.Cursor(raw) as cur:
                    cols = ", ".join(_q(c) for c in ENTRY_COLS)
                    with cur.copy(f"COPY {ENTRY_T} ({cols}) FROM STDIN") as copy:
                        for row in entry_rows:
                            copy.write_row(row)
                    with cur.copy(f"COPY {HASH_T} (idx, hash) FROM STDIN") as copy:
                        for row in hash_rows:
                            copy.write_row(row)
                    cur.execute(head_sql, head)
                    cur.execute(NOTIFY_SQL, [str(head[0])])
    else:
        stored = read_hashes(need)
        with connection.cursor() as cur:
            for table, cols, rows in (
                (ENTRY_T, ENTRY_COLS, entry_rows),
                (HASH_T, ["idx", "hash"], hash_rows),
            ):
                for start in range(0, len(rows), 100):
                    chunk = rows[start : start + 100]
                    cur.execute(_values_sql(table, cols, len(chunk)), [v for r in chunk for v in r])
            cur.execute(head_sql, head)
    if stored != old_frontier:
        raise LedgerError("the log head's frontier differs from the stored tree: run ledger verify")


# Each call's time, with its lock, and its commit when it makes its own transaction
# (consortium.web.metrics exports it).
APPEND_SECONDS = Histogram(
    "consortium_ledger_append_seconds",
    "Time to append a batch of entries, from the call to its commit.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)


@APPEND_SECONDS.time()
def append_signed(items: Sequence[SignedEnvelope]) -> list[Appended]:
    """Append signed envelopes, in order, in the caller's transaction (or a new one).

    An entry id already in the log with the very same envelope is returned as it is
    (``created=False``): appends are idempotent. The same id with another envelope,
    a key that may not sign at the index the entry would get, or a bad key entry
    raise, and nothing is written.
    """
    items = list(items)
    if not items:
        return []
    ids = [it.entry_id for it in items]
    if len(set(ids)) != len(ids):
        raise LedgerError("the same entry id appears twice in one append")

    # Idempotent retries: small appends look their ids up under the lock, in the same
    # round trip as the head; bulk imports look them up first, in chunks, and leave a
    # race between two first attempts to the unique constraint on entry_id.
    done = _existing(ids) if len(ids) > IN_LOCK_ID_CHECK else None
    if connection.in_atomic_block:
        # In the caller's transaction: a refusal raised before anything is written
        # leaves that transaction usable.
        return _append_locked(items, done)
    if done is None:
        # Our own transaction: concurrent callers in this process share one commit.
        return _group.submit(items)
    with transaction.atomic():
        return _append_locked(items, done)


def _split_retries(
    items: list[SignedEnvelope], done: dict[str, tuple[int, bytes]]
) -> tuple[dict[str, Appended], list[SignedEnvelope]]:
    """Entries already in the log (idempotent retries), and the fresh ones."""
    retries: dict[str, Appended] = {}
    fresh = []
    for it in items:
        if it.entry_id not in done:
            fresh.append(it)
            continue
        index, leaf = done[it.entry_id]
        if not leaf.startswith(b'{"entry":' + it.envelope_bytes + b',"index":'):
            # A retry re-made later differs in its time only; anything else is another entry.
            before = json.loads(leaf)["entry"]
            # Compared as canonical bytes: as Python values 1 == True and 1 == 1.0.
            if canonical({**before, "time": ""}) != canonical({**it.envelope, "time": ""}):
                raise IdempotencyConflict(
                    f"entry id {it.entry_id} is already used at index {index} by another envelope"
                )
            it = SignedEnvelope(before, leaf[9 : leaf.rfind(b',"index":')], it.signature, it.origin)
        retries[it.entry_id] = _describe(it, index, _integrated_from(leaf), leaf, created=False)
    return retries, fresh


def _integrated_from(leaf: bytes) -> str:
    start = leaf.rfind(b'"integrated_time":"') + len(b'"integrated_time":"')
    return leaf[start : leaf.index(b'"', start)].decode()


def _describe(
    it: SignedEnvelope, index: int, integrated: str, leaf: bytes, created: bool
) -> Appended:
    return Appended(
        index=index,
        entry_id=it.entry_id,
        kind=it.kind,
        author=it.author,
        payload=it.envelope["payload"],
        time=it.envelope["time"],
        integrated_time=integrated,
        leaf_hash=merkle.leaf_hash(leaf),
        created=created,
    )


def _append_locked(
    items: list[SignedEnvelope], done: dict[str, tuple[int, bytes]] | None
) -> list[Appended]:
    # Key states can change until we hold the lock, so they are read under it.
    authors = {it.author for it in items}
    for it in items:
        if it.kind in CORE_KEY_KINDS:
            payload = it.envelope["payload"]
            key = payload.get("key")
            for fp in (
                payload.get("fingerprint"),
                key.get("fingerprint") if isinstance(key, dict) else None,
            ):
                if isinstance(fp, str):
                    authors.add(fp)
    order = [it.entry_id for it in items]
    ids = order if done is None else []
    size, frontier, keyring, found = _read_head_and_keys(authors, ids)
    retries, items = _split_retries(items, done if done is not None else found)
    if not items:
        return list(retries.values())
    # Read-only while the database is behind what was published (a restored backup):
    # refused before anything is written. A stat of a file when nothing changed.
    published.refuse_append(size)
    builder = merkle.TreeBuilder.resume(size, frontier)
    frontier_was = (size, frontier)

    now = datetime.now(UTC)
    integrated = format_time(now)
    entry_rows, hash_rows, out = [], [], []
    for offset, it in enumerate(items):
        index = size + offset
        try:
            keyring.admit(index, it.kind, it.envelope["payload"], it.author)
        except KeyringError as exc:
            raise LedgerError(f"entry {it.entry_id} ({it.kind}): {exc}") from exc
        if it.origin is not None and it.origin != keyring.origin:
            # Never store a signature made for another log (the genesis names its own).
            raise LedgerError(
                f"entry {it.entry_id} ({it.kind}) is signed for the log {it.origin!r}, "
                f"not this log {keyring.origin!r}"
            )
        leaf = build_leaf(it.envelope_bytes, index, integrated, it.signature)
        if len(leaf) > MAX_LEAF_BYTES:
            raise EntryTooLarge(
                f"entry {it.entry_id} ({it.kind}): its leaf would be {len(leaf)} bytes at "
                f"index {index}; a leaf is at most {MAX_LEAF_BYTES} bytes, the most a C2SP "
                "tlog-tiles entry bundle holds"
            )
        lh = merkle.leaf_hash(leaf)
        first = merkle.stored_hash_index(0, index)
        for j, h in enumerate(builder.push(lh)):
            hash_rows.append((first + j, h))
        entry_rows.append((index, it.entry_id, it.kind, it.author, leaf, lh))
        out.append(_describe(it, index, integrated, leaf, created=True))

    # From here on a failure dooms the surrounding transaction (savepoint=False marks
    # it for rollback), so no half-written append can ever commit.
    head = (builder.size, b"".join(builder.frontier()))
    try:
        with transaction.atomic(savepoint=False):
            _write(entry_rows, hash_rows, head, frontier_was)
            for entry in out:
                apply(entry)
    except (IntegrityError, psycopg.IntegrityError) as exc:
        raise LedgerError(f"append conflicted with a concurrent writer: {exc}") from exc
    # Robust: whatever goes wrong in asking for a checkpoint, the append has committed.
    transaction.on_commit(request_checkpoint, robust=True)
    transaction.on_commit(events.appended, robust=True)
    if not retries:
        return out
    by_id = {**retries, **{e.entry_id: e for e in out}}
    return [by_id[i] for i in order]


# Appends in a transaction of their own share commits (see ledger.group_commit).
_group = GroupCommit(lambda items: _append_locked(items, None))
