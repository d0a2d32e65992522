"""Entry envelopes, their signatures and the leaf bytes that enter the Merkle tree.

Pure Python (PyNaCl, and ``rfc8785`` to produce canonical bytes, imported only when
needed: a verifier of ordinary entries runs with PyNaCl alone), no Django. The
byte format is specified in ``docs/ledger-format.md``; this module is its reference.

An *envelope* is what the author signs::

    {"author": <key fingerprint>, "id": <entry id>, "kind": <dotted kind>,
     "payload": {...}, "time": <RFC 3339 UTC>}

canonicalised with RFC 8785 (JCS). The author signs
``ENTRY_CONTEXT || origin || "\n" || envelope``, where ``origin`` is the log's origin:
an envelope signed for one log does not verify on another.
The *leaf* is what the log stores and hashes: the JCS object::

    {"entry": <envelope>, "index": <n>, "integrated_time": <RFC 3339 UTC>,
     "signature": <base64 Ed25519 signature>}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

# Domain separation: a signature over an envelope can never be replayed as a
# signature over a checkpoint, a download token or any other message; the origin line
# that follows it binds the signature to one log (format v2; v1 signed no origin and is
# not accepted anywhere).
ENTRY_CONTEXT = b"consortium-ledger/entry/v2\n"
MAX_ORIGIN = 200

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32
# The largest leaf: C2SP tlog-tiles entry bundles prefix each leaf with its length as a
# big-endian uint16. The largest envelope is what fits such a leaf at index 0; whether a
# leaf fits is decided when the log knows its index (``leaf_size``).
MAX_LEAF_BYTES = 0xFFFF

ENVELOPE_FIELDS = ("author", "id", "kind", "payload", "time")
LEAF_FIELDS = ("entry", "index", "integrated_time", "signature")

KIND_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
FINGERPRINT_RE = re.compile(r"[0-9a-f]{64}")
TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
# Non-ASCII bytes whose characters JCS (UTF-16 order) and Python (code point order)
# may sort differently; leaves holding them take the slow canonical check.
_ORDER_SENSITIVE = re.compile(rb"[\xee-\xff]")


class EnvelopeError(ValueError):
    """An envelope or leaf is malformed. The message says which field and why."""


class EnvelopeTooLarge(EnvelopeError):
    """An envelope whose leaf could not fit in ``MAX_LEAF_BYTES`` at any index."""


def key_fingerprint(public_key: bytes) -> str:
    """How an envelope names its author: lowercase hex SHA-256 of the raw public key."""
    if len(public_key) != 32:
        raise EnvelopeError("an Ed25519 public key is 32 bytes")
    return hashlib.sha256(public_key).hexdigest()


def format_time(dt: datetime) -> str:
    """RFC 3339 UTC with microseconds, the form the log writes."""
    if dt.tzinfo is None:
        raise EnvelopeError("times must be timezone-aware")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str, what: str = "time") -> datetime:
    if not isinstance(value, str) or not TIME_RE.fullmatch(value):
        raise EnvelopeError(f"{what} must be RFC 3339 UTC, like 2026-01-31T12:00:00Z")
    try:
        return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
    except ValueError as exc:
        raise EnvelopeError(f"{what} is not a valid date and time") from exc


def check_value(value, path: str = "payload", depth: int = 0) -> None:
    """Allow only what canonicalises the same everywhere: no floats, safe integers."""
    if depth > MAX_DEPTH:
        raise EnvelopeError(f"{path} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        # U+0000 ends strings in C and cannot be stored by PostgreSQL: refused everywhere.
        if "\x00" in value:
            raise EnvelopeError(f"{path} contains U+0000")
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise EnvelopeError(f"{path} is outside ±(2^53-1); write large numbers as strings")
        return
    if isinstance(value, float):
        raise EnvelopeError(f"{path} is a floating-point number; write decimals as strings")
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_value(item, f"{path}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EnvelopeError(f"{path} has a key that is not a string")
            if "\x00" in key:
                raise EnvelopeError(f"{path} has a key that contains U+0000")
            check_value(item, f"{path}.{key}", depth + 1)
        return
    raise EnvelopeError(f"{path} has a value of type {type(value).__name__}, not JSON")


def canonical(value) -> bytes:
    """RFC 8785 canonical JSON bytes."""
    import rfc8785  # only to produce canonical bytes: verifiers need it only for floats

    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError, TypeError) as exc:
        raise EnvelopeError(f"cannot canonicalise: {exc}") from exc


def check_envelope(env: dict, *, check_payload: bool = True) -> dict:
    """Validate an envelope's shape and field formats; return it.

    ``check_payload=False`` skips the walk over the payload's values (the append
    policy: no floats, safe integers), which verification of stored leaves need not
    repeat: the signature and the canonical form already pin the bytes.
    """
    if not isinstance(env, dict):
        raise EnvelopeError("an envelope is a JSON object")
    missing = [f for f in ENVELOPE_FIELDS if f not in env]
    extra = sorted(set(env) - set(ENVELOPE_FIELDS))
    if missing:
        raise EnvelopeError(f"envelope is missing {', '.join(missing)}")
    if extra:
        raise EnvelopeError(f"envelope has unknown fields: {', '.join(extra)}")
    if (
        not isinstance(env["kind"], str)
        or not KIND_RE.fullmatch(env["kind"])
        or len(env["kind"]) > 64
    ):
        raise EnvelopeError("kind must be dotted lowercase words, like agreement.signed")
    if not isinstance(env["id"], str) or not ID_RE.fullmatch(env["id"]):
        raise EnvelopeError("id must be 1-128 characters of letters, digits and . _ : -")
    if not isinstance(env["author"], str) or not FINGERPRINT_RE.fullmatch(env["author"]):
        raise EnvelopeError("author must be a key fingerprint (64 lowercase hex digits)")
    parse_time(env["time"])
    if not isinstance(env["payload"], dict):
        raise EnvelopeError("payload must be a JSON object")
    if check_payload:
        check_value(env["payload"])
    return env


def new_envelope(
    *,
    kind: str,
    payload: dict,
    author: str,
    entry_id: str | None = None,
    time: datetime | None = None,
) -> dict:
    env = {
        "author": author,
        "id": entry_id or str(uuid.uuid4()),
        "kind": kind,
        "payload": payload,
        "time": format_time(time or datetime.now(UTC)),
    }
    return check_envelope(env)


def check_origin(origin) -> str:
    """A log's origin as the format allows it: the log key's name (printable, at most 200
    characters, no whitespace, no '+')."""
    if (
        not isinstance(origin, str)
        or not origin
        or len(origin) > MAX_ORIGIN
        or not origin.isprintable()
        or any(c.isspace() or c == "+" for c in origin)
    ):
        raise EnvelopeError(
            "the log's origin must be 1-200 printable characters without spaces or '+'"
        )
    return origin


def entry_context(origin: str) -> bytes:
    """What precedes the envelope bytes in the signed message: the context line and the
    log's origin line."""
    return ENTRY_CONTEXT + check_origin(origin).encode() + b"\n"


def signing_message(envelope_bytes: bytes, origin: str) -> bytes:
    """``ENTRY_CONTEXT || origin || 0x0A || envelope bytes``."""
    return entry_context(origin) + envelope_bytes


@dataclass(frozen=True, slots=True)
class SignedEnvelope:
    """An envelope, its exact canonical bytes and the author's signature over them, for
    the log ``origin`` (``None`` when not known: the log checks what it is told)."""

    envelope: dict
    envelope_bytes: bytes
    signature: bytes
    origin: str | None = None

    @property
    def entry_id(self) -> str:
        return self.envelope["id"]

    @property
    def kind(self) -> str:
        return self.envelope["kind"]

    @property
    def author(self) -> str:
        return self.envelope["author"]


def sign_envelope(envelope: dict, signing_key, origin: str) -> SignedEnvelope:
    """Canonicalise and sign for the log ``origin``; ``signing_key`` is a
    ``nacl.signing.SigningKey``."""
    check_envelope(envelope)
    if envelope["author"] != key_fingerprint(bytes(signing_key.verify_key)):
        raise EnvelopeError("the envelope's author is not the signing key")
    data = canonical(envelope)
    check_envelope_size(data)
    signature = signing_key.sign(signing_message(data, origin)).signature
    return SignedEnvelope(envelope, data, signature, origin)


def decode_signature(text: str) -> bytes:
    if not isinstance(text, str) or len(text) != 88:
        raise EnvelopeError("signature must be the base64 of 64 bytes")
    try:
        sig = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise EnvelopeError("signature must be the base64 of 64 bytes") from exc
    if len(sig) != 64:
        raise EnvelopeError("signature must be the base64 of 64 bytes")
    return sig


def build_leaf(envelope_bytes: bytes, index: int, integrated_time: str, signature: bytes) -> bytes:
    """The leaf bytes: JCS of {entry, index, integrated_time, signature}.

    Built by concatenation: the envelope is already canonical and the other members
    are an integer and two strings that JCS writes verbatim, with keys in JCS order.
    """
    return b"".join(
        (
            b'{"entry":',
            envelope_bytes,
            b',"index":',
            str(index).encode(),
            b',"integrated_time":"',
            integrated_time.encode(),
            b'","signature":"',
            base64.b64encode(signature),
            b'"}',
        )
    )


def leaf_size(envelope_size: int, index: int) -> int:
    """The size of the leaf of an envelope of ``envelope_size`` bytes at ``index``."""
    return envelope_size + len(build_leaf(b"", index, "0000-00-00T00:00:00.000000Z", bytes(64)))


MAX_ENVELOPE_BYTES = MAX_LEAF_BYTES - leaf_size(0, 0)  # 65,364


def check_envelope_size(data: bytes) -> None:
    """Refuse canonical envelope bytes whose leaf could not fit ``MAX_LEAF_BYTES``."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeTooLarge(
            f"the envelope is {len(data)} bytes; an envelope is at most {MAX_ENVELOPE_BYTES} "
            f"bytes, so that its leaf fits the {MAX_LEAF_BYTES} bytes a C2SP tlog-tiles entry "
            "bundle holds"
        )


@dataclass(frozen=True, slots=True)
class Leaf:
    envelope: dict
    envelope_bytes: bytes
    index: int
    integrated_time: str
    signature: bytes


def _fast_canonical(value) -> bytes:
    # Equal to JCS for values without floats whose keys sort the same by UTF-16 code
    # units as by code points; callers guarantee both.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def is_canonical(data: bytes, value, *, has_floats: bool = False) -> bool:
    # The fast check is only valid without floats (Python writes 1.0, 1e+20, NaN).
    if not has_floats and _ORDER_SENSITIVE.search(data) is None:
        try:
            return _fast_canonical(value) == data
        except (ValueError, RecursionError):
            return False
    import rfc8785

    try:
        return rfc8785.dumps(value) == data
    except (rfc8785.CanonicalizationError, ValueError, TypeError, RecursionError):
        return False


def parse_leaf(leaf: bytes, *, check_payload: bool = True) -> Leaf:
    """Read and check leaf bytes: structure, field formats, canonical form.

    Does not check the signature (see :func:`verify_leaf_signature`).
    """
    floats = []

    def _float(text: str) -> float:
        floats.append(text)
        return float(text)

    try:
        obj = json.loads(leaf, parse_float=_float, parse_constant=_float)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise EnvelopeError(f"leaf is not JSON: {type(exc).__name__}: {str(exc)[:100]}") from exc
    if not isinstance(obj, dict) or tuple(sorted(obj)) != LEAF_FIELDS:
        raise EnvelopeError("leaf must have exactly entry, index, integrated_time, signature")
    index = obj["index"]
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= MAX_SAFE_INTEGER:
        raise EnvelopeError("leaf index must be a non-negative integer")
    parse_time(obj["integrated_time"], "integrated_time")
    signature = decode_signature(obj["signature"])
    env = check_envelope(obj["entry"], check_payload=check_payload)
    # The envelope sits between the fixed prefix and the last ',"index":'; nothing
    # after that point can contain the sequence, since it is an integer and two strings.
    end = leaf.rfind(b',"index":')
    envelope_bytes = leaf[len(b'{"entry":') : end]
    if not leaf.startswith(b'{"entry":') or not is_canonical(leaf, obj, has_floats=bool(floats)):
        raise EnvelopeError("leaf is not in RFC 8785 canonical form")
    return Leaf(env, envelope_bytes, index, obj["integrated_time"], signature)


def verify_leaf_signature(leaf: Leaf, public_key: bytes, origin: str) -> bool:
    """Does the leaf's signature verify under ``public_key`` for the log ``origin``?"""
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    try:
        VerifyKey(public_key).verify(signing_message(leaf.envelope_bytes, origin), leaf.signature)
    except BadSignatureError:
        return False
    return True
