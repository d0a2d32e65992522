"""Which key may sign which entry: the key lifecycle as the log's own entries define it.

Pure Python, no Django. The same rules run when an entry is appended (over the keys
the database knows) and when the log is verified (over the keys the entries alone
define), so a verifier needs nothing but the entries.

Core key entries:

``log.genesis`` (index 0 only, signed by the key it registers)
    ``{"origin": str, "key": <descriptor>}``; the descriptor's kind is ``log``.
``key.registered`` (signed by the log key, or by a valid key of the same owner and kind)
    ``{"key": <descriptor>}``
``key.rotated`` (signed by the key it replaces)
    ``{"fingerprint": <old>, "key": <descriptor of the new key>}``; same owner and kind
``key.revoked`` (signed by the log key, the revoked key itself, or another valid key of
the same owner and kind)
    ``{"fingerprint": str, "reason": str}``

Keys of the kinds in ``SELF_MANAGED`` (member, facility, witness, evaluator) are
managed by their owners: an owner's valid key may register, and revoke, the owner's
other keys of the same kind. Service keys are the operator's (the log key's) alone.
A rotation revokes the old key at its own index and makes the new one valid after it.

A descriptor is ``{"fingerprint", "public_key" (base64), "kind", "owner",
"custody", "name"}``. A key registered by the entry at index ``r`` may sign entries
``r + 1`` onward (the log key signs its own genesis at 0); a key revoked by the entry
at index ``x`` may sign nothing after ``x``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace

from ledger.core.envelope import FINGERPRINT_RE, EnvelopeError, key_fingerprint

KEY_KINDS = ("log", "member", "facility", "witness", "evaluator", "service")
CUSTODIES = ("hosted", "external")
CORE_KEY_KINDS = ("log.genesis", "key.registered", "key.rotated", "key.revoked")
SELF_MANAGED = ("member", "facility", "witness", "evaluator")


class KeyringError(ValueError):
    """An entry is signed by a key that may not sign it, or a key entry is invalid."""


@dataclass(frozen=True, slots=True)
class KeyState:
    fingerprint: str
    public_key: bytes
    kind: str
    owner: str
    custody: str
    name: str
    registered_in: int
    valid_from: int
    revoked_at: int | None = None

    def valid_at(self, index: int) -> bool:
        return self.valid_from <= index and (self.revoked_at is None or index <= self.revoked_at)


def read_descriptor(desc) -> dict:
    """Check a key descriptor from a payload; return it with the raw public key added."""
    if not isinstance(desc, dict):
        raise KeyringError("key must be an object")
    fields = {"fingerprint", "public_key", "kind", "owner", "custody", "name"}
    if set(desc) != fields:
        raise KeyringError(f"key must have exactly {', '.join(sorted(fields))}")
    try:
        raw = base64.b64decode(desc["public_key"], validate=True)
    except (binascii.Error, TypeError) as exc:
        raise KeyringError("key.public_key must be base64") from exc
    if len(raw) != 32:
        raise KeyringError("key.public_key must be a 32-byte Ed25519 key")
    if desc["fingerprint"] != key_fingerprint(raw):
        raise KeyringError("key.fingerprint is not the SHA-256 of the public key")
    if desc["kind"] not in KEY_KINDS:
        raise KeyringError(f"key.kind must be one of {', '.join(KEY_KINDS)}")
    if desc["custody"] not in CUSTODIES:
        raise KeyringError(f"key.custody must be one of {', '.join(CUSTODIES)}")
    for field in ("owner", "name"):
        if not isinstance(desc[field], str) or not desc[field] or len(desc[field]) > 200:
            raise KeyringError(f"key.{field} must be a non-empty string of at most 200 characters")
        if not desc[field].isprintable():
            raise KeyringError(f"key.{field} must be printable text")
    if any(c.isspace() or c == "+" for c in desc["name"]):
        raise KeyringError("key.name must not contain spaces or '+'")
    return {**desc, "_raw": raw}


class Keyring:
    """Key states by fingerprint, updated entry by entry in index order."""

    def __init__(self, keys: dict[str, KeyState] | None = None, log_key: str | None = None):
        self.keys: dict[str, KeyState] = dict(keys or {})
        self.log_key = log_key

    def public_key_for(self, author: str, index: int) -> bytes:
        """The public key ``author`` names, if it may sign the entry at ``index``."""
        state = self.keys.get(author)
        if state is None:
            raise KeyringError(f"author {author[:16]}… is not a registered key")
        if not state.valid_at(index):
            if index < state.valid_from:
                raise KeyringError(
                    f"author key {author[:16]}… is not valid before index {state.valid_from}"
                )
            raise KeyringError(f"author key {author[:16]}… was revoked at index {state.revoked_at}")
        return state.public_key

    def admit(self, index: int, kind: str, payload: dict, author: str) -> KeyState | None:
        """Check an entry against the key rules and apply its effect on the keyring.

        Returns the key state the entry created or changed, if any. The author's own
        validity is checked for every entry, core or not.
        """
        if index == 0:
            if kind != "log.genesis":
                raise KeyringError("the entry at index 0 must be log.genesis")
            return self._genesis(payload, author)
        if kind == "log.genesis":
            raise KeyringError("log.genesis may only be the entry at index 0")
        self.public_key_for(author, index)
        if kind == "key.registered":
            return self._registered(index, payload, author)
        if kind == "key.rotated":
            return self._rotated(index, payload, author)
        if kind == "key.revoked":
            return self._revoked(index, payload, author)
        return None

    def _manages(self, author: str, owner: str, kind: str) -> bool:
        """May ``author`` register or revoke a key of ``kind`` held by ``owner``?"""
        if author == self.log_key:
            return True
        state = self.keys.get(author)
        return (
            state is not None
            and kind in SELF_MANAGED
            and (state.owner, state.kind) == (owner, kind)
        )

    def _genesis(self, payload: dict, author: str) -> KeyState:
        if set(payload) != {"origin", "key"} or not isinstance(payload["origin"], str):
            raise KeyringError("log.genesis payload is {origin, key}")
        desc = read_descriptor(payload["key"])
        if desc["kind"] != "log" or desc["custody"] != "hosted":
            raise KeyringError("log.genesis registers a hosted key of kind log")
        if desc["fingerprint"] != author:
            raise KeyringError("log.genesis must be signed by the log key it registers")
        if desc["name"] != payload["origin"]:
            raise KeyringError("the log key's name must be the log's origin")
        state = self._state(desc, registered_in=0, valid_from=0)
        self.keys[state.fingerprint] = state
        self.log_key = state.fingerprint
        return state

    def _registered(self, index: int, payload: dict, author: str) -> KeyState:
        if set(payload) != {"key"}:
            raise KeyringError("key.registered payload is {key}")
        desc = read_descriptor(payload["key"])
        if not self._manages(author, desc["owner"], desc["kind"]):
            raise KeyringError(
                "key.registered must be signed by the log key or by a valid key of the same "
                "owner and kind"
            )
        if desc["kind"] == "log":
            raise KeyringError("there is one log key; it is registered by log.genesis")
        if desc["fingerprint"] in self.keys:
            raise KeyringError(f"key {desc['fingerprint'][:16]}… is already registered")
        state = self._state(desc, registered_in=index, valid_from=index + 1)
        self.keys[state.fingerprint] = state
        return state

    def _revoked(self, index: int, payload: dict, author: str) -> KeyState:
        if set(payload) != {"fingerprint", "reason"} or not isinstance(payload["reason"], str):
            raise KeyringError("key.revoked payload is {fingerprint, reason}")
        fp = payload["fingerprint"]
        if not isinstance(fp, str) or not FINGERPRINT_RE.fullmatch(fp):
            raise KeyringError("key.revoked fingerprint must be 64 lowercase hex digits")
        state = self.keys.get(fp)
        if state is None:
            raise KeyringError(f"key {fp[:16]}… is not registered")
        if state.revoked_at is not None:
            raise KeyringError(f"key {fp[:16]}… was already revoked at index {state.revoked_at}")
        if state.kind == "log":
            raise KeyringError("the log key cannot be revoked by an entry")
        if author != fp and not self._manages(author, state.owner, state.kind):
            raise KeyringError(
                "key.revoked must be signed by the log key, the key itself or another valid "
                "key of the same owner and kind"
            )
        state = replace(state, revoked_at=index)
        self.keys[fp] = state
        return state

    def _rotated(self, index: int, payload: dict, author: str) -> KeyState:
        if set(payload) != {"fingerprint", "key"}:
            raise KeyringError("key.rotated payload is {fingerprint, key}")
        old_fp = payload["fingerprint"]
        old = self.keys.get(old_fp) if isinstance(old_fp, str) else None
        if old is None:
            raise KeyringError("key.rotated names a key that is not registered")
        if author != old_fp:
            raise KeyringError("key.rotated must be signed by the key it replaces")
        if old.kind == "log":
            raise KeyringError("the log key cannot be rotated by an entry")
        if old.kind not in SELF_MANAGED:
            raise KeyringError(
                f"{old.kind} keys are the operator's: registered and revoked by the log key"
            )
        if old.revoked_at is not None:
            raise KeyringError(f"key {old_fp[:16]}… was already revoked at index {old.revoked_at}")
        desc = read_descriptor(payload["key"])
        if (desc["owner"], desc["kind"]) != (old.owner, old.kind):
            raise KeyringError("a rotated key keeps its owner and kind")
        if desc["fingerprint"] in self.keys:
            raise KeyringError(f"key {desc['fingerprint'][:16]}… is already registered")
        # The old key signs its own rotation (it is valid at this index) and nothing after.
        self.keys[old_fp] = replace(old, revoked_at=index)
        state = self._state(desc, registered_in=index, valid_from=index + 1)
        self.keys[state.fingerprint] = state
        return state

    @staticmethod
    def _state(desc: dict, *, registered_in: int, valid_from: int) -> KeyState:
        return KeyState(
            fingerprint=desc["fingerprint"],
            public_key=desc["_raw"],
            kind=desc["kind"],
            owner=desc["owner"],
            custody=desc["custody"],
            name=desc["name"],
            registered_in=registered_in,
            valid_from=valid_from,
        )


def descriptor(*, public_key: bytes, kind: str, owner: str, custody: str, name: str) -> dict:
    """A key descriptor for a key entry's payload."""
    try:
        fp = key_fingerprint(public_key)
    except EnvelopeError as exc:
        raise KeyringError(str(exc)) from exc
    desc = {
        "fingerprint": fp,
        "public_key": base64.b64encode(public_key).decode(),
        "kind": kind,
        "owner": owner,
        "custody": custody,
        "name": name,
    }
    read_descriptor(desc)
    return desc
