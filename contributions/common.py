"""What the contribution services share: who signed an entry, who records for a member,
the checks of plain values, and the refusals of client-signed entries. Private to the
``contributions`` package (its services import it; nothing else should)."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction

from consortium.governance.changes import (
    GovernanceError,
    idempotency,
    member_signer,
)
from consortium.governance.models import Member
from consortium.governance.selectors import recording_for
from contributions.models import (
    Contribution,
    ContributionTally,
    Dispute,
    Facility,
    SacctImport,
)
from ledger import services as ledger
from ledger.services import Appended, Key, projection

# The tables the contribution appliers write: replay rebuilds them and compares.
for model in (Facility, SacctImport, Contribution, ContributionTally, Dispute):
    projection(model)

MAX_TEXT = 2000


# --- who signs ----------------------------------------------------------------------------------


def key_of(author: str) -> Key | None:
    return Key.objects.filter(fingerprint=author).first()


def member_key_owner(entry: Appended) -> str | None:
    """The member whose member key signed ``entry``, if a member key did."""
    key = key_of(entry.author)
    return key.owner if key is not None and key.kind == "member" else None


def recorder(actor) -> str:
    """The member ``actor`` records contributions for (its recorder or signatory)."""
    member = recording_for(actor)
    if member is None:
        raise GovernanceError("only a member's recorder or signatory records contributions", 403)
    return member


def new_contribution(actor, idempotency_key, kind: str, payload: dict) -> Contribution:
    """Append a member's contribution entry, idempotently; return the contribution."""
    member = recorder(actor)
    signer = member_signer(member)
    idem = idempotency(actor, idempotency_key)
    payload = {"contribution": str(idem.new_id()), **payload}
    if idem.earlier(kind, payload):
        return Contribution.objects.get(id=payload["contribution"])
    with transaction.atomic(durable=True):
        ledger.entry_append(signer=signer, entry_id=idem.entry_id, kind=kind, payload=payload)
    return Contribution.objects.get(id=payload["contribution"])


# --- plain values -------------------------------------------------------------------------------


def text(value, path: str, limit: int = MAX_TEXT, *, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value) or len(value) > limit:
        raise GovernanceError(f"{path}: text of {'1' if required else '0'}-{limit} characters")
    return value


def zone(value, path: str) -> str:
    if not isinstance(value, str):
        raise GovernanceError(f"{path}: an IANA time zone such as Europe/Helsinki")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise GovernanceError(f"{path}: {value!r} is not an IANA time zone") from exc
    return value


# --- entries signed by their authors' own keys (POST /api/v1/ledger/entries) -------------------


def refuse(fn, *args):
    """Run a service's check on a submitted entry; its refusal is the submission's."""
    try:
        return fn(*args)
    except GovernanceError as exc:
        raise ledger.Refused(str(exc), exc.status) from exc


def new_contribution_id(payload) -> str:
    """The id a submitted contribution entry gives: canonical, and not taken."""
    value = payload.get("contribution") if isinstance(payload, dict) else None
    try:
        canonical_id = str(uuid.UUID(str(value)))
    except ValueError:
        canonical_id = None
    if canonical_id != value:
        raise ledger.Refused("contribution must be a UUID in its canonical form")
    if Contribution.objects.filter(id=value).exists():
        raise ledger.Refused("that contribution exists already", 409)
    return value


def submitting_recorder(key, submitter) -> str:
    """A member's key, submitted by its recorder or signatory, for a member in standing."""
    if key.kind != "member" or recording_for(submitter) != key.owner:
        raise ledger.Refused(f"you may not record for {key.owner}", 403)
    if not Member.objects.filter(code=key.owner, status=Member.Status.MEMBER).exists():
        raise ledger.Refused(f"{key.owner} is not a member in good standing", 403)
    return key.owner
