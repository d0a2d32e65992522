"""The worker side of `ledger verify`: read a range of entries and check every leaf.

Runs in worker processes started by ``ledger.verify``. It talks to the database
through the plain DB-API driver with the settings it is given, not through Django:
the main process may run against a database Django picked at run time (the test
database, say), which a fresh interpreter would not know.
"""

from __future__ import annotations

_state: dict = {}

COLUMNS = '"index", kind, author, leaf, leaf_hash, entry_id'
SELECT = (
    "SELECT "
    + COLUMNS
    + ' FROM {table} WHERE "index" >= {mark} AND "index" < {mark} ORDER BY "index"'
)


def start(
    vendor: str, settings: dict, table: str, timeline: dict, key_entries: list[int], origin: str
) -> None:
    """Pool initialiser: open this worker's connection and keep the key timeline and the
    log's origin (which every entry signature covers)."""
    if vendor == "postgresql":
        import psycopg

        options = {
            k: v
            for k, v in (settings.get("OPTIONS") or {}).items()
            if k
            in {
                "sslmode",
                "sslrootcert",
                "sslcert",
                "sslkey",
                "connect_timeout",
                "options",
                "service",
                "passfile",
            }
        }
        conn = psycopg.connect(
            dbname=settings["NAME"],
            user=settings["USER"] or None,
            password=settings["PASSWORD"] or None,
            host=settings["HOST"] or None,
            port=settings["PORT"] or None,
            autocommit=True,
            **options,
        )
        sql = SELECT.format(table=table, mark="%s")
    else:
        import sqlite3

        conn = sqlite3.connect(f"file:{settings['NAME']}?mode=ro", uri=True)
        sql = SELECT.format(table=table, mark="?")
    _state.update(
        conn=conn, sql=sql, timeline=timeline, key_entries=frozenset(key_entries), origin=origin
    )


def check_range(lo: int, hi: int, strict: bool) -> tuple[list[tuple[int, str]], bytes]:
    """Check entries ``lo`` to ``hi - 1`` over this worker's connection."""
    cur = _state["conn"].cursor()
    cur.execute(_state["sql"], (lo, hi))
    return check_rows(
        lo,
        hi,
        cur.fetchall(),
        _state["timeline"],
        _state["key_entries"],
        strict,
        _state["origin"],
    )


def check_rows(
    lo: int,
    hi: int,
    rows: list,
    timeline: dict,
    key_entries: frozenset,
    strict: bool,
    origin: str,
) -> tuple[list[tuple[int, str]], bytes]:
    """Check the rows (index, kind, author, leaf, leaf_hash) of entries ``lo`` to ``hi - 1``.

    Returns the failures and the recomputed leaf hashes of the gapless run of entries
    from ``lo`` (fewer than ``hi - lo`` when an entry is missing).
    """
    from ledger.core.keyring import CORE_KEY_KINDS
    from ledger.core.leafcheck import check_leaves

    failures: list[tuple[int, str]] = []
    items = []
    for expected, (index, kind, author, leaf, stored_hash, entry_id) in enumerate(rows, lo):
        if index != expected:
            failures.append((expected, f"entry missing: the next stored index is {index}"))
            break
        public_key = None
        state = timeline.get(author)
        if state is None:
            failures.append((index, f"author {author[:16]}… is not a registered key"))
        else:
            public_key, valid_from, revoked_at = state
            if index < valid_from:
                failures.append(
                    (index, f"author key {author[:16]}… is not valid before index {valid_from}")
                )
                public_key = None
            elif revoked_at is not None and index > revoked_at:
                failures.append(
                    (index, f"author key {author[:16]}… was revoked at index {revoked_at}")
                )
                public_key = None
        if (kind in CORE_KEY_KINDS or index == 0) and index not in key_entries:
            failures.append((index, "a key entry the keyring did not see"))
        items.append((index, bytes(leaf), public_key, kind, author, bytes(stored_hash), entry_id))
    else:
        if len(rows) < hi - lo:
            failures.append((lo + len(rows), "entry missing"))
    bad, hashes = check_leaves(items, origin, strict)
    return failures + bad, hashes
