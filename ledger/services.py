"""The ledger's Python API for the domain apps, and the log's own key services.

Domain services call :func:`entry_append` (or :func:`entries_append` for bulk
imports) inside their own ``transaction.atomic(durable=True)``: the entry, the
projection its applier writes and the domain's other changes commit together or
not at all. The key services here open a plain (nestable) atomic block, so a domain
service can register keys inside its own transaction.

This module is the ledger's whole surface for the domains (``__all__``): besides its own
services (appends, keys), the registries a domain fills (``applier`` with the
``Appended`` entries it receives, ``projection``, and for entries its members sign
themselves ``accepts``, ``then``, ``may_act_for``, ``Refused``); the errors it catches
(``LedgerError``, ``IdempotencyConflict``, ``HostedKeyError``, ``EnvelopeError``); the
hosted keys it signs with (``hosted_signer``, ``log_signer``, ``verifier_key``); what it
reads of the log (``Entry``, ``Key``, ``tree_size``, ``inclusion_proof``,
``latest_checkpoint``, ``publish_checkpoint``, and ``cosigned_checkpoint``, the newest
checkpoint meeting the witness policy with its cosignatures, and ``checkpoint_covering``,
the checkpoint and note a provenance bundle carries); the witnesses' projections
the domain's appliers write once they have checked who signed (``Witness``,
``check_witness``, ``check_destination``, ``witness_record``, ``witness_retire_record``,
``check_policy_text``, ``witness_policy_record``, ``witness_policy_text``, ``WitnessError``); and the format's rules for its own values
(``canonical``, ``check_value``, ``parse_time``, ``format_time``). The audit export
(``ledger.export``), the offline verifiers (``ledger.audit``, ``ledger.provenance``,
``ledger.core``), the REST plumbing (``ledger.api``), the admin's base class
(``ledger.admin``) and the models' base class (``ledger.models.AppendOnly``) are modules
of their own.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction

from ledger import log
from ledger.checkpoints import latest_checkpoint, publish_checkpoint
from ledger.core.envelope import (
    MAX_ENVELOPE_BYTES,
    EnvelopeError,
    EnvelopeTooLarge,
    SignedEnvelope,
    canonical,
    check_value,
    format_time,
    new_envelope,
    parse_time,
    sign_envelope,
)
from ledger.core.keyring import LOG_ROTATION, KeyringError, descriptor, rotation_message
from ledger.core.note import verifier_key
from ledger.cosign.models import Witness
from ledger.cosign.registry import (
    WitnessError,
    check_destination,
    check_policy_text,
    check_witness,
    witness_policy_record,
    witness_policy_text,
    witness_record,
    witness_retire_record,
)
from ledger.cosign.served import CosignedCheckpoint, cosigned_checkpoint, cosigned_note
from ledger.errors import EntryTooLarge, IdempotencyConflict, LedgerError, LogBehind
from ledger.keys import (
    EntrySigner,
    HostedKeyError,
    hosted_signer,
    log_origin,
    log_signer,
    seal_seed,
)
from ledger.log import Appended, applier
from ledger.models import Checkpoint, Entry, Key, SealedKey
from ledger.proofs import inclusion_proof, tree_size
from ledger.published import behind_published
from ledger.replay import projection, replaying
from ledger.submissions import Refused, accepts, may_act_for, then

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "MAX_PAYLOAD_BYTES",
    "Appended",
    "CosignedCheckpoint",
    "Draft",
    "Entry",
    "EntryTooLarge",
    "EnvelopeError",
    "HostedKeyError",
    "IdempotencyConflict",
    "Key",
    "LedgerError",
    "LogBehind",
    "Refused",
    "Witness",
    "WitnessError",
    "accepts",
    "applier",
    "behind_published",
    "canonical",
    "check_destination",
    "check_policy_text",
    "check_value",
    "check_witness",
    "checkpoint_covering",
    "cosigned_checkpoint",
    "entries_append",
    "entries_append_signed",
    "entry_append",
    "format_time",
    "hosted_signer",
    "inclusion_proof",
    "key_register",
    "key_revoke",
    "key_rotate",
    "latest_checkpoint",
    "ledger_init",
    "log_key_rotate",
    "log_origin",
    "log_signer",
    "may_act_for",
    "parse_time",
    "projection",
    "publish_checkpoint",
    "replaying",
    "then",
    "tree_size",
    "verifier_key",
    "witness_alarm_count",
    "witness_policy_record",
    "witness_policy_text",
    "witness_record",
    "witness_retire_record",
    "witness_status",
]


# The largest canonical payload that fits an envelope whatever its id (128 characters),
# kind (64) and time (27): what a domain checks before it signs a large entry.
MAX_PAYLOAD_BYTES = (
    MAX_ENVELOPE_BYTES
    - len(
        canonical(
            {"author": "0" * 64, "id": "i" * 128, "kind": "k" * 64, "payload": {}, "time": "t" * 27}
        )
    )
    + len(b"{}")
)


@dataclass(frozen=True)
class Draft:
    """An entry to be signed by a hosted key: kind, payload, optional id and time."""

    kind: str
    payload: dict = field(default_factory=dict)
    entry_id: str | None = None
    time: datetime | None = None


def _sign(signer: EntrySigner, draft: Draft, origin: str) -> SignedEnvelope:
    try:
        env = new_envelope(
            kind=draft.kind,
            payload=draft.payload,
            author=signer.fingerprint,
            entry_id=draft.entry_id,
            time=draft.time,
        )
        return sign_envelope(env, signer.signing_key, origin)
    except EnvelopeTooLarge as exc:
        raise EntryTooLarge(f"{draft.kind}: {exc}") from exc
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
    signed = _sign(signer, Draft(kind, payload, entry_id, time), signer.origin or log_origin())
    return log.append_signed([signed])[0]


def entries_append(*, signer: EntrySigner, drafts: Iterable[Draft]) -> list[Appended]:
    """Sign many entries and append them in one transaction, in order (bulk imports).

    Signing and canonicalising happen before the sequence lock is taken.
    """
    origin = signer.origin or log_origin()
    signed = [_sign(signer, d, origin) for d in drafts]
    return log.append_signed(signed)


def entries_append_signed(items: Sequence[SignedEnvelope]) -> list[Appended]:
    """Append envelopes signed outside this server (checked by
    :func:`ledger.submissions.signed_envelope_from_client`)."""
    return log.append_signed(items)


# --- the log's own keys ---------------------------------------------------------------------


def ledger_init(*, origin: str | None = None) -> Appended:
    """Create the log key and the genesis entry. Refuses if the log has entries."""
    origin = origin or settings.LEDGER_ORIGIN
    with transaction.atomic():
        log._lock()
        if tree_size():
            raise LedgerError("the ledger is already initialised")
        signer = EntrySigner.generate(origin, origin=origin)
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
        draft = Draft("log.genesis", {"origin": origin, "key": desc})
        genesis = log.append_signed([_sign(signer, draft, origin)])[0]
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
        hosted = EntrySigner.generate(name, origin=log_origin())
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


def log_key_rotate(*, entry_id: str | None = None) -> tuple[Appended, EntrySigner]:
    """Replace the log key: a new hosted log key, made and sealed here, accepted by an
    entry the old key signs and whose payload the new key signs too. The old key's
    sealed copy stays (it verifies, and signed, the checkpoints before the rotation); it
    signs nothing after it. Returns the entry and the new key's signer."""
    with transaction.atomic():
        log._lock()
        old = log_signer()
        origin = log_origin()
        owner = Key.objects.get(fingerprint=old.fingerprint).owner
        new = EntrySigner.generate(origin, origin=origin)
        try:
            desc = descriptor(
                public_key=new.public_key, kind="log", owner=owner, custody="hosted", name=origin
            )
        except KeyringError as exc:
            raise LedgerError(str(exc)) from exc
        message = rotation_message(origin, old.fingerprint, new.fingerprint)
        signature = new.signing_key.sign(message).signature
        entry = entry_append(
            signer=old,
            kind=LOG_ROTATION,
            payload={
                "fingerprint": old.fingerprint,
                "key": desc,
                "signature": base64.b64encode(signature).decode(),
            },
            entry_id=entry_id,
        )
        _seal(new)
    return entry, new


# --- the checkpoint carried by what members and auditors take away ----------------------


def checkpoint_covering(size: int) -> tuple[Checkpoint, str] | None:
    """A checkpoint of at least ``size`` entries and the note to hand out with it: the one
    served as cosigned (with its cosignatures) when it covers ``size``, else the latest
    (published now if none covers ``size``) with whatever cosignatures it has, which an
    offline verifier refuses if they fall below its policy's quorum. ``None`` if the tree
    has fewer than ``size`` entries."""
    served = cosigned_checkpoint()
    if served is not None and served.checkpoint.tree_size >= size:
        return served.checkpoint, served.note
    latest = latest_checkpoint()
    if latest is None or latest.tree_size < size:
        latest = publish_checkpoint() or latest_checkpoint()
    if latest is None or latest.tree_size < size:
        return None
    return latest, cosigned_note(latest)


# --- what the witnesses did (for the members' dashboards) --------------------------------------


def witness_status(names: Sequence[str]) -> dict[str, dict]:
    """Per witness of ``names``: the largest tree size it cosigned and when that arrived
    (``cosigned_size``, ``cosigned_at``), its last contact and error (``contact``), and the
    number of its alarms (``alarms``); a handful of queries whatever the number of
    checkpoints."""
    from django.db.models import Count, Max

    from ledger.cosign.models import Cosignature, WitnessAlarm, WitnessContact

    names = list(names)
    contacts = {c.witness: c for c in WitnessContact.objects.filter(witness__in=names)}
    alarms = dict(
        WitnessAlarm.objects.filter(witness__in=names)
        .values("witness")
        .annotate(n=Count("id"))
        .values_list("witness", "n")
    )
    cosigned = {
        r["witness"]: r
        for r in Cosignature.objects.filter(witness__in=names)
        .values("witness")
        .annotate(size=Max("checkpoint__tree_size"), at=Max("received_at"))
    }
    return {
        name: {
            "contact": contacts.get(name),
            "alarms": alarms.get(name, 0),
            "cosigned_size": cosigned.get(name, {}).get("size"),
            "cosigned_at": cosigned.get(name, {}).get("at"),
        }
        for name in names
    }


def witness_alarm_count() -> int:
    """How many witness alarms were raised (a fork or a rollback may be under way)."""
    from ledger.cosign.models import WitnessAlarm

    return WitnessAlarm.objects.count()
