"""Check 5. A contiguous export (a range): the tree rebuilt from the entries, on the
hashes of the subtrees before it, has the signed root at every checkpoint size in range
and is a prefix of the anchor checkpoint. A selection: every entry is included in the
anchor checkpoint.

Both take the entries' places from ``entries.jsonl`` as it is read, and their leaf hashes
in index order, a batch at a time, from the leaf checks.
"""

from __future__ import annotations

import json

from ledger.audit.bundle import ENTRIES, Bundle, BundleError, Description, hash_list
from ledger.audit.result import Result
from ledger.core import merkle


def frontier(bundle: Bundle, first: int) -> merkle.TreeBuilder:
    """A tree builder at size ``first``, on the subtree hashes of ``frontier.json``."""
    if first == 0:
        return merkle.TreeBuilder()
    try:
        data = json.loads(bundle.read("frontier.json"))
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise BundleError(f"frontier.json: missing or not JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("size") != first:
        raise BundleError(f"frontier.json is not the frontier at size {first}")
    hashes = hash_list(data.get("hashes"), "frontier.json hashes")
    if len(hashes) != len(merkle.root_indexes(first)):
        raise BundleError(
            f"frontier.json holds {len(hashes)} hashes; size {first} has "
            f"{len(merkle.root_indexes(first))}"
        )
    return merkle.TreeBuilder.resume(first, hashes)


class RangeTree:
    """A contiguous export: rebuild the tree and compare it with every checkpoint."""

    def __init__(self, builder, roots: dict[int, bytes], plan: Description, result: Result):
        self.builder, self.roots, self.result = builder, roots, result
        self.first, self.end = plan.first, plan.end
        self.matched = 0

    def index_of(self, number: int, said: int | None) -> int:
        """The index the entry on line ``number`` must have; ``said`` is the one its
        leaf gives."""
        index = self.first + number - 1
        if said is not None and said != index:
            self.result.fail(
                f"{ENTRIES} line {number}: the entry at index {said} stands "
                f"where index {index} belongs (an entry dropped, added or "
                f"moved)",
                "entries out of place",
            )
        return index

    def hashes(self, batch, hashes: bytes) -> None:
        for i in range(len(batch)):
            self.builder.push(hashes[32 * i : 32 * i + 32])
            size = self.builder.size
            if size in self.roots:
                if self.builder.root() != self.roots[size]:
                    self.result.fail(
                        f"checkpoint at size {size:,}: the tree rebuilt from the "
                        f"entries does not have its root"
                    )
                else:
                    self.matched += 1

    def finish(self, count, total, end_proofs, anchor, roots) -> None:
        if count != total:
            self.result.fail(
                f"{ENTRIES} holds {count:,} entries; indexes {self.first:,} to "
                f"{self.end:,} are {total:,}"
            )
            return
        if self.end in roots:
            if self.matched:
                self.result.checks.append(
                    f"the tree rebuilt from the entries has the signed "
                    f"root at {self.matched} checkpoint sizes"
                )
            return
        proof = end_proofs.get(anchor)
        if proof is None:
            self.result.fail(
                f"consistency.jsonl: no proof from the export's end {self.end:,} "
                f"to the anchor {anchor:,}"
            )
            return
        try:
            merkle.verify_consistency(self.end, anchor, self.builder.root(), roots[anchor], proof)
        except merkle.ProofError as exc:
            self.result.fail(
                f"the entries up to {self.end:,} are not a prefix of the signed "
                f"tree of size {anchor:,} ({exc})"
            )
            return
        self.result.checks.append(
            f"the tree rebuilt from the entries has the signed root at "
            f"{self.matched} checkpoint sizes and is a prefix of the "
            f"anchor ({anchor:,})"
        )


class Selection:
    """Selected entries: each proven included in the anchor checkpoint."""

    def __init__(self, bundle: Bundle, root: bytes, plan: Description, result: Result):
        self.anchor, self.root, self.result = plan.anchor, root, result
        self.first, self.end = plan.first, plan.end
        self.proofs = (
            bundle.json_lines("inclusion.jsonl") if bundle.has("inclusion.jsonl") else None
        )
        if self.proofs is None:
            raise BundleError("inclusion.jsonl: missing")
        self.last = -1
        self.indexes: list[int] = []
        self.bad = 0

    def index_of(self, number: int, said: int | None) -> int:
        """The index the entry on line ``number`` gives (-1 if none); selected entries
        come in index order, within the export's range."""
        index = said if said is not None else -1
        if index <= self.last or not self.first <= index < self.end:
            self.result.fail(
                f"{ENTRIES} line {number}: index {index} is out of order or out of "
                f"the export's range",
                "entries out of place",
            )
        self.last = max(self.last, index)
        self.indexes.append(index)
        return index

    def hashes(self, batch, hashes: bytes) -> None:
        for i, (index, _, _) in enumerate(batch):
            try:
                number, item = next(self.proofs)
            except StopIteration:
                raise BundleError("inclusion.jsonl holds fewer proofs than entries") from None
            if item.get("index") != index:
                raise BundleError(f"inclusion.jsonl line {number} is not the proof for {index}")
            proof = hash_list(item.get("proof"), f"inclusion.jsonl line {number} proof")
            try:
                merkle.verify_inclusion(
                    index, self.anchor, hashes[32 * i : 32 * i + 32], proof, self.root
                )
            except merkle.ProofError as exc:
                self.bad += 1
                self.result.fail(
                    f"entry {index}: not included in the anchor checkpoint ({exc})", "inclusion"
                )

    def finish(self, count, total, end_proofs, anchor, roots) -> None:
        if count != total:
            self.result.fail(f"{ENTRIES} holds {count:,} entries; export.json says {total:,}")
        if next(self.proofs, None) is not None:
            self.result.fail("inclusion.jsonl holds more proofs than entries")
        if not self.bad:
            self.result.checks.append(
                f"{count:,} selected entries, each included in the anchor checkpoint ({anchor:,})"
            )
