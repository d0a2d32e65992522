"""Members' witnesses, registered and retired on the ledger by the member's signatory.

Entry kinds and their one applier each (the ledger keeps the projection, ``Witness``):

``witness.registered`` (signed by a key of the member)
    ``{"member": code, "url": submission prefix, "vkey": Ed25519 cosignature verifier
    key, "mldsa_vkey": ML-DSA-44 verifier key or null}``; the witness is known by its
    Ed25519 key's name, which no other witness may have taken, retired or not.
``witness.retired`` (signed by a key of the witness's member)
    ``{"witness": name, "reason": str}``: the log asks it nothing after this entry.

The cosignature keys are the witness's own (C2SP tlog-cosignature); they are never
entry-signing keys of the registry. Who may sign is said here; what the ledger keeps of
a witness, and how it talks to it, is the ledger's (``ledger.cosign``).
"""

from __future__ import annotations

from django.db import transaction

from consortium.governance.changes import GovernanceError, acting_signer, idempotency
from consortium.governance.models import Member
from consortium.governance.selectors import may_act_for
from consortium.governance.validators import is_reason
from ledger import services as ledger
from ledger.services import Appended, Key, Witness, WitnessError, applier

# --- appliers ------------------------------------------------------------------------------


def _by_member(author: str, member) -> bool:
    """Was the entry signed by a member key of ``member``?"""
    return Key.objects.filter(fingerprint=author, kind="member", owner=member).exists()


@applier("witness.registered")
def apply_witness_registered(entry: Appended) -> None:
    if not _by_member(entry.author, entry.payload.get("member")):
        return  # on the record, without effect
    ledger.witness_record(payload=entry.payload, index=entry.index)


@applier("witness.retired")
def apply_witness_retired(entry: Appended) -> None:
    name = entry.payload.get("witness")
    witness = Witness.objects.filter(name=name).first() if isinstance(name, str) else None
    if witness is None or not _by_member(entry.author, witness.member):
        return
    ledger.witness_retire_record(name=name, index=entry.index)


# --- services ------------------------------------------------------------------------------


def _signatory_of(actor, member: str):
    """The key of ``member``'s signatory ``actor``; anyone else (the secretariat too) is
    refused: a member vouches for its own witness."""
    signer, own = acting_signer(actor)
    if own != member:
        raise GovernanceError(
            f"only a signatory of {member} registers or retires its witnesses", 403
        )
    return signer


def _check(payload: dict):
    try:
        spec = ledger.check_witness(payload)
        ledger.check_destination(spec.url)
    except WitnessError as exc:
        raise GovernanceError(str(exc)) from exc
    if Witness.objects.filter(name=spec.name).exists():
        raise GovernanceError(
            f"a witness named {spec.name} is registered already (a name is never reused)", 409
        )
    return spec


def witness_register(
    *,
    actor,
    member: str,
    url: str,
    vkey: str,
    mldsa_vkey: str | None = None,
    idempotency_key: str | None = None,
) -> Witness:
    """Register ``member``'s witness: its submission prefix and its cosignature keys."""
    if not Member.objects.filter(code=member).exists():
        raise GovernanceError(f"no member {member!r}", 404)
    payload = {"member": member, "url": url, "vkey": vkey, "mldsa_vkey": mldsa_vkey}
    idem = idempotency(actor, idempotency_key)
    done = idem.earlier("witness.registered", payload)
    if done is not None:
        return Witness.objects.get(registered_in=done.index)
    signer = _signatory_of(actor, member)
    spec = _check(payload)
    with transaction.atomic(durable=True):
        ledger.entry_append(
            signer=signer, kind="witness.registered", payload=payload, entry_id=idem.entry_id
        )
    return Witness.objects.get(name=spec.name)


def witness_retire(*, actor, name: str, reason: str, idempotency_key: str | None = None) -> Witness:
    """Retire a witness of the actor's member: it is asked nothing from then on."""
    witness = Witness.objects.filter(name=name).first()
    if witness is None:
        raise GovernanceError(f"no witness {name!r}", 404)
    if not is_reason(reason):
        raise GovernanceError("give a reason of at most 300 characters")
    payload = {"witness": name, "reason": reason}
    idem = idempotency(actor, idempotency_key)
    if idem.earlier("witness.retired", payload):
        return witness
    signer = _signatory_of(actor, witness.member)
    if witness.retired_in is not None:
        raise GovernanceError(f"the witness {name} is retired already", 409)
    with transaction.atomic(durable=True):
        ledger.entry_append(
            signer=signer, kind="witness.retired", payload=payload, entry_id=idem.entry_id
        )
    witness.refresh_from_db()
    return witness


# --- entries members sign themselves (POST /api/v1/ledger/entries) ------------------------


def _acting(key, submitter) -> str:
    if key.kind != "member":
        raise ledger.Refused("witnesses are registered with a member's key", 403)
    if not may_act_for(submitter, key.owner):
        raise ledger.Refused(f"you may not act for {key.owner}", 403)
    return key.owner


@ledger.accepts("witness.registered")
def _submitted_witness_registered(signed, key, submitter) -> None:
    member = _acting(key, submitter)
    payload = signed.envelope["payload"]
    if isinstance(payload, dict) and payload.get("member") != member:
        raise ledger.Refused(
            f"a key of {member} cannot register a witness of {payload.get('member')}", 403
        )
    try:
        _check(payload)
    except GovernanceError as exc:
        raise ledger.Refused(str(exc), exc.status) from exc


@ledger.accepts("witness.retired")
def _submitted_witness_retired(signed, key, submitter) -> None:
    member = _acting(key, submitter)
    payload = signed.envelope["payload"]
    if set(payload) != {"witness", "reason"} or not is_reason(payload["reason"]):
        raise ledger.Refused(
            "witness.retired payload is {witness, reason} (a reason of at most 300 characters)"
        )
    witness = (
        Witness.objects.filter(name=payload["witness"]).first()
        if isinstance(payload["witness"], str)
        else None
    )
    if witness is None or witness.member != member:
        raise ledger.Refused(f"no witness of {member} named {payload['witness']!r}", 404)
    if witness.retired_in is not None:
        raise ledger.Refused("the witness is retired already", 409)
