"""Ed25519 ``cosignature/v1`` per C2SP tlog-cosignature v1.0.0 (key type 0x04).

A cosignature line is ``— <name> base64(key id || u64 timestamp || signature)``, the key id
being SHA-256(name || 0x0A || 0x04 || public key)[:4], and the signed message
``cosignature/v1\\ntime <t>\\n`` followed by the checkpoint's note body.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ledger.core.note import (
    SIG_PREFIX,
    NoteError,
    b64,
    check_name,
    split_note,
    split_signer_key,
    split_verifier_key,
)

ALG_COSIGNATURE_V1 = 0x04
MAX_TIMESTAMP = 2**63 - 1


def cosignature_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || public key)[:4]: the key id of a cosigner key."""
    return hashlib.sha256(
        name.encode() + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key
    ).digest()[:4]


def cosigned_message(body: str, timestamp: int) -> bytes:
    """What a cosignature signs: the header line, the time line, the checkpoint body."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError("a cosignature timestamp is between 0 and 2^63 - 1")
    if not body.endswith("\n"):
        raise NoteError("a checkpoint body ends with a newline")
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class CosignatureVerifier:
    """A witness's public key under its name, as a log client trusts it."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return cosignature_key_id(self.name, self.public_key)

    def vkey(self) -> str:
        """``name+hex8+base64(0x04 || public key)``, as signed-note writes verifier keys."""
        raw = bytes([ALG_COSIGNATURE_V1]) + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{b64(raw)}"

    def verify(self, body: str, signature: bytes) -> int:
        """The timestamp of a valid cosignature (the bytes after the key id) on ``body``."""
        if len(signature) != 8 + 64:
            raise NoteError(f"a cosignature by {self.name} is a timestamp and 64 bytes")
        (timestamp,) = struct.unpack(">Q", signature[:8])
        try:
            VerifyKey(self.public_key).verify(cosigned_message(body, timestamp), signature[8:])
        except BadSignatureError as exc:
            raise NoteError(f"invalid cosignature by {self.name}") from exc
        return timestamp


def parse_cosignature_vkey(vkey: str) -> CosignatureVerifier:
    """Read a ``name+hex8+base64(0x04 || key)`` witness verifier key."""
    name, kid_hex, raw = split_verifier_key(vkey)
    if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
        raise NoteError("a cosignature/v1 verifier key is type 0x04 and 32 bytes")
    verifier = CosignatureVerifier(name, raw[1:])
    if verifier.key_id.hex() != kid_hex:
        raise NoteError("the key id does not match the verifier key's name and key")
    return verifier


@dataclass(frozen=True)
class Cosigner:
    """A witness's private key under its name."""

    name: str
    signing_key: SigningKey

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, bytes(self.signing_key.verify_key))

    def skey(self) -> str:
        """``PRIVATE+KEY+name+hex8+base64(0x04 || seed)``: the key file's one line."""
        raw = bytes([ALG_COSIGNATURE_V1]) + bytes(self.signing_key)
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{b64(raw)}"

    def cosign(self, body: str, timestamp: int) -> str:
        """The cosignature line (with its newline) on a checkpoint body at ``timestamp``."""
        if timestamp <= 0:
            raise NoteError("a witness's cosignature never omits its timestamp")
        sig = self.signing_key.sign(cosigned_message(body, timestamp)).signature
        raw = self.verifier.key_id + struct.pack(">Q", timestamp) + sig
        return f"{SIG_PREFIX}{self.name} {b64(raw)}\n"


def generate_cosigner(name: str) -> Cosigner:
    return Cosigner(check_name(name), SigningKey.generate())


def parse_cosigner_skey(skey: str) -> Cosigner:
    """Read a key file's ``PRIVATE+KEY+name+hex8+base64(0x04 || seed)`` line."""
    name, kid_hex, raw = split_signer_key(skey)
    if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
        raise NoteError("a witness key is a cosignature/v1 key (type 0x04, 32-byte seed)")
    cosigner = Cosigner(name, SigningKey(raw[1:]))
    if cosigner.verifier.key_id.hex() != kid_hex:
        raise NoteError("the key id does not match the signer key")
    return cosigner


def verify_cosignatures(note: str | bytes, verifier: CosignatureVerifier) -> list[int]:
    """The timestamps of ``verifier``'s cosignatures on a signed checkpoint.

    Lines by other keys are ignored, as signed-note requires; a line with this witness's
    name and key id that does not verify is an error, and so is a note without one.
    """
    body, sigs = split_note(note)
    found = [
        verifier.verify(body, s.signature)
        for s in sigs
        if s.name == verifier.name and s.key_id == verifier.key_id
    ]
    if not found:
        raise NoteError(f"no cosignature by {verifier.name}")
    return found
