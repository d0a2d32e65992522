"""Full verification of the stored log, from the entries alone.

One pass in index order. The main process streams the rows, recomputes each leaf
hash, rebuilds the tree (comparing every stored hash), follows the key entries to
know which key may sign at each index, and hands batches of leaves to worker
processes, which check structure, canonical form and the author's signature on
every core. Then every stored checkpoint is checked: its signature under the log
key, its root against the rebuilt tree, and its consistency with the one before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from multiprocessing import get_context

from django.db import connection

from ledger.core import merkle
from ledger.core.envelope import EnvelopeError, parse_leaf
from ledger.core.keyring import CORE_KEY_KINDS, Keyring, KeyringError
from ledger.core.leafcheck import check_leaves
from ledger.core.note import NoteError, Verifier, key_id, open_checkpoint
from ledger.models import Checkpoint, Entry, Key, LogHead, TreeHash

BATCH = 2000
ROWS = 10000


@dataclass
class Report:
    size: int = 0
    checkpoints: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.problems

    def first_failure(self) -> tuple[int, str] | None:
        return min(self.failures) if self.failures else None


def _rows(after: int):
    sql = (
        f"SELECT {connection.ops.quote_name('index')}, kind, author, leaf, leaf_hash "  # noqa: S608
        f"FROM {Entry._meta.db_table} WHERE {connection.ops.quote_name('index')} > %s "
        f"ORDER BY {connection.ops.quote_name('index')} LIMIT {ROWS}"
    )
    while True:
        with connection.cursor() as cur:
            cur.execute(sql, [after])
            rows = cur.fetchall()
        if not rows:
            return
        yield from rows
        after = rows[-1][0]


def _stored_hashes():
    sql = f"SELECT idx, hash FROM {TreeHash._meta.db_table} WHERE idx > %s ORDER BY idx LIMIT {ROWS * 2}"  # noqa: S608
    after = -1
    while True:
        with connection.cursor() as cur:
            cur.execute(sql, [after])
            rows = cur.fetchall()
        if not rows:
            return
        yield from rows
        after = rows[-1][0]


def verify_ledger(
    *, workers: int | None = None, progress: Callable[[int], None] | None = None
) -> Report:
    """Verify everything; never raises for a bad log, reports it instead."""
    report = Report()
    total = Entry.objects.count()
    checkpoints = {c.tree_size: c for c in Checkpoint.objects.order_by("tree_size")}
    report.checkpoints = len(checkpoints)
    keyring = Keyring()
    builder = merkle.TreeBuilder()
    stored = _stored_hashes()
    workers = workers or os.cpu_count() or 1
    pending: list[Future] = []
    batch: list = []
    expected = 0
    failures = report.failures

    def fail(index: int, reason: str) -> None:
        if len(failures) < 1000:
            failures.append((index, reason))

    ctx = get_context("forkserver") if os.name == "posix" else get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        for index, kind, author, leaf, stored_leaf_hash in _rows(-1):
            leaf = bytes(leaf)
            if index != expected:
                fail(expected, f"entry missing: the next stored index is {index}")
                break
            expected += 1
            lh = merkle.leaf_hash(leaf)
            if lh != bytes(stored_leaf_hash):
                fail(index, "stored leaf hash is not the hash of the leaf bytes")
            first = merkle.stored_hash_index(0, index)
            for j, h in enumerate(builder.push(lh)):
                row = next(stored, None)
                if row is None or row[0] != first + j or bytes(row[1]) != h:
                    fail(index, f"stored tree hash {first + j} differs from the rebuilt tree")
                    stored = _resync(first + j + 1)
            public_key = None
            try:
                if index == 0 or kind in CORE_KEY_KINDS:
                    parsed = parse_leaf(leaf)
                    env = parsed.envelope
                    keyring.admit(index, env["kind"], env["payload"], env["author"])
                    public_key = keyring.public_key_for(env["author"], index)
                else:
                    public_key = keyring.public_key_for(author, index)
            except (KeyringError, EnvelopeError) as exc:
                fail(index, str(exc))
            batch.append((index, leaf, public_key, kind, author))
            if len(batch) >= BATCH:
                pending.append(pool.submit(check_leaves, batch))
                batch = []
                # Bound memory: keep a few batches in flight per worker.
                while len(pending) > workers * 3:
                    for f in pending.pop(0).result():
                        fail(*f)
                if progress:
                    progress(BATCH)
            if builder.size in checkpoints:
                _check_checkpoint(checkpoints[builder.size], builder.root(), keyring, report)
        if batch:
            pending.append(pool.submit(check_leaves, batch))
            if progress:
                progress(len(batch))
        for f in pending:
            for failure in f.result():
                fail(*failure)

    report.size = builder.size
    if total != builder.size:
        report.problems.append(
            f"{total} entries stored but only {builder.size} form a gapless sequence"
        )
    extra = next(stored, None)
    if extra is not None:
        report.problems.append(
            f"stored tree hash {extra[0]} is beyond the tree of size {builder.size}"
        )
    for size in checkpoints:
        if size > builder.size:
            report.problems.append(f"checkpoint at size {size} is beyond the tree ({builder.size})")
    head = LogHead.objects.filter(id=1).first()
    if (
        head is None
        or head.size != builder.size
        or bytes(head.frontier) != b"".join(builder.frontier())
    ):
        report.problems.append(
            "the log head (size and right-edge hashes) differs from the rebuilt tree"
        )
    _check_consistency(sorted(checkpoints.values(), key=lambda c: c.tree_size), report)
    _check_registry(keyring, report)
    return report


def _resync(after: int):
    sql = f"SELECT idx, hash FROM {TreeHash._meta.db_table} WHERE idx >= %s ORDER BY idx"  # noqa: S608

    def gen():
        start = after
        while True:
            with connection.cursor() as cur:
                cur.execute(sql + f" LIMIT {ROWS * 2}", [start])
                rows = cur.fetchall()
            if not rows:
                return
            yield from rows
            start = rows[-1][0] + 1

    return gen()


def _check_checkpoint(cp: Checkpoint, root: bytes, keyring: Keyring, report: Report) -> None:
    where = f"checkpoint at size {cp.tree_size}"
    log_key = keyring.keys.get(keyring.log_key) if keyring.log_key else None
    if log_key is None:
        report.problems.append(f"{where}: no log key registered by the entries")
        return
    verifier = Verifier(log_key.name, key_id(log_key.name, log_key.public_key), log_key.public_key)
    try:
        body = open_checkpoint(cp.note, verifier, origin=log_key.name)
    except NoteError as exc:
        report.problems.append(f"{where}: {exc}")
        return
    if body.size != cp.tree_size:
        report.problems.append(f"{where}: the note says size {body.size}")
    if body.root != root or bytes(cp.root_hash) != root:
        report.problems.append(f"{where}: root differs from the tree rebuilt from the entries")


def _check_consistency(cps: list[Checkpoint], report: Report) -> None:
    from ledger import log

    for old, new in pairwise(cps):
        if new.tree_size > report.size:
            break
        try:
            proof = log.consistency_proof(old.tree_size, new.tree_size)
            merkle.verify_consistency(
                old.tree_size, new.tree_size, bytes(old.root_hash), bytes(new.root_hash), proof
            )
        except (merkle.ProofError, log.LedgerError) as exc:
            report.problems.append(
                f"checkpoints at sizes {old.tree_size} and {new.tree_size} are not consistent: {exc}"
            )


def _check_registry(keyring: Keyring, report: Report) -> None:
    """The key registry table must be exactly what the key entries say."""
    stored = {k.fingerprint: k for k in Key.objects.all()}
    for fp, state in keyring.keys.items():
        row = stored.pop(fp, None)
        if row is None:
            report.problems.append(
                f"key {fp[:16]}… is registered by entries but not in the registry"
            )
            continue
        if (
            bytes(row.public_key) != state.public_key
            or row.kind != state.kind
            or row.custody != state.custody
            or row.valid_from != state.valid_from
            or row.revoked_at != state.revoked_at
        ):
            report.problems.append(f"key {fp[:16]}… in the registry differs from its entries")
    for fp in stored:
        report.problems.append(f"key {fp[:16]}… is in the registry but no entry registers it")
