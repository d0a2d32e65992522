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
``log.key_rotated`` (signed by the current log key)
    ``{"fingerprint": <old log key>, "key": <descriptor of the new log key>,
    "signature": <base64 Ed25519 signature by the new key over
    rotation_message(origin, old, new)>}``: both keys sign the rotation. The old log key
    signs nothing after it; the new one signs from the next index, and every checkpoint
    whose tree holds the rotation (see :meth:`Keyring.log_key_for_size`).

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
import json
from dataclasses import dataclass, replace

from ledger.core.envelope import (
    FINGERPRINT_RE,
    EnvelopeError,
    check_envelope,
    check_origin,
    decode_signature,
    key_fingerprint,
    signing_message,
)

KEY_KINDS = ("log", "member", "facility", "witness", "evaluator", "service")
CUSTODIES = ("hosted", "external")
CORE_KEY_KINDS = ("log.genesis", "key.registered", "key.rotated", "key.revoked", "log.key_rotated")
LOG_ROTATION = "log.key_rotated"
# What the new log key signs to accept its place: the context line, then the origin, the
# old and the new key's fingerprints, each on its own line.
ROTATION_CONTEXT = b"consortium-ledger/log-key-rotation/v1\n"
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

    @property
    def origin(self) -> str | None:
        """The log's origin: the log key's name (every log key has the genesis origin)."""
        state = self.keys.get(self.log_key) if self.log_key else None
        return state.name if state else None

    def log_keys(self) -> list[KeyState]:
        """Every log key, the genesis key first, in the order of the rotations."""
        return sorted(
            (k for k in self.keys.values() if k.kind == "log"), key=lambda k: k.valid_from
        )

    def log_key_for_size(self, size: int) -> KeyState | None:
        """The log key that signs the checkpoint of ``size`` entries: the key valid at
        index ``size``, the one the tree's own entries have made the log key. A rotation
        at index x is in every tree of more than x entries: those are the new key's."""
        for state in self.log_keys():
            if state.valid_at(size):
                return state
        return None

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
        if kind == LOG_ROTATION:
            return self._log_rotated(index, payload, author)
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
            raise KeyringError(f"the log key is rotated by {LOG_ROTATION}, not key.rotated")
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

    def _log_rotated(self, index: int, payload: dict, author: str) -> KeyState:
        old = self.keys.get(self.log_key) if self.log_key else None
        if old is None or author != old.fingerprint:
            raise KeyringError(f"{LOG_ROTATION} must be signed by the current log key")
        desc = check_rotation_payload(payload, origin=old.name, old_fingerprint=old.fingerprint)
        if desc["owner"] != old.owner:
            raise KeyringError("a rotated log key keeps its owner")
        if desc["fingerprint"] in self.keys:
            raise KeyringError(f"key {desc['fingerprint'][:16]}… is already registered")
        self.keys[old.fingerprint] = replace(old, revoked_at=index)
        state = self._state(desc, registered_in=index, valid_from=index + 1)
        self.keys[state.fingerprint] = state
        self.log_key = state.fingerprint
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


def rotation_message(origin: str, old_fingerprint: str, new_fingerprint: str) -> bytes:
    """What the new log key signs in a ``log.key_rotated`` payload."""
    return ROTATION_CONTEXT + f"{origin}\n{old_fingerprint}\n{new_fingerprint}\n".encode()


def check_rotation_payload(payload, *, origin: str, old_fingerprint: str) -> dict:
    """Check a ``log.key_rotated`` payload for the log ``origin`` whose log key is
    ``old_fingerprint``, the new key's signature included; return the new descriptor
    (with its raw public key)."""
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    if not isinstance(payload, dict) or set(payload) != {"fingerprint", "key", "signature"}:
        raise KeyringError(f"{LOG_ROTATION} payload is {{fingerprint, key, signature}}")
    if payload["fingerprint"] != old_fingerprint:
        raise KeyringError(f"{LOG_ROTATION} must name the current log key as the one it replaces")
    desc = read_descriptor(payload["key"])
    if desc["kind"] != "log" or desc["custody"] != "hosted":
        raise KeyringError(f"{LOG_ROTATION} registers a hosted key of kind log")
    if desc["name"] != origin:
        raise KeyringError("the log key's name must be the log's origin")
    if desc["fingerprint"] == old_fingerprint:
        raise KeyringError(f"{LOG_ROTATION} must bring a new key")
    try:
        signature = decode_signature(payload["signature"])
        VerifyKey(desc["_raw"]).verify(
            rotation_message(origin, old_fingerprint, desc["fingerprint"]), signature
        )
    except (EnvelopeError, BadSignatureError) as exc:
        raise KeyringError(
            f"{LOG_ROTATION}: the new key's signature over the rotation does not verify"
        ) from exc
    return desc


def _unique_members(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise KeyringError("the leaf repeats a JSON member")
    return obj


def read_log_key_rotation(leaf_bytes: bytes, origin: str, old_public_key: bytes) -> str:
    """The new log verifier key (``name+hex8+base64``) a ``log.key_rotated`` leaf
    introduces, after checking both signatures: the envelope's by the old log key
    ``old_public_key`` (for the log ``origin``) and the new key's over the rotation.

    For witnesses and mirrors that follow a log's key: the standard library and PyNaCl
    alone. Raises :class:`KeyringError` for anything else than a valid rotation of that
    key.
    """
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    from ledger.core.note import verifier_key

    try:
        check_origin(origin)
        old_fp = key_fingerprint(bytes(old_public_key))
        if not leaf_bytes.startswith(b'{"entry":'):
            raise KeyringError("not a leaf")
        envelope_bytes = leaf_bytes[9 : leaf_bytes.rfind(b',"index":')]
        leaf = json.loads(leaf_bytes, object_pairs_hook=_unique_members)
        envelope = json.loads(envelope_bytes, object_pairs_hook=_unique_members)
        if not isinstance(leaf, dict) or leaf.get("entry") != envelope:
            raise KeyringError("the leaf's envelope is not where the leaf layout puts it")
        check_envelope(envelope)
        if envelope["kind"] != LOG_ROTATION:
            raise KeyringError(f"the leaf is a {envelope['kind']} entry, not {LOG_ROTATION}")
        if envelope["author"] != old_fp:
            raise KeyringError(f"the {LOG_ROTATION} entry is not signed by that log key")
        signature = decode_signature(leaf.get("signature"))
        VerifyKey(bytes(old_public_key)).verify(signing_message(envelope_bytes, origin), signature)
        desc = check_rotation_payload(envelope["payload"], origin=origin, old_fingerprint=old_fp)
    except BadSignatureError as exc:
        raise KeyringError("the old log key's signature over the entry does not verify") from exc
    except (EnvelopeError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        if isinstance(exc, KeyringError):
            raise
        raise KeyringError(f"not a valid {LOG_ROTATION} leaf: {exc}") from exc
    return verifier_key(origin, desc["_raw"])
