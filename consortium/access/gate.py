"""The download gate's decisions, kept by each process while the ledger says nothing that
could change them.

Every fact an entitlement reads (the checkpoint and its state, release approvals and
evaluations, the member's standing, grants, the agreement and its parties, the balance
tallies, the valuation table) and the log key that signs download tokens are projections
of ledger entries, written by their appliers. A decision made at a given state of the log
therefore holds until an entry that may change it is appended, and the ledger itself says
when that happens: serving a range asks one indexed question, "what is the last entry,
and the last one that is not a download authorisation?", instead of the ten or so an
entitlement costs. A grant revoked, a member suspended, a checkpoint blocked or a
contribution recorded, by any process, is seen by the very next range.

``download.authorized`` entries are the one kind left out (``IGNORED_KINDS``): the gate
appends one for every download, and its applier writes only the authorisation itself,
which no decision reads. Decisions are kept per member, checkpoint, scope and UTC day (an
embargo or a grant ends with a day), at most ``MAX_KEPT`` of them.

The bookkeeping is safe under threads: a decision is kept with the last entry its
request had seen before it was made, and used only while no entry that may change it
came after that one. Each look also checks that the entry last seen is still there with
the same leaf hash: a log restored or rolled back under a running process forgets
everything it kept.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import connections, router

from consortium.access.entitlements import Decision, entitlement
from consortium.access.models import ModelCheckpoint
from ledger.services import Entry, Key

IGNORED_KINDS = ("download.authorized",)
MAX_KEPT = 4096
MAX_INDEX = 2**63 - 1  # past any entry's index (a signed 64-bit column)


@dataclass(frozen=True)
class Gated:
    """What serving a file needs of a checkpoint, as of a state of the log: its files
    (path -> size and SHA-256) and the decision for the member and scope asked (``None``
    when no checkpoint has that digest)."""

    digest: str
    files: dict[str, tuple[int, str]]
    decision: Decision | None


@dataclass(frozen=True)
class Seen:
    """What one look at the ledger saw: the history it belongs to, and its last entry."""

    history: int
    last: int


class _Kept:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._through: tuple[int, bytes | None] | None = None  # the last entry seen, its hash
        self._changed = -1  # the last entry seen that may change a decision
        self._history = 0  # one more each time the log's history is found changed
        self._kept: dict[tuple, tuple[Seen, object]] = {}

    def observe(self) -> Seen:
        """Ask the ledger what was appended since the last look: what a decision made
        from now on is kept with."""
        with self._lock:
            since = self._through
        last, last_hash, changed, hash_then = _look(since[0] if since else None)
        with self._lock:
            if since is not None and hash_then != since[1]:
                # The entry last seen is gone or another: a database restored, or rolled
                # back, under this process. Nothing kept holds.
                self._history += 1
                self._kept.clear()
                self._changed = last
                self._through = (last, last_hash)
            else:
                if since is None:
                    # A first look: whatever is there may have changed anything.
                    self._changed = max(self._changed, last)
                elif changed is not None:
                    self._changed = max(self._changed, changed)
                if self._through is None or self._through[0] < last:
                    self._through = (last, last_hash)
            return Seen(self._history, last)

    def get(self, key: tuple):
        found = self._kept.get(key)
        if found is None:
            return None
        seen, value = found
        if seen.history != self._history or seen.last < self._changed:
            return None
        return value

    def put(self, key: tuple, seen: Seen, value) -> None:
        with self._lock:
            if seen.history != self._history or seen.last < self._changed:
                return  # already out of date
            if len(self._kept) >= MAX_KEPT:
                self._kept.clear()
            self._kept[key] = (seen, value)

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._through = None
            self._changed = -1
            self._history += 1


kept = _Kept()


def _look(since: int | None) -> tuple[int, bytes | None, int | None, bytes | None]:
    """One query, by the primary key: the last entry's index (-1 for none) and leaf hash;
    the last index after ``since`` of an entry that may change a decision (None: none);
    the leaf hash of the entry at ``since`` now (None: no such entry). Only the entries
    after ``since`` are read; on a first look (``since`` None), none."""
    alias = router.db_for_read(Entry)
    quote = connections[alias].ops.quote_name
    table, index = quote(Entry._meta.db_table), quote("index")
    marks = ", ".join(["%s"] * len(IGNORED_KINDS))
    # A first look reads no entry after the last and none at -1: both answers are None.
    after, at = (since, since) if since is not None else (MAX_INDEX, -1)
    with connections[alias].cursor() as cursor:
        cursor.execute(
            f"SELECT e.{index}, e.leaf_hash, "
            f"(SELECT MAX({index}) FROM {table} WHERE {index} > %s AND kind NOT IN ({marks})), "
            f"(SELECT leaf_hash FROM {table} WHERE {index} = %s) "
            f"FROM {table} e ORDER BY e.{index} DESC LIMIT 1",
            [after, *IGNORED_KINDS, at],
        )
        row = cursor.fetchone()
    if row is None:
        return -1, None, None, None
    last, last_hash, changed, hash_then = row
    return last, _bytes(last_hash), changed, _bytes(hash_then)


def _bytes(value) -> bytes | None:
    return None if value is None else bytes(value)


def log_public_key(seen: Seen | None = None) -> bytes | None:
    """The log key's public half (None before the log has one); ``seen``: what
    ``kept.observe()`` returned for this request, if it was called."""
    seen = kept.observe() if seen is None else seen
    found = kept.get(("log-key",))
    if found is None:
        key = Key.objects.filter(kind=Key.Kind.LOG, revoked_at__isnull=True).first()
        found = (bytes(key.public_key) if key is not None else None,)
        kept.put(("log-key",), seen, found)
    return found[0]


def gated(
    member: str, digest: str, scope: str, *, seen: Seen | None = None, today: date | None = None
) -> Gated:
    """The checkpoint ``digest``'s files and ``member``'s entitlement to it in ``scope``,
    as the ledger stands now: kept from an earlier request while nothing that may change
    it was appended. ``seen``: what ``kept.observe()`` returned for this request, if it
    was called (one look a request is enough)."""
    today = today or datetime.now(UTC).date()
    key = (member, digest, scope, today)
    seen = kept.observe() if seen is None else seen
    found = kept.get(key)
    if found is None:
        checkpoint = (
            ModelCheckpoint.objects.select_related("model__agreement").filter(digest=digest).first()
        )
        if checkpoint is None:
            found = Gated(digest, {}, None)
        else:
            found = Gated(
                digest,
                {f["path"]: (f["size"], f["sha256"]) for f in checkpoint.files},
                entitlement(member, checkpoint, scope, today),
            )
        kept.put(key, seen, found)
    return found
