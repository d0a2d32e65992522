"""Re-ingesting entries the database lost (a restored old backup), byte for byte.

The source is a copy of the log made elsewhere: an audit export of a range
(``docs/audit-export.md``; its zip or its unzipped directory) or a witness mirror's copy
(``python -m ledger.witness export``: ``entries.jsonl``, ``checkpoint.note``,
``copy.json``). Both hold the exact leaf bytes, one a line, in index order: the envelope,
its index, its integration time and the author's signature. So the entries come back
verbatim at their indexes; nothing is signed again.

Every entry the database already holds must be the same bytes (a difference is fork
evidence, and nothing is written). Every new entry is checked as ``ledger verify`` checks
a stored one (``ledger.core.leafcheck``: the leaf layout, its index, the signature by the
key valid at that index, under the keyring rules replayed on the way), hashed into the
tree, written with its stored hashes, and its kind's applier run (the projections).

All or nothing: one transaction under the log's sequence lock. Before it commits, the
database must no longer be behind the published checkpoint (``ledger.published``): the
tree at the published size has the published root, under the note the log key signed.
"""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.db import connection, transaction

from ledger import log, published
from ledger.core import merkle
from ledger.core.envelope import entry_context
from ledger.core.keyring import KeyringError
from ledger.core.leafcheck import HEAD, check_leaf
from ledger.errors import LedgerError
from ledger.models import Key
from ledger.proofs import ENTRY_T

BATCH = 5000  # entries compared, or written, at a time


class IngestError(LedgerError):
    """The source cannot be ingested; the message says why (nothing was written)."""


@dataclass
class Ingested:
    before: int  # the tree size before
    size: int  # the tree size after
    present: int  # the source's entries the database already held (identical)

    @property
    def added(self) -> int:
        return self.size - self.before


@dataclass
class Source:
    first: int  # the index of the source's first entry
    lines: Iterator[bytes]  # leaf bytes, one per entry, in index order
    describe: str


@contextmanager
def open_source(location: str | Path) -> Iterator[Source]:
    """An audit export (zip or directory) or a witness's copy (directory)."""
    p = Path(location)
    if p.is_file() and zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            names = set(z.namelist())
            if "export.json" not in names or "entries.jsonl" not in names:
                raise IngestError(f"{p}: not an audit export (no export.json or entries.jsonl)")
            first = _first_of_export(json.loads(z.read("export.json")), p)
            with z.open("entries.jsonl") as f:
                yield Source(first, _lines(f), f"the audit export {p.name}")
        return
    if p.is_dir():
        if (p / "copy.json").is_file():
            meta, first, what = json.loads((p / "copy.json").read_text()), 0, "the log copy"
            if not str(meta.get("format", "")).startswith("consortium-ledger/log-copy/"):
                raise IngestError(f"{p}/copy.json: not a log copy ({meta.get('format')!r})")
        elif (p / "export.json").is_file():
            first = _first_of_export(json.loads((p / "export.json").read_text()), p)
            what = "the audit export"
        else:
            raise IngestError(f"{p}: neither a log copy (copy.json) nor an export (export.json)")
        if not (p / "entries.jsonl").is_file():
            raise IngestError(f"{p}: no entries.jsonl")
        with open(p / "entries.jsonl", "rb") as f:
            yield Source(first, _lines(f), f"{what} {p.name}")
        return
    raise IngestError(f"{p}: no such audit export (.zip or directory) or log copy (directory)")


def _first_of_export(meta: dict, p: Path) -> int:
    if meta.get("mode") != "range":
        raise IngestError(
            f"{p}: a member's selection leaves entries out; ingest a range export (mode range)"
        )
    first = meta.get("first")
    if not isinstance(first, int) or first < 0:
        raise IngestError(f"{p}: export.json has no valid first index")
    return first


def _lines(f) -> Iterator[bytes]:
    for line in f:
        if not line.endswith(b"\n"):
            raise IngestError("entries.jsonl ends in the middle of a line")
        yield line[:-1]


def ingest(location: str | Path, *, progress: Callable[[int], None] | None = None) -> Ingested:
    """Append the source's entries the database lacks, verbatim, in one transaction."""
    with open_source(location) as source, transaction.atomic(durable=True):
        return _ingest(source, progress or (lambda n: None))


def _ingest(source: Source, progress: Callable[[int], None]) -> Ingested:
    authors = set(Key.objects.values_list("fingerprint", flat=True))
    # The sequence lock, the head, and every registered key's state.
    size, frontier, keyring, _ = log._read_head_and_keys(authors)
    if source.first > size:
        raise IngestError(
            f"{source.describe} starts at index {source.first:,} but the database holds "
            f"{size:,} entries: entries {size:,} to {source.first - 1:,} are in neither"
        )
    index = source.first
    present = 0
    builder = merkle.TreeBuilder.resume(size, frontier)
    head_was = (size, frontier)
    pending: list[tuple[int, bytes]] = []
    for leaf in source.lines:
        pending.append((index, leaf))
        index += 1
        if len(pending) == BATCH:
            present += _take(pending, size, keyring, builder, head_was)
            head_was = (builder.size, builder.frontier())
            progress(len(pending))
            pending = []
    if pending:
        present += _take(pending, size, keyring, builder, head_was)
        progress(len(pending))
    reason = published.behind_published(builder.size)
    if reason is not None:
        raise IngestError(f"nothing was ingested: after {source.describe}, {reason}")
    return Ingested(before=size, size=builder.size, present=present)


def _take(batch, size, keyring, builder, head_was) -> int:
    """Compare the batch's entries the database holds; check and write the others."""
    held = [(i, leaf) for i, leaf in batch if i < size]
    if held:
        _compare(held)
    fresh = [(i, leaf) for i, leaf in batch if i >= size]
    if not fresh:
        return len(held)
    context = entry_context(keyring.origin)
    keys: dict = {}
    entry_rows, hash_rows, appended = [], [], []
    for i, leaf in fresh:
        head = HEAD.match(leaf)
        if head is None:
            raise IngestError(f"entry {i:,}: leaf is malformed: it does not have the leaf layout")
        author, entry_id, kind = (g.decode() for g in head.groups())
        try:
            public_key = keyring.public_key_for(author, i) if i > 0 else None
        except KeyringError as exc:
            raise IngestError(f"entry {i:,} ({kind}): {exc}") from exc
        reason = check_leaf(i, leaf, public_key, keys, context)
        doc = json.loads(leaf)
        if reason is None and i == 0:
            # The genesis is signed by the key it registers (the keyring checks it next).
            public_key = _genesis_key(doc)
            reason = check_leaf(i, leaf, public_key, keys, entry_context(_genesis_origin(doc)))
        if reason is not None:
            raise IngestError(f"entry {i:,} ({kind}): {reason}")
        try:
            keyring.admit(i, kind, doc["entry"]["payload"], author)
        except KeyringError as exc:
            raise IngestError(f"entry {i:,} ({kind}): {exc}") from exc
        if i == 0:
            context = entry_context(keyring.origin)
        lh = merkle.leaf_hash(leaf)
        first = merkle.stored_hash_index(0, i)
        hash_rows.extend((first + j, h) for j, h in enumerate(builder.push(lh)))
        entry_rows.append((i, entry_id, kind, author, leaf, lh))
        appended.append(
            log.Appended(
                index=i,
                entry_id=entry_id,
                kind=kind,
                author=author,
                payload=doc["entry"]["payload"],
                time=doc["entry"]["time"],
                integrated_time=doc["integrated_time"],
                leaf_hash=lh,
            )
        )
    head = (builder.size, b"".join(builder.frontier()))
    log._write(entry_rows, hash_rows, head, head_was)
    for entry in appended:
        log.apply(entry)
    return len(held)


def _genesis_key(doc: dict) -> bytes:
    return base64.b64decode(doc["entry"]["payload"]["key"]["public_key"])


def _genesis_origin(doc: dict) -> str:
    return doc["entry"]["payload"]["key"]["name"]


def _compare(held: list[tuple[int, bytes]]) -> None:
    """The database's entries must be the source's, byte for byte."""
    lo, hi = held[0][0], held[-1][0] + 1
    idx = connection.ops.quote_name("index")
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT {idx}, leaf FROM {ENTRY_T} WHERE {idx} >= %s AND {idx} < %s ORDER BY {idx}",
            [lo, hi],
        )
        stored = {i: bytes(leaf) for i, leaf in cur.fetchall()}
    for i, leaf in held:
        ours = stored.get(i)
        if ours != leaf:
            raise IngestError(
                f"FORK EVIDENCE at index {i:,}: the source's entry differs from the "
                f"database's; nothing was ingested.\n  database: {ours!r}\n  source:   {leaf!r}"
            )
