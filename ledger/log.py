"""The log: serialised appends, stored hashes, roots and proofs, checkpoints.

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
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from django.db import IntegrityError, connection, transaction

from ledger.core import merkle
from ledger.core.envelope import SignedEnvelope, build_leaf, canonical, format_time
from ledger.core.keyring import CORE_KEY_KINDS, Keyring, KeyringError, KeyState
from ledger.models import Checkpoint, Entry, Key, LogHead, TreeHash

log = logging.getLogger(__name__)


ENTRY_T = Entry._meta.db_table
HASH_T = TreeHash._meta.db_table
KEY_T = Key._meta.db_table
HEAD_T = LogHead._meta.db_table
KEY_COLS = (
    "fingerprint, public_key, kind, owner, custody, name, registered_in, valid_from, revoked_at"
)


class LedgerError(Exception):
    """An append or read the ledger refuses; the message says why."""


class IdempotencyConflict(LedgerError):
    """An entry id already names a different envelope."""


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


# --- reading ---------------------------------------------------------------------------


def tree_size() -> int:
    with connection.cursor() as cur:
        cur.execute(f"SELECT MAX({_q('index')}) FROM {ENTRY_T}")
        (top,) = cur.fetchone()
    return 0 if top is None else top + 1


def read_hashes(indexes: Sequence[int]) -> list[bytes]:
    """Stored hashes at ``indexes``, in that order, in one query."""
    if not indexes:
        return []
    wanted = sorted(set(indexes))
    marks = ",".join(["%s"] * len(wanted))
    with connection.cursor() as cur:
        cur.execute(f"SELECT idx, hash FROM {HASH_T} WHERE idx IN ({marks})", wanted)
        found = {idx: bytes(h) for idx, h in cur.fetchall()}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise LedgerError(f"stored hashes missing at {missing[:5]}: the tree is damaged")
    return [found[i] for i in indexes]


def root_at(size: int) -> bytes:
    return merkle.tree_root(size, read_hashes)


def inclusion_proof(index: int, size: int) -> list[bytes]:
    return merkle.prove_inclusion(index, size, read_hashes)


def consistency_proof(old_size: int, new_size: int) -> list[bytes]:
    return merkle.prove_consistency(old_size, new_size, read_hashes)


# Proofs made together read their hashes together, this many proofs to a query.
PROOFS_PER_QUERY = 200


def _batched(needs: list[list[int]]) -> list[list[bytes]]:
    """The stored hashes at each list of indexes, reading them a batch at a time."""
    out: list[list[bytes]] = []
    for at in range(0, len(needs), PROOFS_PER_QUERY):
        batch = needs[at : at + PROOFS_PER_QUERY]
        wanted = sorted({i for need in batch for i in need})
        found = dict(zip(wanted, read_hashes(wanted), strict=True))
        out += [[found[i] for i in need] for need in batch]
    return out


def inclusion_proofs(indexes: Sequence[int], size: int) -> list[list[bytes]]:
    """Inclusion proofs of many leaves in the tree of ``size``, in order."""
    needs = [merkle.inclusion_indexes(i, size) for i in indexes]
    return [
        merkle.inclusion_from(i, size, hashes)
        for i, hashes in zip(indexes, _batched(needs), strict=True)
    ]


def consistency_proofs(pairs: Sequence[tuple[int, int]]) -> list[list[bytes]]:
    """Consistency proofs between many (old size, new size) pairs, in order."""
    needs = [merkle.consistency_indexes(old, new) for old, new in pairs]
    return [
        merkle.consistency_from(old, new, hashes)
        for (old, new), hashes in zip(pairs, _batched(needs), strict=True)
    ]


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
        if kind == "log":
            log_key = fp
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


class _Request:
    __slots__ = ("error", "event", "items", "lead", "result")

    def __init__(self, items: list[SignedEnvelope]):
        self.items = items
        self.event = threading.Event()
        self.result: list[Appended] | None = None
        self.error: BaseException | None = None
        self.lead = False


class _GroupCommit:
    """Group commit for appends that run in a transaction of their own.

    The sequence lock is held until commit, so one commit per entry caps the rate at
    one entry per commit latency. Callers that are not inside a transaction (API
    ingestion, importers, tasks) queue their entries here; one of them, the leader,
    appends everything queued in one transaction, then hands leadership to the next
    waiter. If a combined append fails, each request is retried alone, so one bad
    entry fails only its own caller. An append made by the leader's own thread while
    it leads (from a commit hook, say) runs directly, never waiting on itself.
    """

    MAX_BATCH = 1000

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queue: list[_Request] = []
        self._leading = False
        self._local = threading.local()

    def submit(self, items: list[SignedEnvelope]) -> list[Appended]:
        if getattr(self._local, "leading", False):
            with transaction.atomic():
                return _append_locked(items, None)
        req = _Request(items)
        with self._mutex:
            self._queue.append(req)
            if not self._leading:
                self._leading = req.lead = True
        if not req.lead:
            req.event.wait()
        if req.lead:
            self._lead()
        if req.error is not None:
            raise req.error
        assert req.result is not None
        return req.result

    def _lead(self) -> None:
        with self._mutex:
            batch, count = [], 0
            while self._queue:
                if batch and count + len(self._queue[0].items) > self.MAX_BATCH:
                    break
                req = self._queue.pop(0)
                batch.append(req)
                count += len(req.items)
        self._local.leading = True
        try:
            self._run(batch)
        except BaseException as exc:
            for req in batch:
                if req.result is None and req.error is None:
                    req.error = exc
            raise
        finally:
            self._local.leading = False
            with self._mutex:
                if self._queue:
                    nxt = self._queue[0]
                    nxt.lead = True
                    nxt.event.set()
                else:
                    self._leading = False
            for req in batch:
                req.lead = False
                req.event.set()

    @staticmethod
    def _run(batch: list[_Request]) -> None:
        combined = [it for req in batch for it in req.items]
        if len({it.entry_id for it in combined}) == len(combined):
            try:
                with transaction.atomic():
                    out = _append_locked(combined, None)
            except Exception as exc:
                if len(batch) == 1:
                    batch[0].error = exc
                    return
            else:
                pos = 0
                for req in batch:
                    req.result = out[pos : pos + len(req.items)]
                    pos += len(req.items)
                return
        # Alone, each request succeeds or fails on its own.
        for req in batch:
            try:
                with transaction.atomic():
                    req.result = _append_locked(req.items, None)
            except Exception as exc:
                req.error = exc


_group = _GroupCommit()


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
            it = SignedEnvelope(before, leaf[9 : leaf.rfind(b',"index":')], it.signature)
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
        leaf = build_leaf(it.envelope_bytes, index, integrated, it.signature)
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
    if not retries:
        return out
    by_id = {**retries, **{e.entry_id: e for e in out}}
    return [by_id[i] for i in order]


# --- checkpoints -----------------------------------------------------------------------------


def request_checkpoint() -> None:
    """After a commit: ask for a checkpoint, at most one pending at a time."""
    from django.conf import settings
    from django.core.cache import cache

    from ledger.tasks import publish_checkpoint

    if not settings.LEDGER_PUBLISH_ON_APPEND:
        return
    debounce = settings.LEDGER_CHECKPOINT_DEBOUNCE
    try:
        if cache.add("ledger:checkpoint-pending", 1, timeout=debounce + 60):
            try:
                publish_checkpoint.apply_async(countdown=debounce)
            except Exception:
                cache.delete("ledger:checkpoint-pending")
                raise
    except Exception:
        # The scheduled publication will cover these entries; an unreachable broker
        # or cache must not fail a write that has already committed.
        log.exception("could not queue a checkpoint publication")


def publish_checkpoint() -> Checkpoint | None:
    """Sign and store a checkpoint at the current tree size, if it has grown.

    Refuses to sign a tree that is not an extension of the latest checkpoint: that
    would mean stored history changed, and the log must never sign a fork.
    """
    from ledger.core.note import Checkpoint as Body
    from ledger.core.note import NoteError, open_checkpoint, sign_note
    from ledger.keys import log_signer

    size = tree_size()
    latest = Checkpoint.objects.order_by("-tree_size").first()
    signer = log_signer()
    if latest is not None:
        # Never build on a checkpoint this log did not sign, nor on one ahead of the tree.
        try:
            signed = open_checkpoint(latest.note, _verifier(signer), origin=signer.name)
        except NoteError as exc:
            raise LedgerError(
                f"the stored checkpoint at size {latest.tree_size} is not the log's: {exc}"
            ) from exc
        if (signed.size, signed.root) != (latest.tree_size, bytes(latest.root_hash)):
            raise LedgerError(
                f"the stored checkpoint at size {latest.tree_size} differs from its note"
            )
        if latest.tree_size > size:
            raise LedgerError(
                f"the latest checkpoint is at size {latest.tree_size} but the tree has {size} entries"
            )
    if size == 0 or (latest is not None and latest.tree_size == size):
        return None
    root = root_at(size)
    if latest is not None:
        proof = consistency_proof(latest.tree_size, size)
        try:
            merkle.verify_consistency(latest.tree_size, size, bytes(latest.root_hash), root, proof)
        except merkle.ProofError as exc:
            raise LedgerError(
                f"refusing to sign size {size}: not consistent with the checkpoint at "
                f"size {latest.tree_size} ({exc})"
            ) from exc
    note = sign_note(Body(signer.name, size, root).body(), signer.note_signer())
    try:
        with transaction.atomic():
            return Checkpoint.objects.create(
                tree_size=size, root_hash=root, note=note, published_at=datetime.now(UTC)
            )
    except IntegrityError:
        # Another publisher signed this size first; the note is identical
        # (Ed25519 signatures are deterministic).
        return Checkpoint.objects.get(tree_size=size)


def _verifier(signer):
    from ledger.core.note import Verifier, key_id

    return Verifier(signer.name, key_id(signer.name, signer.public_key), signer.public_key)


def latest_checkpoint() -> Checkpoint | None:
    """The latest checkpoint within the tree (one beyond it would not be the log's)."""
    return Checkpoint.objects.filter(tree_size__lte=tree_size()).order_by("-tree_size").first()
