"""The ledger's Python API for the domain apps, and the log's own key services.

Domain services call :func:`entry_append` (or :func:`entries_append` for bulk
imports) inside their own ``transaction.atomic(durable=True)``: the entry, the
projection its applier writes and the domain's other changes commit together or
not at all. The key services here open a plain (nestable) atomic block, so a domain
service can register keys inside its own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from ledger import log
from ledger.core.envelope import (
    MAX_ENVELOPE_BYTES,
    EnvelopeError,
    SignedEnvelope,
    canonical,
    check_envelope,
    new_envelope,
    sign_envelope,
    signing_message,
)
from ledger.core.keyring import KeyringError, descriptor
from ledger.keys import EntrySigner, seal_seed
from ledger.log import Appended, LedgerError
from ledger.models import Key, SealedKey


class EnvelopeTooLarge(LedgerError):
    """A client's envelope over ``MAX_ENVELOPE_BYTES`` (an API answers 413)."""


@dataclass(frozen=True)
class Draft:
    """An entry to be signed by a hosted key: kind, payload, optional id and time."""

    kind: str
    payload: dict = field(default_factory=dict)
    entry_id: str | None = None
    time: datetime | None = None


def _sign(signer: EntrySigner, draft: Draft) -> SignedEnvelope:
    try:
        env = new_envelope(
            kind=draft.kind,
            payload=draft.payload,
            author=signer.fingerprint,
            entry_id=draft.entry_id,
            time=draft.time,
        )
        return sign_envelope(env, signer.signing_key)
    except EnvelopeError as exc:
        raise LedgerError(f"{draft.kind}: {exc}") from exc


def entry_append(
    *,
    signer: EntrySigner,
    kind: str,
    payload: dict,
    entry_id: str | None = None,
    time: datetime | None = None,
) -> Appended:
    """Sign one entry with a hosted key and append it."""
    signed = _sign(signer, Draft(kind, payload, entry_id, time))
    return log.append_signed([signed])[0]


def entries_append(*, signer: EntrySigner, drafts: Iterable[Draft]) -> list[Appended]:
    """Sign many entries and append them in one transaction, in order (bulk imports).

    Signing and canonicalising happen before the sequence lock is taken.
    """
    signed = [_sign(signer, d) for d in drafts]
    return log.append_signed(signed)


def signed_envelope_from_client(envelope: dict, signature: bytes) -> SignedEnvelope:
    """Check an envelope a client signed itself; verify it under the author's key.

    Whether the key may sign at the index the entry gets is decided under the
    sequence lock, when the entry is appended.
    """
    try:
        check_envelope(envelope)
        data = canonical(envelope)
    except EnvelopeError as exc:
        raise LedgerError(str(exc)) from exc
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeTooLarge(f"envelope is larger than {MAX_ENVELOPE_BYTES} bytes")
    key = Key.objects.filter(fingerprint=envelope["author"]).first()
    if key is None:
        raise LedgerError(f"author {envelope['author'][:16]}… is not a registered key")
    try:
        VerifyKey(bytes(key.public_key)).verify(signing_message(data), signature)
    except (BadSignatureError, ValueError) as exc:
        raise LedgerError("the signature does not verify under the author's key") from exc
    return SignedEnvelope(envelope, data, signature)


def entries_append_signed(items: Sequence[SignedEnvelope]) -> list[Appended]:
    """Append envelopes signed outside this server (see :func:`signed_envelope_from_client`)."""
    return log.append_signed(items)


# --- the log's own keys ---------------------------------------------------------------------


def ledger_init(*, origin: str | None = None) -> Appended:
    """Create the log key and the genesis entry. Refuses if the log has entries."""
    origin = origin or settings.LEDGER_ORIGIN
    with transaction.atomic():
        log._lock()
        if log.tree_size():
            raise LedgerError("the ledger is already initialised")
        signer = EntrySigner.generate(origin)
        try:
            desc = descriptor(
                public_key=signer.public_key,
                kind="log",
                owner=origin,
                custody="hosted",
                name=origin,
            )
        except KeyringError as exc:
            raise LedgerError(f"LEDGER_ORIGIN: {exc}") from exc
        genesis = entry_append(
            signer=signer, kind="log.genesis", payload={"origin": origin, "key": desc}
        )
        _seal(signer)
    return genesis


def _seal(signer: EntrySigner) -> None:
    sealed, kek_id = seal_seed(signer.seed)
    SealedKey.objects.create(key_id=signer.fingerprint, kek_id=kek_id, sealed_seed=sealed)


def _descriptor_for(
    *, kind: str, owner: str, name: str, public_key: bytes | None
) -> tuple[dict, EntrySigner | None]:
    """A key descriptor; without ``public_key``, for a hosted key made here."""
    hosted = None
    if public_key is None:
        hosted = EntrySigner.generate(name)
        public_key = hosted.public_key
    try:
        desc = descriptor(
            public_key=public_key,
            kind=kind,
            owner=owner,
            custody="hosted" if hosted else "external",
            name=name,
        )
    except KeyringError as exc:
        raise LedgerError(str(exc)) from exc
    return desc, hosted


def key_register(
    *,
    signer: EntrySigner,
    kind: str,
    owner: str,
    name: str,
    public_key: bytes | None = None,
) -> tuple[Appended, EntrySigner | None]:
    """Register a key, signed by the log key (or by a valid key of the same owner and
    kind, for owner-managed kinds). Without ``public_key`` a hosted key is made and
    sealed here.

    Returns the entry and, for a hosted key, its signer.
    """
    with transaction.atomic():
        desc, hosted = _descriptor_for(kind=kind, owner=owner, name=name, public_key=public_key)
        entry = entry_append(signer=signer, kind="key.registered", payload={"key": desc})
        if hosted:
            _seal(hosted)
    return entry, hosted


def key_rotate(
    *,
    signer: EntrySigner,
    name: str | None = None,
    public_key: bytes | None = None,
    entry_id: str | None = None,
) -> tuple[Appended, EntrySigner | None]:
    """Replace ``signer``'s key by a new one, signed by the key being replaced.

    The old key is valid through the rotation entry and never after; the new one from
    the next index. Without ``public_key`` the new key is hosted, made and sealed here.
    """
    old = Key.objects.filter(fingerprint=signer.fingerprint).first()
    if old is None:
        raise LedgerError("the signing key is not registered")
    with transaction.atomic():
        desc, hosted = _descriptor_for(
            kind=old.kind, owner=old.owner, name=name or old.name, public_key=public_key
        )
        entry = entry_append(
            signer=signer,
            kind="key.rotated",
            payload={"fingerprint": old.fingerprint, "key": desc},
            entry_id=entry_id,
        )
        if hosted:
            _seal(hosted)
    return entry, hosted


def key_revoke(
    *, signer: EntrySigner, fingerprint: str, reason: str, entry_id: str | None = None
) -> Appended:
    """Revoke a key, signed by the log key, the key itself, or another valid key of the
    same owner and kind."""
    with transaction.atomic():
        return entry_append(
            signer=signer,
            kind="key.revoked",
            payload={"fingerprint": fingerprint, "reason": reason},
            entry_id=entry_id,
        )
