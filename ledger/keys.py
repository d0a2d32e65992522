"""Hosted keys: sealing private keys under the key-encryption key, and signers.

A hosted key's 32-byte Ed25519 seed is sealed with PyNaCl's SecretBox
(XSalsa20-Poly1305) under the key-encryption key (KEK) from ``LEDGER_KEK`` or
``LEDGER_KEK_FILE``. The database never holds a seed in plaintext; a database dump
without the KEK signs nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from nacl.signing import SigningKey

from ledger.core.envelope import key_fingerprint
from ledger.core.note import Signer as NoteSigner


class HostedKeyError(Exception):
    """A hosted key is missing, revoked, or cannot be unsealed."""


def _parse_kek(text: str) -> bytes:
    text = text.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise ImproperlyConfigured("LEDGER_KEK must be 32 bytes, as 64 hex digits or base64")
    return raw


@lru_cache(maxsize=4)
def _box(kek_text: str) -> tuple[SecretBox, str]:
    kek = _parse_kek(kek_text)
    kek_id = hashlib.sha256(b"consortium-ledger/kek-id\n" + kek).hexdigest()[:16]
    return SecretBox(kek), kek_id


def kek_box() -> tuple[SecretBox, str]:
    return _box(settings.LEDGER_KEK)


def seal_seed(seed: bytes) -> tuple[bytes, str]:
    box, kek_id = kek_box()
    return bytes(box.encrypt(seed)), kek_id


def unseal_seed(sealed: bytes, kek_id: str) -> bytes:
    box, current = kek_box()
    if kek_id != current:
        raise HostedKeyError(
            f"this key was sealed under key-encryption key {kek_id}, but LEDGER_KEK is {current}"
        )
    try:
        return box.decrypt(bytes(sealed))
    except CryptoError as exc:
        raise HostedKeyError(
            "cannot unseal the key: wrong key-encryption key or corrupt data"
        ) from exc


@dataclass(frozen=True)
class EntrySigner:
    """A hosted key, unsealed in memory, that signs envelopes (and notes, for the log key)."""

    fingerprint: str
    name: str
    signing_key: SigningKey
    # The log's origin, which its entry signatures cover (known when unsealed here).
    origin: str | None = None

    @classmethod
    def generate(cls, name: str, origin: str | None = None) -> EntrySigner:
        sk = SigningKey.generate()
        return cls(key_fingerprint(bytes(sk.verify_key)), name, sk, origin)

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def seed(self) -> bytes:
        return bytes(self.signing_key)

    def note_signer(self) -> NoteSigner:
        return NoteSigner(self.name, self.signing_key)


def hosted_signer(fingerprint: str) -> EntrySigner:
    """Unseal a hosted key. The caller has already decided the actor may use it."""
    from django.db.models import Subquery

    from ledger.models import Key, SealedKey

    genesis = Key.objects.filter(kind=Key.Kind.LOG).order_by("registered_in").values("name")
    try:
        sealed = (
            SealedKey.objects.select_related("key")
            .annotate(origin=Subquery(genesis[:1]))
            .get(key_id=fingerprint)
        )
    except SealedKey.DoesNotExist as exc:
        raise HostedKeyError(f"no hosted key {fingerprint}") from exc
    key = sealed.key
    if key.revoked_at is not None:
        raise HostedKeyError(f"key {fingerprint} was revoked at index {key.revoked_at}")
    sk = SigningKey(unseal_seed(sealed.sealed_seed, sealed.kek_id))
    if key_fingerprint(bytes(sk.verify_key)) != fingerprint:
        raise HostedKeyError(f"sealed key {fingerprint} does not match its public key")
    if key.custody != Key.Custody.HOSTED:
        raise HostedKeyError(f"key {fingerprint} is registered as {key.custody}, not hosted")
    return EntrySigner(fingerprint, key.name, sk, sealed.origin)


def log_signer() -> EntrySigner:
    """The current log key (the one a rotation has not replaced)."""
    from ledger.models import Key

    key = Key.objects.filter(kind=Key.Kind.LOG, revoked_at__isnull=True).first()
    if key is None:
        raise HostedKeyError("the ledger has no log key yet: run `manage.py ledger init`")
    return hosted_signer(key.fingerprint)


def log_origin() -> str:
    """The log's origin, which every entry signature covers: the genesis key's name (every
    log key after it bears the same)."""
    from ledger.models import Key

    key = Key.objects.filter(kind=Key.Kind.LOG).order_by("registered_in").first()
    if key is None:
        raise HostedKeyError("the ledger has no log key yet: run `manage.py ledger init`")
    return key.name


def log_key_for_size(size: int):
    """The registry's log key that signs the checkpoint of ``size`` entries: the one valid
    at index ``size`` (see ``ledger.core.keyring.Keyring.log_key_for_size``)."""
    from django.db.models import Q

    from ledger.models import Key

    return (
        Key.objects.filter(kind=Key.Kind.LOG, valid_from__lte=size)
        .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gte=size))
        .first()
    )
