"""Check 3: the key history. Every key entry (``keys.jsonl``) is included in the anchor
checkpoint, and replaying them in index order gives each entry's author key at its
index; the genesis registers the verifier's key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from ledger.audit.bundle import Bundle, BundleError, base64_value, hash_list, non_negative
from ledger.audit.result import Result
from ledger.core import merkle
from ledger.core.envelope import EnvelopeError, parse_leaf, verify_leaf_signature
from ledger.core.keyring import CORE_KEY_KINDS, Keyring, KeyringError
from ledger.core.note import Verifier


@dataclass
class KeyEntry:
    index: int
    leaf_bytes: bytes
    kind: str
    author: str
    payload: dict
    leaf: object


def key_entries(
    bundle: Bundle, anchor: int, root: bytes, end: int, result: Result
) -> dict[int, KeyEntry]:
    """The key entries of ``keys.jsonl`` proven in the anchor checkpoint, by index."""
    keys: dict[int, KeyEntry] = {}
    if not bundle.has("keys.jsonl"):
        raise BundleError("keys.jsonl: missing")
    last = -1
    for number, item in bundle.json_lines("keys.jsonl"):
        index = non_negative(item.get("index"), f"keys.jsonl line {number} index")
        leaf_bytes = base64_value(item.get("leaf"), f"keys.jsonl line {number} leaf")
        proof = hash_list(item.get("proof"), f"keys.jsonl line {number} proof")
        if index <= last:
            raise BundleError(f"keys.jsonl line {number}: indexes must increase")
        last = index
        entry = _key_entry(number, index, leaf_bytes, result)
        if entry is None:
            continue
        try:
            merkle.verify_inclusion(index, anchor, merkle.leaf_hash(leaf_bytes), proof, root)
        except merkle.ProofError as exc:
            result.fail(
                f"keys.jsonl line {number} (index {index}): not in the anchor checkpoint ({exc})"
            )
            continue
        keys[index] = entry
    if 0 not in keys:
        raise BundleError("keys.jsonl: the log's genesis (index 0) is missing")
    result.checks.append(f"{len(keys)} key entries, each included in the anchor checkpoint")
    return keys


def _key_entry(number: int, index: int, leaf_bytes: bytes, result: Result) -> KeyEntry | None:
    """The key entry in a line of ``keys.jsonl``, if its leaf is one at ``index``."""
    try:
        leaf = parse_leaf(leaf_bytes)
    except EnvelopeError as exc:
        result.fail(f"keys.jsonl line {number} (index {index}): {exc}")
        return None
    kind = leaf.envelope["kind"]
    if leaf.index != index or kind not in CORE_KEY_KINDS:
        result.fail(f"keys.jsonl line {number}: not the key entry at index {index}")
        return None
    return KeyEntry(
        index, leaf_bytes, kind, leaf.envelope["author"], leaf.envelope["payload"], leaf
    )


def admit(keyring: Keyring, k: KeyEntry, genesis: Verifier, result: Result) -> None:
    """Replay one key entry on ``keyring``, if its author may sign it and did.
    ``genesis`` is the log's genesis key (``ledger.audit.logkeys``): its name is the
    origin every entry signature covers."""
    origin = genesis.name
    try:
        if k.index == 0:
            keyring.admit(0, k.kind, k.payload, k.author)
            if keyring.keys[keyring.log_key].public_key != genesis.public_key:
                raise KeyringError("the genesis registers another log key than the verifier key")
            public_key = genesis.public_key
        else:
            public_key = keyring.public_key_for(k.author, k.index)
            if not verify_leaf_signature(k.leaf, public_key, origin):
                raise KeyringError("its signature does not verify")
            keyring.admit(k.index, k.kind, k.payload, k.author)
            return
        if not verify_leaf_signature(k.leaf, public_key, origin):
            raise KeyringError("its signature does not verify")
    except KeyringError as exc:
        result.fail(f"key entry at index {k.index} ({k.kind}): {exc}")


class KeyHistory:
    """The keyring as the key entries before the entry being read leave it."""

    def __init__(self, keys: dict[int, KeyEntry], genesis: Verifier, result: Result):
        self.entries = keys
        self.keyring = Keyring()
        self.origin = genesis.name
        self._verifier, self._result = genesis, result
        self._pending: Iterator[int] = iter(sorted(keys))
        self._next = next(self._pending, None)

    def advance(self, to: int) -> None:
        """Admit the key entries before index ``to``."""
        while self._next is not None and self._next < to:
            admit(self.keyring, self.entries[self._next], self._verifier, self._result)
            self._next = next(self._pending, None)

    def report(self) -> None:
        """Name the keys registered, by kind and custody."""
        kinds = Counter((k.kind, k.custody) for k in self.keyring.keys.values())
        if kinds:
            # Which signatures the operator could have made: those of hosted keys.
            self._result.checks.append(
                "keys registered: "
                + ", ".join(
                    f"{n} {kind} ({custody})" for (kind, custody), n in sorted(kinds.items())
                )
            )
