"""C2SP signed notes (Ed25519) and tlog checkpoints.

Pure Python with PyNaCl, no Django. Implements https://c2sp.org/signed-note and
https://c2sp.org/tlog-checkpoint closely enough that any client of the format (for
example Go's ``golang.org/x/mod/sumdb/note``) reads our notes unchanged, and we read theirs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # an em dash and a space start every signature line

_NAME_RE = re.compile(r"[^\s+]+")
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class NoteError(ValueError):
    """A note, key or checkpoint is malformed or its signature does not verify."""


def b64decode_strict(text: str, what: str) -> bytes:
    if not isinstance(text, str) or not _B64_RE.fullmatch(text) or len(text) % 4:
        raise NoteError(f"{what} is not standard base64")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise NoteError(f"{what} is not standard base64") from exc


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def check_name(name: str) -> str:
    if not name or not _NAME_RE.fullmatch(name) or not name.isprintable():
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id of an Ed25519 note key: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    """``name+hex8+base64(0x01 || public key)``: how a verifier key is written."""
    check_name(name)
    if len(public_key) != 32:
        raise NoteError("an Ed25519 public key is 32 bytes")
    kid = key_id(name, public_key).hex()
    return f"{name}+{kid}+{b64(bytes([ALG_ED25519]) + public_key)}"


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: bytes
    public_key: bytes

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            VerifyKey(self.public_key).verify(message, signature)
        except BadSignatureError:
            return False
        return True


def split_verifier_key(vkey: str) -> tuple[str, str, bytes]:
    """The name, the key id (8 lowercase hex digits) and the decoded key (its type byte
    first) of a ``name+hex8+base64`` verifier key; the caller checks the type and that the
    key id matches."""
    parts = vkey.strip().split("+", 2)  # base64 may contain "+"; names may not
    if len(parts) != 3:
        raise NoteError("a verifier key is name+hex8+base64")
    name, kid_hex, key_b64 = parts
    check_name(name)
    if not re.fullmatch(r"[0-9a-f]{8}", kid_hex):
        raise NoteError("the key id of a verifier key is 8 lowercase hex digits")
    return name, kid_hex, b64decode_strict(key_b64, "verifier key")


def parse_verifier_key(vkey: str) -> Verifier:
    name, kid_hex, raw = split_verifier_key(vkey)
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("only Ed25519 verifier keys (algorithm 0x01, 32 bytes) are supported")
    public_key = raw[1:]
    if key_id(name, public_key).hex() != kid_hex:
        raise NoteError("the key id does not match the verifier key's name and key")
    return Verifier(name, bytes.fromhex(kid_hex), public_key)


@dataclass(frozen=True)
class Signer:
    name: str
    signing_key: SigningKey

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def verifier_key(self) -> str:
        return verifier_key(self.name, self.public_key)


def split_signer_key(skey: str) -> tuple[str, str, bytes]:
    """The name, the key id (hex) and the decoded key (its type byte first) of a
    ``PRIVATE+KEY+name+hex8+base64`` signer key; the caller checks the type and that the
    key id matches."""
    parts = skey.strip().split("+", 4)  # base64 may contain "+"; names may not
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise NoteError("a signer key is PRIVATE+KEY+name+hex8+base64")
    name, kid_hex, key_b64 = parts[2:]
    check_name(name)
    return name, kid_hex, b64decode_strict(key_b64, "signer key")


def parse_signer_key(skey: str) -> Signer:
    """Read a ``PRIVATE+KEY+name+hex8+base64(0x01 || seed)`` signer key."""
    name, kid_hex, raw = split_signer_key(skey)
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("only Ed25519 signer keys are supported")
    signer = Signer(name, SigningKey(raw[1:]))
    if signer.key_id.hex() != kid_hex:
        raise NoteError("the key id does not match the signer key")
    return signer


def _refuse_carriage_returns(note: str | bytes) -> None:
    # C2SP signed-note v1.0.0 (https://c2sp.org/signed-note@v1.0.0): a note's lines end
    # in a newline (U+000A) alone, and a note holds no ASCII control character other
    # than newline; Go's note.Open refuses a carriage return too. A note read as text
    # in Python has its CRLF line ends folded into "\n" (universal newlines), so the
    # verifiers read notes as bytes, and a CR anywhere is refused, with where it is.
    cr = "\r" if isinstance(note, str) else b"\r"
    newline = "\n" if isinstance(note, str) else b"\n"
    at = note.find(cr)
    if at >= 0:
        line = note.count(newline, 0, at) + 1
        what = "a CRLF line end" if note[at + 1 : at + 2] == newline else "a carriage return"
        raise NoteError(
            f"line {line} of the note has {what}: a signed note ends every line with a "
            "newline (\\n) alone, never CR or CRLF (C2SP signed-note v1.0.0)"
        )


def note_text(note: str | bytes) -> str:
    """A signed note as text, from the exact bytes (or text) it was given.

    Refuses a carriage return anywhere (before any decoding could hide it) and bytes
    that are not UTF-8 (C2SP signed-note v1.0.0: notes are valid UTF-8).
    """
    if not isinstance(note, str | bytes | bytearray | memoryview):
        raise NoteError("a signed note is text or bytes")
    if not isinstance(note, str):
        note = bytes(note)
    _refuse_carriage_returns(note)
    if isinstance(note, str):
        return note
    try:
        return note.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError(f"a signed note is UTF-8: byte {exc.start} is not") from exc


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("note text must not contain control characters other than newline")


def signature_line(signer: Signer, text: str) -> str:
    _check_text(text)
    sig = signer.signing_key.sign(text.encode()).signature
    return f"{SIG_PREFIX}{signer.name} {b64(signer.key_id + sig)}\n"


def sign_note(text: str, signer: Signer) -> str:
    """The signed note: text, a blank line, one signature line."""
    return text + "\n" + signature_line(signer, text)


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class OpenedNote:
    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]


def split_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note (its bytes, or text) into its text and its (not yet verified)
    signatures."""
    note = note_text(note)
    if not note.endswith("\n"):
        raise NoteError("a signed note ends with a newline")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise NoteError("a signed note has a blank line before its signatures")
    text, block = note[: cut + 1], note[cut + 2 :]
    _check_text(text)
    sigs = []
    # Only "\n" ends a line in a signed note (str.splitlines would also split on \r,
    # \x1c, \u2028 and others, accepting notes other readers reject).
    for line in block[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"malformed signature line: {line!r}")
        fields = line[len(SIG_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise NoteError(f"malformed signature line: {line!r}")
        name, sig_b64 = fields
        check_name(name)
        raw = b64decode_strict(sig_b64, "signature")
        if len(raw) < 5:
            raise NoteError("a signature is a 4-byte key id and the signature bytes")
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
    if not sigs:
        raise NoteError("the note has no signatures")
    return text, sigs


def open_note(note: str | bytes, verifiers: list[Verifier]) -> OpenedNote:
    """Verify a signed note (its bytes, as read from a file in binary mode, or text).
    At least one signature must come from a known verifier.

    A signature from a known key that does not verify is an error; signatures from
    unknown keys are returned as unverified, as the signed-note spec requires.
    """
    text, sigs = split_note(note)
    by_id = {(v.name, v.key_id): v for v in verifiers}
    verified, unverified = [], []
    for sig in sigs:
        v = by_id.get((sig.name, sig.key_id))
        if v is None:
            unverified.append(sig)
            continue
        if not v.verify(text.encode(), sig.signature):
            raise NoteError(f"invalid signature by {sig.name}")
        verified.append(sig)
    if not verified:
        raise NoteError("no signature by a known key")
    return OpenedNote(text, tuple(verified), tuple(unverified))


# --- tlog checkpoints -----------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), b64(self.root), *self.extensions]
        return "\n".join(lines) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Read the body of a tlog checkpoint (https://c2sp.org/tlog-checkpoint)."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("a checkpoint has an origin, a size and a root hash, each on a line")
    origin, size_s, root_b64 = lines[0], lines[1], lines[2]
    if not origin:
        raise NoteError("a checkpoint origin is not empty")
    if not re.fullmatch(r"0|[1-9][0-9]*", size_s):
        raise NoteError("a checkpoint tree size is a decimal number without leading zeros")
    root = b64decode_strict(root_b64, "checkpoint root hash")
    if len(root) != 32:
        raise NoteError("a checkpoint root hash is 32 bytes")
    if int(size_s) > 2**63 - 1:
        raise NoteError("a checkpoint tree size fits in 63 bits")
    extensions = tuple(lines[3:-1])
    if any(not line for line in extensions):
        raise NoteError("checkpoint extension lines are not empty")
    return Checkpoint(origin, int(size_s), root, extensions)


def open_checkpoint(note: str | bytes, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint (its bytes, or text) against a verifier key and read it.

    The origin line need not equal the key name (sum.golang.org's does not); pass
    ``origin`` to require the log you expect.
    """
    opened = open_note(note, [verifier])
    cp = parse_checkpoint(opened.text)
    if origin is not None and cp.origin != origin:
        raise NoteError(f"checkpoint origin {cp.origin!r} is not {origin!r}")
    return cp
