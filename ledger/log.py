"""The log: serialised appends, stored hashes, roots and proofs, checkpoints.

The hot path uses SQL through Django's connection rather than the ORM: an append
holds the sequence lock for a handful of statements and nothing else.

Serialisation. On PostgreSQL an append takes a transaction-scoped advisory lock,
then reads the tree size in a *new* statement (so under READ COMMITTED it sees every
append committed before the lock was granted). On SQLite, transactions begin
IMMEDIATE (see settings), which takes the database's write lock at BEGIN. Either way
the lock is held until the surrounding transaction commits, so a domain service that
appends inside its own ``transaction.atomic`` gets the index its commit makes real:
one gapless sequence, no fork. The primary keys on entry index and stored-hash index
are the last line of defence: two writers can never both commit index ``n``.

Everything costly (canonical JSON, signatures, key checks against the database)
happens before the lock; under it only leaf assembly and SHA-256.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, connection, transaction

from ledger.core import merkle
from ledger.core.envelope import SignedEnvelope, build_leaf, format_time
from ledger.core.keyring import CORE_KEY_KINDS, Keyring, KeyringError, KeyState
from ledger.models import Checkpoint, Entry, Key, TreeHash

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key: "ledg" "seq" in ASCII, any constant unique to this use.
SEQUENCE_LOCK_ID = 0x6C6564670073657A

ENTRY_T = Entry._meta.db_table
HASH_T = TreeHash._meta.db_table
KEY_T = Key._meta.db_table


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
        cur.execute(f"SELECT MAX({_q('index')}) FROM {ENTRY_T}")  # noqa: S608
        (top,) = cur.fetchone()
    return 0 if top is None else top + 1


def read_hashes(indexes: Sequence[int]) -> list[bytes]:
    """Stored hashes at ``indexes``, in that order, in one query."""
    if not indexes:
        return []
    wanted = sorted(set(indexes))
    marks = ",".join(["%s"] * len(wanted))
    with connection.cursor() as cur:
        cur.execute(f"SELECT idx, hash FROM {HASH_T} WHERE idx IN ({marks})", wanted)  # noqa: S608
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


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


# --- appending -----------------------------------------------------------------------------


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [SEQUENCE_LOCK_ID])
    elif connection.vendor == "sqlite":
        # BEGIN IMMEDIATE already holds the write lock; make sure this connection is
        # really in such a transaction (a DEFERRED one could race to upgrade its lock).
        if connection.settings_dict.get("OPTIONS", {}).get("transaction_mode") != "IMMEDIATE":
            raise LedgerError("SQLite must run with transaction_mode IMMEDIATE")
    else:  # pragma: no cover - settings allow only the two engines
        raise LedgerError(f"unsupported database engine {connection.vendor}")


def _existing(ids: list[str]) -> dict[str, tuple[int, bytes]]:
    if not ids:
        return {}
    found: dict[str, tuple[int, bytes]] = {}
    with connection.cursor() as cur:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join(["%s"] * len(chunk))
            cur.execute(
                f"SELECT entry_id, {_q('index')}, leaf FROM {ENTRY_T} WHERE entry_id IN ({marks})",  # noqa: S608
                chunk,
            )
            found.update({eid: (idx, bytes(leaf)) for eid, idx, leaf in cur.fetchall()})
    return found


def _load_keys(fingerprints: Iterable[str]) -> Keyring:
    fps = sorted(set(fingerprints))
    cols = (
        "fingerprint, public_key, kind, owner, custody, name, registered_in, valid_from, revoked_at"
    )
    with connection.cursor() as cur:
        marks = ",".join(["%s"] * len(fps)) or "NULL"
        cur.execute(
            f"SELECT {cols} FROM {KEY_T} WHERE fingerprint IN ({marks}) OR kind = 'log'",  # noqa: S608
            fps,
        )
        rows = cur.fetchall()
    keys, log_key = {}, None
    for fp, pk, kind, owner, custody, name, reg, vfrom, revoked in rows:
        keys[fp] = KeyState(fp, bytes(pk), kind, owner, custody, name, reg, vfrom, revoked)
        if kind == "log":
            log_key = fp
    return Keyring(keys, log_key)


def _insert(table: str, columns: Sequence[str], rows: list[tuple]) -> None:
    cols = ", ".join(_q(c) for c in columns)
    with connection.cursor() as cur:
        if connection.vendor == "postgresql" and len(rows) > 64:
            # COPY is several times faster than INSERT for bulk imports.
            with cur.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        for start in range(0, len(rows), 200):
            chunk = rows[start : start + 200]
            marks = ", ".join("(" + ",".join(["%s"] * len(columns)) + ")" for _ in chunk)
            cur.execute(
                f"INSERT INTO {table} ({cols}) VALUES {marks}",  # noqa: S608
                [v for row in chunk for v in row],
            )


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

    # Idempotent retries are answered before the lock; a race between two first
    # attempts is settled by the unique constraint on entry_id.
    done = _existing(ids)
    results: dict[str, Appended] = {}
    fresh = []
    for it in items:
        if it.entry_id in done:
            index, leaf = done[it.entry_id]
            if not leaf.startswith(b'{"entry":' + it.envelope_bytes + b',"index":'):
                raise IdempotencyConflict(
                    f"entry id {it.entry_id} is already used at index {index} by another envelope"
                )
            results[it.entry_id] = _describe(it, index, _integrated_from(leaf), leaf, created=False)
        else:
            fresh.append(it)

    if fresh:
        if connection.in_atomic_block:
            # In the caller's transaction: a refusal raised before anything is written
            # leaves that transaction usable.
            appended = _append_locked(fresh)
        else:
            with transaction.atomic():
                appended = _append_locked(fresh)
        for entry in appended:
            results[entry.entry_id] = entry
    return [results[i] for i in ids]


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


def _append_locked(items: list[SignedEnvelope]) -> list[Appended]:
    # Keys are read before the lock too, but their state can change until we hold it,
    # so this read happens under it: a single indexed query.
    authors = {it.author for it in items}
    for it in items:
        if it.kind in CORE_KEY_KINDS:
            fp = it.envelope["payload"].get("fingerprint")
            if isinstance(fp, str):
                authors.add(fp)
    _lock()
    size = tree_size()
    keyring = _load_keys(authors)
    builder = merkle.TreeBuilder.resume(size, read_hashes(merkle.root_indexes(size)))

    now = datetime.now(UTC)
    integrated = format_time(now)
    adapt = connection.ops.adapt_datetimefield_value
    now_db = adapt(now)
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
        entry_rows.append(
            (
                index,
                it.entry_id,
                it.kind,
                it.author,
                adapt(_parse_author_time(it.envelope["time"])),
                now_db,
                leaf,
                lh,
            )
        )
        out.append(_describe(it, index, integrated, leaf, created=True))

    # From here on a failure dooms the surrounding transaction (savepoint=False marks
    # it for rollback), so no half-written append can ever commit.
    try:
        with transaction.atomic(savepoint=False):
            _insert(
                ENTRY_T,
                [
                    "index",
                    "entry_id",
                    "kind",
                    "author",
                    "time",
                    "integrated_at",
                    "leaf",
                    "leaf_hash",
                ],
                entry_rows,
            )
            _insert(HASH_T, ["idx", "hash"], hash_rows)
            for entry in out:
                apply(entry)
    except IntegrityError as exc:
        raise LedgerError(f"append conflicted with a concurrent writer: {exc}") from exc
    transaction.on_commit(request_checkpoint)
    return out


def _parse_author_time(value: str) -> datetime:
    return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)


# --- checkpoints -----------------------------------------------------------------------------


def request_checkpoint() -> None:
    """After a commit: ask for a checkpoint, at most one pending at a time."""
    from django.conf import settings
    from django.core.cache import cache

    from ledger.tasks import publish_checkpoint

    if not settings.LEDGER_PUBLISH_ON_APPEND:
        return
    debounce = settings.LEDGER_CHECKPOINT_DEBOUNCE
    if cache.add("ledger:checkpoint-pending", 1, timeout=debounce + 60):
        try:
            publish_checkpoint.apply_async(countdown=debounce)
        except Exception:
            # The scheduled publication will cover these entries; an unreachable
            # broker must not fail a write that has already committed.
            cache.delete("ledger:checkpoint-pending")
            log.exception("could not queue a checkpoint publication")


def publish_checkpoint() -> Checkpoint | None:
    """Sign and store a checkpoint at the current tree size, if it has grown.

    Refuses to sign a tree that is not an extension of the latest checkpoint: that
    would mean stored history changed, and the log must never sign a fork.
    """
    from ledger.core.note import Checkpoint as Body
    from ledger.core.note import sign_note
    from ledger.keys import log_signer

    size = tree_size()
    latest = Checkpoint.objects.order_by("-tree_size").first()
    if size == 0 or (latest is not None and latest.tree_size >= size):
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
    signer = log_signer()
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


def latest_checkpoint() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-tree_size").first()
