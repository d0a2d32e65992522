"""Full verification of the stored log, from the entries alone.

1. The key entries (few) are read first, in index order, and the keyring rules
   replayed over them: which key may sign which index range.
2. Worker processes, one per core, each read a range of entries over their own
   database connection and check every leaf: its layout, its stored leaf hash,
   that its author may sign at its index, and the author's signature. They return
   the leaf hashes they recomputed.
3. The main process takes those hashes in index order, rebuilds the tree and
   compares every stored hash, and at each checkpoint's size checks its signature
   under the log key and its root; then the consistency between consecutive
   checkpoints, the log head and the key registry.

Leaf bytes never pass through the main process, which keeps it off the critical
path: verification runs at close to the signature-checking speed of all cores.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context

from django.db import connection
from django.utils import timezone

from ledger import verify_worker as leafcheck_worker
from ledger.core import merkle
from ledger.core.envelope import EnvelopeError, parse_leaf
from ledger.core.keyring import CORE_KEY_KINDS, Keyring, KeyringError
from ledger.errors import LedgerError
from ledger.models import Checkpoint, Entry, LogHead, TreeHash, VerificationRun
from ledger.proofs import read_hashes
from ledger.verify_checkpoints import (
    check_checkpoint,
    check_consistency,
    check_registry,
    checkpoints_beyond,
    top_index,
)

RANGE = 4000  # entries a worker checks at a time
ROWS = 10000

alarm = logging.getLogger("ledger.verify")


@dataclass
class Report:
    size: int = 0
    checkpoints: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    problems_skipped: str = ""
    start: int = 0  # the entries checked are start..size-1
    frontier: list[bytes] = field(default_factory=list)  # of the tree rebuilt, at size
    root: bytes = b""

    @property
    def ok(self) -> bool:
        return not self.failures and not self.problems

    def first_failure(self) -> tuple[int, str] | None:
        return min(self.failures) if self.failures else None


def _key_entries(top: int):
    """Index, kind, author and leaf of the entries that change the keyring, in order."""
    idx = connection.ops.quote_name("index")
    kinds = ",".join(["%s"] * len(CORE_KEY_KINDS))
    sql = (
        f"SELECT {idx}, kind, author, leaf FROM {Entry._meta.db_table} "
        f"WHERE (kind IN ({kinds}) OR {idx} = 0) AND {idx} <= %s ORDER BY {idx}"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [*CORE_KEY_KINDS, top])
        return cur.fetchall()


class _StoredHashes:
    """The stored tree hashes in storage order, read in blocks, compared one by one."""

    def __init__(self) -> None:
        self.block = b""
        self.start = 0  # storage index of the block's first hash
        self.end = 0  # one past the last storage index read so far

    def _load(self, idx: int) -> None:
        sql = f"SELECT idx, hash FROM {TreeHash._meta.db_table} WHERE idx >= %s ORDER BY idx LIMIT {ROWS * 2}"
        with connection.cursor() as cur:
            cur.execute(sql, [idx])
            rows = cur.fetchall()
        # Keep only the run of consecutive indexes from idx: a gap ends the block.
        run = 0
        while run < len(rows) and rows[run][0] == idx + run:
            run += 1
        self.block = b"".join(bytes(h) for _, h in rows[:run])
        self.start, self.end = idx, idx + run

    def matches(self, idx: int, h: bytes) -> bool:
        if not self.start <= idx < self.end:
            self._load(idx)
            if idx >= self.end:
                return False
        off = (idx - self.start) * 32
        return self.block[off : off + 32] == h

    def first_beyond(self, size_count: int) -> int | None:
        """The first stored index at or past ``size_count``, if any."""
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT MIN(idx) FROM {TreeHash._meta.db_table} WHERE idx >= %s", [size_count]
            )
            return cur.fetchone()[0]


def verify_ledger(
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    strict: bool = False,
    start: int = 0,
    frontier: Sequence[bytes] = (),
    limit: int | None = None,
) -> Report:
    """Verify everything; never raises for a bad log, reports it instead.

    ``strict`` also parses every leaf as JSON and checks its canonical form (see
    ``ledger.core.leafcheck``).

    With ``start`` and ``frontier`` (the right-edge hashes of the tree of ``start``
    entries that an earlier verification rebuilt), only the entries from ``start`` on
    are checked, and the tree is rebuilt on from that frontier; the key history is
    still replayed from the genesis, and the stored hashes at that frontier must still
    be those. ``limit`` checks at most that many entries.
    """
    report = Report(start=start)
    # What is verified is the log as it stood when verification began; entries and
    # checkpoints added meanwhile are left for the next run.
    top = top_index()
    last = top if limit is None else min(top, start + limit - 1)
    total = Entry.objects.filter(index__gte=start, index__lte=last).count()
    checkpoints = {
        c.tree_size: c
        for c in Checkpoint.objects.filter(tree_size__gt=start, tree_size__lte=last + 1).order_by(
            "tree_size"
        )
    }
    # The last checkpoint an earlier verification saw, to prove the new ones extend it.
    anchor = (
        Checkpoint.objects.filter(tree_size__lte=start).order_by("-tree_size").first()
        if start
        else None
    )
    report.checkpoints = len(checkpoints)
    keyring = Keyring()
    tree = _Rebuild(report, keyring, checkpoints, start, frontier, progress)
    _check_start(report, start, top, frontier)
    # 1. The key timeline, from the key entries alone.
    key_entries = _replay_keys(keyring, last, tree.fail)
    timeline = {fp: (k.public_key, k.valid_from, k.revoked_at) for fp, k in keyring.keys.items()}
    # Every entry signature covers the log's origin; without a genesis none can verify.
    origin = keyring.origin or "no-genesis"
    # 2 and 3. Workers check ranges; the tree is rebuilt from what they return.
    ranges = [(lo, min(lo + RANGE, last + 1)) for lo in range(start, last + 1, RANGE)]
    workers = workers or os.cpu_count() or 1
    if connection.in_atomic_block or workers <= 1:
        # Inside a transaction other connections would not see uncommitted entries:
        # check in this process, over this connection.
        _check_here(ranges, tree, timeline, key_entries, strict, origin)
    else:
        _check_on_workers(ranges, tree, workers, timeline, key_entries, strict, origin)
    builder = tree.builder
    report.size = builder.size
    report.frontier = builder.frontier()
    report.root = builder.root()
    _check_gapless(report, total, start)
    still = checkpoints_beyond(last, keyring, report)
    signed = sorted(checkpoints.values(), key=lambda c: c.tree_size)
    check_consistency([anchor, *signed] if anchor else signed, report)
    _compare_derived(report, tree, keyring, top=top, last=last, still=still)
    return report


class _Rebuild:
    """The tree rebuilt from the leaf hashes the checks return, in index order: every
    stored hash compared on the way, and each checkpoint in range at its size."""

    def __init__(self, report, keyring, checkpoints, start, frontier, progress):
        self.report, self.keyring, self.checkpoints = report, keyring, checkpoints
        self.builder = merkle.TreeBuilder.resume(start, frontier) if start else merkle.TreeBuilder()
        self.stored = _StoredHashes()
        self.next_idx = merkle.stored_hash_count(start)
        self.progress = progress
        self.broken = False  # past a missing entry there is no tree to rebuild

    def fail(self, index: int, reason: str) -> None:
        if len(self.report.failures) < 1000:
            self.report.failures.append((index, reason))

    def collect(self, pending: deque) -> None:
        """Take the oldest range's results: results are taken in submission order, so
        the tree is rebuilt in index order."""
        first, hi, future = pending.popleft()
        bad, hashes = future.result()
        for f in bad:
            self.fail(*f)
        if self.broken:
            return
        if len(hashes) // 32 < hi - first:
            self.broken = True
        for i in range(0, len(hashes), 32):
            self._push(first + i // 32, hashes[i : i + 32])
        if self.progress:
            self.progress(len(hashes) // 32)

    def _push(self, index: int, leaf_hash: bytes) -> None:
        # Appends store their hashes at consecutive storage indexes, in leaf order.
        for h in self.builder.push(leaf_hash):
            if not self.stored.matches(self.next_idx, h):
                self.fail(index, f"stored tree hash {self.next_idx} differs from the rebuilt tree")
            self.next_idx += 1
        if self.builder.size in self.checkpoints:
            check_checkpoint(
                self.checkpoints[self.builder.size], self.builder.root(), self.keyring, self.report
            )


def _check_start(report: Report, start: int, top: int, frontier: Sequence[bytes]) -> None:
    """The entries an earlier verification saw are still there, under the same tree."""
    if start > top + 1:
        report.problems.append(
            f"the log has {top + 1} entries, fewer than the {start} an earlier verification saw"
        )
    elif start and _stored_frontier(start) != list(frontier):
        report.problems.append(
            f"the stored tree hashes of the first {start} entries differ from those an "
            "earlier verification rebuilt"
        )


def _replay_keys(keyring: Keyring, last: int, fail: Callable[[int, str], None]) -> set[int]:
    """Admit every key entry up to ``last`` on ``keyring``; their indexes."""
    key_entries = set()
    for index, kind, author, leaf in _key_entries(last):
        key_entries.add(index)
        try:
            env = parse_leaf(bytes(leaf)).envelope
            if (env["kind"], env["author"]) != (kind, author):
                raise EnvelopeError("the stored kind or author column differs from the leaf")
            keyring.admit(index, env["kind"], env["payload"], env["author"])
        except (KeyringError, EnvelopeError) as exc:
            fail(index, str(exc))
    return key_entries


def _check_here(
    ranges, tree: _Rebuild, timeline, key_entries: set[int], strict: bool, origin: str
) -> None:
    """Check the ranges in this process, over this connection."""
    sql = leafcheck_worker.SELECT.format(table=Entry._meta.db_table, mark="%s")
    keys = frozenset(key_entries)
    pending: deque = deque()
    for lo, hi in ranges:
        with connection.cursor() as cur:
            cur.execute(sql, [lo, hi])
            rows = cur.fetchall()
        done = Future()
        done.set_result(leafcheck_worker.check_rows(lo, hi, rows, timeline, keys, strict, origin))
        pending.append((lo, hi, done))
        tree.collect(pending)


def _check_on_workers(
    ranges,
    tree: _Rebuild,
    workers: int,
    timeline,
    key_entries: set[int],
    strict: bool,
    origin: str,
) -> None:
    """Check the ranges on ``workers`` processes, each over its own connection."""
    settings = {
        k: connection.settings_dict[k]
        for k in ("NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
    }
    ctx = get_context("forkserver") if os.name == "posix" else get_context("spawn")
    pending: deque = deque()
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=leafcheck_worker.start,
        initargs=(
            connection.vendor,
            settings,
            Entry._meta.db_table,
            timeline,
            sorted(key_entries),
            origin,
        ),
    ) as pool:
        for lo, hi in ranges:
            pending.append((lo, hi, pool.submit(leafcheck_worker.check_range, lo, hi, strict)))
            # Bound memory: keep a few ranges in flight per worker.
            while len(pending) > workers * 2:
                tree.collect(pending)
        while pending:
            tree.collect(pending)


def _check_gapless(report: Report, total: int, start: int) -> None:
    if total != report.size - start:
        report.problems.append(
            f"{total} entries stored but only {report.size} form a gapless sequence"
            if not start
            else f"{total} entries stored from index {start} but only {report.size - start} "
            "form a gapless sequence"
        )


def _compare_derived(
    report: Report, tree: _Rebuild, keyring: Keyring, *, top: int, last: int, still: int
) -> None:
    """The derived tables (stored hashes past the tree, the log head, the key registry),
    compared only while nothing is appended, and only when the whole log was reached."""
    if still == top == last:
        extra = tree.stored.first_beyond(tree.next_idx)
        if extra is not None:
            report.problems.append(
                f"stored tree hash {extra} is beyond the tree of size {tree.builder.size}"
            )
        head = LogHead.objects.filter(id=1).first()
        if (
            head is None
            or head.size != tree.builder.size
            or bytes(head.frontier) != b"".join(tree.builder.frontier())
        ):
            report.problems.append(
                "the log head (size and right-edge hashes) differs from the rebuilt tree"
            )
        check_registry(keyring, report)
    elif last < top:
        report.problems_skipped = (
            f"{top - last} entries are left for the next run; derived tables not compared"
        )
    else:
        report.problems_skipped = "the log grew during verification; derived tables not compared"


def verify_recent(*, workers: int | None = 1, limit: int | None = None) -> VerificationRun:
    """Verify what was appended since the last run that passed, and record the run.

    Checks every new entry (layout, stored leaf hash, author valid at its index under
    the keyring rules replayed from the genesis, signature), rebuilds the tree on from
    the frontier the last good run rebuilt and compares every stored hash, checks each
    new checkpoint's signature and root and its consistency with the last one checked
    before, and (when it reaches the end of the log) the log head and the key registry.
    A failed run leaves the mark where it was, so every later run fails too until the
    log is repaired. A failure is logged at CRITICAL, naming the first bad index.
    """
    last_good = VerificationRun.objects.filter(ok=True).order_by("-id").first()
    start, frontier = 0, []
    if last_good is not None:
        start = last_good.size
        raw = bytes(last_good.frontier)
        frontier = [raw[i : i + 32] for i in range(0, len(raw), 32)]
    started = timezone.now()
    report = verify_ledger(workers=workers, start=start, frontier=frontier, limit=limit)
    index, reason = None, ""
    if not report.ok:
        first = report.first_failure()
        index, reason = first if first else (None, report.problems[0])
    run = VerificationRun.objects.create(
        started_at=started,
        finished_at=timezone.now(),
        first=start,
        size=report.size,
        checkpoints=report.checkpoints,
        ok=report.ok,
        failed_index=index,
        reason=reason,
        failures=len(report.failures) + len(report.problems),
        frontier=b"".join(report.frontier) if report.ok else b"",
        root=report.root if report.ok else b"",
    )
    if report.ok:
        alarm.info(
            "ledger verified: entries %d to %d, %d checkpoints",
            start,
            report.size - 1,
            report.checkpoints,
        )
    elif index is not None:
        alarm.critical(
            "LEDGER VERIFICATION FAILED at index %d: %s (entries from %d checked; %d problems)",
            index,
            reason,
            start,
            run.failures,
        )
    else:
        alarm.critical(
            "LEDGER VERIFICATION FAILED: %s (entries from %d checked; %d problems)",
            reason,
            start,
            run.failures,
        )
    return run


def _stored_frontier(size: int) -> list[bytes] | None:
    try:
        return read_hashes(merkle.root_indexes(size))
    except LedgerError:
        return None
