"""The log's keys, as an export's key history shows them: the genesis key, then the key
each ``log.key_rotated`` entry brings (signed by the key it replaces and by itself).

The verifier key given on the command line must be one of them: any key of the chain
vouches for the others, since every link is signed by both of its keys. Each checkpoint
is then checked under the log key for its size (``docs/ledger-format.md`` section 7):
the key valid at index ``size``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.audit.bundle import Bundle, BundleError, base64_value, non_negative
from ledger.core.envelope import EnvelopeError, parse_leaf, verify_leaf_signature
from ledger.core.keyring import LOG_ROTATION, Keyring, KeyringError, read_log_key_rotation
from ledger.core.leafcheck import HEAD
from ledger.core.note import Verifier, parse_verifier_key, verifier_key


@dataclass(frozen=True)
class LogKey:
    verifier: Verifier
    first: int  # the first index it signs, and the smallest checkpoint size
    last: int | None  # the last index it signs (its rotation), or None for the current key


@dataclass(frozen=True)
class LogKeys:
    keys: tuple[LogKey, ...]

    @property
    def origin(self) -> str:
        return self.keys[0].verifier.name

    @property
    def genesis(self) -> Verifier:
        return self.keys[0].verifier

    def verifiers(self) -> list[Verifier]:
        return [k.verifier for k in self.keys]

    def for_size(self, size: int) -> Verifier:
        """The key that signs the checkpoint of ``size`` entries."""
        for k in self.keys:
            if k.first <= size and (k.last is None or size <= k.last):
                return k.verifier
        return self.keys[-1].verifier  # not reached: the last key has no end

    def describe(self) -> str:
        if len(self.keys) == 1:
            return "one log key, the genesis key"
        spans = ", ".join(
            f"{k.verifier.name}+{k.verifier.key_id.hex()} from index {k.first:,}" for k in self.keys
        )
        return f"{len(self.keys)} log keys, each rotation signed by both keys: {spans}"


def log_keys(bundle: Bundle, pinned: Verifier) -> LogKeys:
    """Follow the log key from the genesis in ``keys.jsonl``; the pinned key must be one
    of the keys found. Inclusion in the anchor checkpoint is checked with the other key
    entries (``ledger.audit.keys``)."""
    if not bundle.has("keys.jsonl"):
        raise BundleError("keys.jsonl: missing")
    chain: list[LogKey] = []
    current: bytes = b""
    for number, item in bundle.json_lines("keys.jsonl"):
        index = non_negative(item.get("index"), f"keys.jsonl line {number} index")
        leaf_bytes = base64_value(item.get("leaf"), f"keys.jsonl line {number} leaf")
        if index == 0:
            current = _genesis(leaf_bytes, pinned.name)
            chain.append(LogKey(_verifier(pinned.name, current), 0, None))
        elif chain and _kind(leaf_bytes) == LOG_ROTATION:
            try:
                vkey = read_log_key_rotation(leaf_bytes, pinned.name, current)
            except KeyringError as exc:
                raise BundleError(f"keys.jsonl line {number} (index {index}): {exc}") from exc
            old = chain.pop()
            chain += [LogKey(old.verifier, old.first, index), _link(vkey, index + 1)]
            current = chain[-1].verifier.public_key
    if not chain:
        raise BundleError("keys.jsonl: the log's genesis (index 0) is missing")
    if all(k.verifier.public_key != pinned.public_key for k in chain):
        raise BundleError(
            "the verifier key is not a log key of this log: neither the genesis key nor one "
            "a log.key_rotated entry brings"
        )
    return LogKeys(tuple(chain))


def _genesis(leaf_bytes: bytes, origin: str) -> bytes:
    """The genesis key's public key, from its self-signed entry for ``origin``."""
    try:
        leaf = parse_leaf(leaf_bytes)
        env = leaf.envelope
        keyring = Keyring()
        keyring.admit(0, env["kind"], env["payload"], env["author"])
    except (EnvelopeError, KeyringError) as exc:
        raise BundleError(f"keys.jsonl: the genesis: {exc}") from exc
    if keyring.origin != origin:
        raise BundleError(
            f"the genesis is for the log {keyring.origin!r}, the verifier key for {origin!r}"
        )
    public_key = keyring.keys[keyring.log_key].public_key
    if not verify_leaf_signature(leaf, public_key, origin):
        raise BundleError("keys.jsonl: the genesis is not signed by the key it registers")
    return public_key


def _verifier(origin: str, public_key: bytes) -> Verifier:
    return parse_verifier_key(verifier_key(origin, public_key))


def _link(vkey: str, first: int) -> LogKey:
    return LogKey(parse_verifier_key(vkey), first, None)


def _kind(leaf_bytes: bytes) -> str | None:
    head = HEAD.match(leaf_bytes)
    return head.group(3).decode() if head else None
