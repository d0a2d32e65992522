"""ML-DSA-44 ``subtree/v1`` cosignatures (C2SP tlog-cosignature v1.1.0-rc.1, key type 0x06).

Only where the ``cryptography`` package provides ML-DSA-44 (:data:`AVAILABLE`); the
witness needs it for nothing else. The signed message is the ``cosigned_message``
structure: ``subtree/v1\\n\\0``, the cosigner's name and the log's origin each with a
one-byte length, the timestamp, start (0 for a checkpoint) and end (its size) as big-endian
u64, and the root hash; a signature line holds the key id, the u64 timestamp and the
2,420-byte signature. Extension lines of a checkpoint are not part of what is signed.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from ledger.core.note import (
    SIG_PREFIX,
    NoteError,
    b64,
    check_name,
    parse_checkpoint,
    split_signer_key,
    split_verifier_key,
)

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.mldsa import (
        MLDSA44PrivateKey,
        MLDSA44PublicKey,
    )

    MLDSA44PrivateKey.generate()  # a build without ML-DSA raises here, not later
    AVAILABLE = True
except Exception:  # ImportError, or UnsupportedAlgorithm from the backend
    AVAILABLE = False

ALG_MLDSA44 = 0x06
PUBLIC_KEY_SIZE = 1312
SIGNATURE_SIZE = 2420
LABEL = b"subtree/v1\n\x00"


def mldsa_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x06 || 1312-byte public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_MLDSA44]) + public_key).digest()[:4]


def _short(data: bytes, what: str) -> bytes:
    if not 1 <= len(data) <= 255:
        raise NoteError(f"{what} is 1 to 255 bytes for an ML-DSA-44 cosignature")
    return bytes([len(data)]) + data


def subtree_message(name: str, timestamp: int, origin: str, start: int, end: int, root: bytes):
    """The ``cosigned_message`` structure an ML-DSA-44 cosignature signs."""
    return (
        LABEL
        + _short(name.encode(), "the cosigner name")
        + struct.pack(">Q", timestamp)
        + _short(origin.encode(), "the log origin")
        + struct.pack(">QQ", start, end)
        + root
    )


def _checkpoint_message(name: str, body: str, timestamp: int) -> bytes:
    cp = parse_checkpoint(body)
    return subtree_message(name, timestamp, cp.origin, 0, cp.size, cp.root)


@dataclass(frozen=True)
class MLDSAVerifier:
    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return mldsa_key_id(self.name, self.public_key)

    def vkey(self) -> str:
        raw = bytes([ALG_MLDSA44]) + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{b64(raw)}"

    def verify(self, body: str, signature: bytes) -> int:
        """The timestamp of a valid cosignature on a checkpoint body."""
        if len(signature) != 8 + SIGNATURE_SIZE:
            raise NoteError(f"an ML-DSA-44 cosignature by {self.name} has the wrong length")
        (timestamp,) = struct.unpack(">Q", signature[:8])
        message = _checkpoint_message(self.name, body, timestamp)
        try:
            MLDSA44PublicKey.from_public_bytes(self.public_key).verify(signature[8:], message)
        except InvalidSignature as exc:
            raise NoteError(f"invalid cosignature by {self.name}") from exc
        return timestamp


@dataclass(frozen=True)
class MLDSACosigner:
    name: str
    seed: bytes

    @property
    def verifier(self) -> MLDSAVerifier:
        key = MLDSA44PrivateKey.from_seed_bytes(self.seed)
        return MLDSAVerifier(self.name, key.public_key().public_bytes_raw())

    def skey(self) -> str:
        """``PRIVATE+KEY+name+hex8+base64(0x06 || 32-byte seed)``."""
        raw = bytes([ALG_MLDSA44]) + self.seed
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{b64(raw)}"

    def cosign(self, body: str, timestamp: int) -> str:
        if timestamp <= 0:
            raise NoteError("a witness's cosignature never omits its timestamp")
        key = MLDSA44PrivateKey.from_seed_bytes(self.seed)
        sig = key.sign(_checkpoint_message(self.name, body, timestamp))
        raw = self.verifier.key_id + struct.pack(">Q", timestamp) + sig
        return f"{SIG_PREFIX}{self.name} {b64(raw)}\n"


def generate_mldsa_cosigner(name: str) -> MLDSACosigner:
    if not AVAILABLE:
        raise NoteError("the cryptography package here does not provide ML-DSA-44")
    return MLDSACosigner(check_name(name), MLDSA44PrivateKey.generate().private_bytes_raw())


def parse_mldsa_vkey(vkey: str) -> MLDSAVerifier:
    name, kid_hex, raw = split_verifier_key(vkey)
    if len(raw) != 1 + PUBLIC_KEY_SIZE or raw[0] != ALG_MLDSA44:
        raise NoteError("an ML-DSA-44 verifier key is type 0x06 and 1312 bytes")
    verifier = MLDSAVerifier(name, raw[1:])
    if verifier.key_id.hex() != kid_hex:
        raise NoteError("the key id does not match the verifier key's name and key")
    return verifier


def parse_mldsa_skey(skey: str) -> MLDSACosigner:
    """Read a key file's ``PRIVATE+KEY+name+hex8+base64(0x06 || seed)`` line."""
    name, kid_hex, raw = split_signer_key(skey)
    if len(raw) != 33 or raw[0] != ALG_MLDSA44:
        raise NoteError("an ML-DSA-44 witness key is type 0x06 and a 32-byte seed")
    if not AVAILABLE:
        raise NoteError("the cryptography package here does not provide ML-DSA-44")
    cosigner = MLDSACosigner(name, raw[1:])
    if cosigner.verifier.key_id.hex() != kid_hex:
        raise NoteError("the key id does not match the signer key")
    return cosigner
