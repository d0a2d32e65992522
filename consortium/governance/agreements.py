"""Agreements on the ledger: treaties, data-sharing agreements, compute pledges and model
licences, signed by each party over the exact terms and document hash.

Entry kinds, each with one applier:

``agreement.proposed`` (the secretariat key, or the key of a member that is a party)
    ``{"agreement": uuid, "series": uuid, "version": n, "kind", "title", "terms": {...},
    "terms_sha256": hex, "document": {"sha256", "name", "size"}, "supersedes": uuid | null}``
    ``terms_sha256`` is the SHA-256 of the terms' RFC 8785 (JCS) form.
``agreement.signed`` (a party's member key)
    ``{"agreement": uuid, "terms_sha256": hex, "document_sha256": hex}``: the party
    signs what it read. A signature over other hashes, by a non-party, a party that has
    withdrawn or signed already, or on a closed agreement counts for nothing.
``agreement.in_force`` (the secretariat key)
    ``{"agreement": uuid}``, once every required party has signed and the day is within
    the effective period (a signature that completes an agreement already effective
    brings it into force in the same transaction; otherwise the beat task does, on the
    day). An amendment enters into force
    only while the version it amends is in force and once every party bound by that
    version has signed it; it then supersedes that version.

Every applier checks the author's key (a member key of the member concerned, or the
secretariat key) and the dates, so the tables follow from the entries whoever signed
them: an entry that breaks these rules stays on the record and changes nothing.
``agreement.withdrawn`` (a party's member key)
    ``{"agreement": uuid, "reason": str}``: the party leaves. Before entry into force
    the withdrawal of a required party holds the agreement back until it is abandoned
    (and proposed again without that party).
``agreement.terminated`` (the secretariat key)
    ``{"agreement": uuid, "reason": str}``: an agreement not yet in force is abandoned.
    An agreement in force ends by an accepted proposal (action ``agreement.terminate``).
``agreement.expired`` (the secretariat key)
    ``{"agreement": uuid}``, after the end of its effective period (an agreement never
    completed within its period expires too).

The checks these entries pass are in ``agreement_checks``, documents in ``documents``,
who may read what in ``selectors``. The names imported as themselves (``x as x``) are
re-exported for the tests that still import them from here.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime

from django.db import transaction
from django.db.models import Max, Q

from consortium.governance import notifications
from consortium.governance.agreement_checks import (
    bound_parties,
    check_proposal,
    check_signature,
    check_withdrawal,
    hash_or_empty,
)
from consortium.governance.changes import (
    GovernanceError,
    acting_signer,
    by_secretariat,
    idempotency,
    secretariat_only,
    secretariat_signer,
)
from consortium.governance.models import Agreement, AgreementParty
from consortium.governance.selectors import (
    OPEN_STATES,
    SIGNABLE_STATES,
    readable_document,
)
from consortium.governance.terms import required_parties
from consortium.governance.validators import is_reason
from ledger import services as ledger
from ledger.core.envelope import parse_time
from ledger.services import Appended, Key, applier, projection

for model in (Agreement, AgreementParty):
    projection(model)

log = logging.getLogger(__name__)


def _party_id(agreement_id, member: str) -> str:
    return f"{agreement_id}:{member}"


# --- appliers --------------------------------------------------------------------------------


def _member_of(author: str) -> str | None:
    """The member whose member key ``author`` is, if it is one."""
    key = Key.objects.filter(fingerprint=author, kind="member").first()
    return key.owner if key is not None else None


@applier("agreement.proposed")
def apply_proposed(entry: Appended) -> None:
    p = entry.payload
    proposer = _member_of(entry.author)
    if not (by_secretariat(entry.author) or proposer in p["terms"]["parties"]):
        return  # not the secretariat, nor a party: on the record, without effect
    agreement = Agreement.objects.create(
        id=uuid.UUID(p["agreement"]),
        series=uuid.UUID(p["series"]),
        version=p["version"],
        kind=p["kind"],
        title=p["title"],
        terms=p["terms"],
        terms_sha256=p["terms_sha256"],
        document_sha256=p["document"]["sha256"],
        document_name=p["document"]["name"],
        document_size=p["document"]["size"],
        supersedes_id=uuid.UUID(p["supersedes"]) if p["supersedes"] else None,
        proposed_by=entry.author,
        proposed_in=entry.index,
    )
    required = set(required_parties(p["terms"]))
    AgreementParty.objects.bulk_create(
        AgreementParty(
            id=_party_id(agreement.id, code),
            agreement=agreement,
            member_id=code,
            required=code in required,
        )
        for code in p["terms"]["parties"]
    )
    notifications.on_agreement_proposed(agreement)


def _all_required_signed(agreement: Agreement) -> bool:
    return (
        not agreement.parties.filter(required=True)
        .filter(Q(signed_in__isnull=True) | Q(withdrawn_in__isnull=False))
        .exists()
    )


def _agreement(entry: Appended) -> Agreement | None:
    return Agreement.objects.filter(id=uuid.UUID(entry.payload["agreement"])).first()


@applier("agreement.signed")
def apply_signed(entry: Appended) -> None:
    p = entry.payload
    member = _member_of(entry.author)
    agreement = _agreement(entry)
    if member is None or agreement is None or agreement.state not in SIGNABLE_STATES:
        return
    if (p["terms_sha256"], p["document_sha256"]) != (
        agreement.terms_sha256,
        agreement.document_sha256,
    ):
        return  # signed something else: stays on the record, counts for nothing
    updated = AgreementParty.objects.filter(
        id=_party_id(agreement.id, member), signed_in__isnull=True, withdrawn_in__isnull=True
    ).update(signed_in=entry.index, signed_at=entry.integrated_time, signed_by=entry.author)
    if updated and agreement.state == Agreement.State.OPEN and _all_required_signed(agreement):
        Agreement.objects.filter(id=agreement.id).update(state=Agreement.State.SIGNED)


def effective_dates(agreement: Agreement) -> tuple[date, date | None]:
    """The first and (if any) last day the agreement is in force."""
    eff = agreement.terms["effective"]
    until = date.fromisoformat(eff["until"]) if eff["until"] else None
    return date.fromisoformat(eff["from"]), until


def may_enter_into_force(agreement: Agreement, day: date) -> bool:
    """Whether ``agreement`` may enter into force on ``day``: every required party has
    signed, ``day`` is within its effective period, and an amendment is signed by every
    party bound by the version it amends, which is still in force."""
    start, until = effective_dates(agreement)
    if agreement.state != Agreement.State.SIGNED or day < start:
        return False
    if until is not None and day > until:
        return False
    if agreement.supersedes_id is not None:
        old = agreement.supersedes
        if old.state != Agreement.State.IN_FORCE or not bound_parties(old) <= bound_parties(
            agreement
        ):
            return False
    return True


@applier("agreement.in_force")
def apply_in_force(entry: Appended) -> None:
    agreement = _agreement(entry)
    if (
        agreement is None
        or not by_secretariat(entry.author)
        or not may_enter_into_force(agreement, parse_time(entry.integrated_time).date())
    ):
        return
    Agreement.objects.filter(id=agreement.id).update(
        state=Agreement.State.IN_FORCE, in_force_in=entry.index
    )
    if agreement.supersedes_id:
        Agreement.objects.filter(id=agreement.supersedes_id, state=Agreement.State.IN_FORCE).update(
            state=Agreement.State.SUPERSEDED,
            closed_in=entry.index,
            closed_reason=f"superseded by version {agreement.version}",
        )


@applier("agreement.withdrawn")
def apply_withdrawn(entry: Appended) -> None:
    p = entry.payload
    member = _member_of(entry.author)
    agreement = _agreement(entry)
    if member is None or agreement is None or agreement.state not in SIGNABLE_STATES:
        return
    updated = AgreementParty.objects.filter(
        id=_party_id(agreement.id, member), withdrawn_in__isnull=True
    ).update(withdrawn_in=entry.index, withdrawal_reason=p["reason"])
    if (
        updated
        and agreement.state == Agreement.State.SIGNED
        and not _all_required_signed(agreement)
    ):
        Agreement.objects.filter(id=agreement.id).update(state=Agreement.State.OPEN)


def close_agreement(agreement_id, state: str, index: int, reason: str) -> None:
    """End an agreement (terminated or expired), if it has not ended already. Ending a
    version in force also ends the amendments of it still open: they would amend
    nothing."""
    Agreement.objects.filter(id=agreement_id, state__in=SIGNABLE_STATES).update(
        state=state, closed_in=index, closed_reason=reason[:300]
    )
    Agreement.objects.filter(supersedes_id=agreement_id, state__in=OPEN_STATES).update(
        state=Agreement.State.TERMINATED,
        closed_in=index,
        closed_reason="the version it amends has ended",
    )


@applier("agreement.terminated")
def apply_terminated(entry: Appended) -> None:
    if not by_secretariat(entry.author):
        return
    agreement_id = uuid.UUID(entry.payload["agreement"])
    # The secretariat abandons only what has not entered into force; an agreement in
    # force ends by an accepted proposal, applied by its decision.
    Agreement.objects.filter(id=agreement_id, state__in=OPEN_STATES).update(
        state=Agreement.State.TERMINATED,
        closed_in=entry.index,
        closed_reason=entry.payload["reason"][:300],
    )


@applier("agreement.expired")
def apply_expired(entry: Appended) -> None:
    agreement = _agreement(entry)
    if agreement is None or not by_secretariat(entry.author):
        return
    _, until = effective_dates(agreement)
    if until is not None and parse_time(entry.integrated_time).date() > until:
        close_agreement(
            agreement.id, Agreement.State.EXPIRED, entry.index, "effective period ended"
        )


# --- services ----------------------------------------------------------------------------------


def agreement_propose(
    *,
    actor,
    kind: str,
    title: str,
    terms: dict,
    document_sha256: str,
    supersedes: Agreement | None = None,
    idempotency_key: str | None = None,
) -> Agreement:
    """Propose an agreement (or an amendment of one in force) for signature."""
    idem = idempotency(actor, idempotency_key)
    agreement_id = idem.new_id()
    done = Agreement.objects.filter(id=agreement_id).first() if idem.entry_id else None
    if done is not None:
        same = (done.kind, done.title, done.terms, done.document_sha256) == (
            kind,
            title,
            terms,
            document_sha256,
        ) and done.supersedes_id == (supersedes.id if supersedes else None)
        if not same:
            raise GovernanceError("this Idempotency-Key was used for another agreement", 409)
        return done
    signer, member = acting_signer(actor)
    doc = readable_document(actor, document_sha256) if isinstance(document_sha256, str) else None
    if doc is None:
        raise GovernanceError("upload the document first: no stored document has that SHA-256")
    if supersedes is not None:
        series = supersedes.series
        version = Agreement.objects.filter(series=series).aggregate(v=Max("version"))["v"] + 1
    else:
        series, version = agreement_id, 1
    payload = {
        "agreement": str(agreement_id),
        "series": str(series),
        "version": version,
        "kind": kind,
        "title": title,
        "terms": terms,
        "terms_sha256": hash_or_empty(terms),
        "document": {"sha256": doc.sha256, "name": doc.name, "size": doc.size},
        "supersedes": str(supersedes.id) if supersedes else None,
    }
    with transaction.atomic(durable=True):
        if supersedes is not None:
            # Two amendments of one version, or an amendment and a termination, in turn.
            Agreement.objects.select_for_update().get(id=supersedes.id)
        check_proposal(payload, member)
        ledger.entry_append(
            signer=signer, entry_id=idem.entry_id, kind="agreement.proposed", payload=payload
        )
    return Agreement.objects.get(id=agreement_id)


def agreement_sign(
    *,
    actor,
    agreement: Agreement,
    terms_sha256: str,
    document_sha256: str,
    idempotency_key: str | None = None,
) -> AgreementParty:
    """Sign for the actor's member: the hashes are those the signatory read and approves.

    When this signature completes the required ones and the effective date has come,
    the agreement enters into force in the same transaction.
    """
    idem = idempotency(actor, idempotency_key)
    signer, member = acting_signer(actor)
    if member is None:
        raise GovernanceError("the secretariat does not sign agreements; parties do", 403)
    payload = {
        "agreement": str(agreement.id),
        "terms_sha256": terms_sha256,
        "document_sha256": document_sha256,
    }
    if idem.earlier("agreement.signed", payload, what="signature"):
        return AgreementParty.objects.get(id=_party_id(agreement.id, member))
    with transaction.atomic(durable=True):
        agreement = Agreement.objects.select_for_update().get(id=agreement.id)
        check_signature(agreement, member, terms_sha256, document_sha256)
        ledger.entry_append(
            signer=signer, entry_id=idem.entry_id, kind="agreement.signed", payload=payload
        )
        _enter_into_force_if_due(agreement.id)
    return AgreementParty.objects.get(id=_party_id(agreement.id, member))


def _today() -> date:
    return datetime.now(UTC).date()


def _enter_into_force_if_due(agreement_id) -> bool:
    agreement = Agreement.objects.get(id=agreement_id)
    if not may_enter_into_force(agreement, _today()):
        return False
    ledger.entry_append(
        signer=secretariat_signer(),
        kind="agreement.in_force",
        payload={"agreement": str(agreement.id)},
    )
    return True


def agreement_withdraw(
    *, actor, agreement: Agreement, reason: str = "", idempotency_key: str | None = None
) -> AgreementParty:
    """The actor's member leaves the agreement (a signatory of a party)."""
    signer, member = acting_signer(actor)
    if member is None:
        raise GovernanceError("parties withdraw; the secretariat terminates", 403)
    idem = idempotency(actor, idempotency_key)
    payload = {"agreement": str(agreement.id), "reason": reason}
    if idem.earlier("agreement.withdrawn", payload):
        return AgreementParty.objects.get(id=_party_id(agreement.id, member))
    with transaction.atomic(durable=True):
        agreement = Agreement.objects.select_for_update().get(id=agreement.id)
        check_withdrawal(agreement, member, reason)
        ledger.entry_append(
            signer=signer, kind="agreement.withdrawn", entry_id=idem.entry_id, payload=payload
        )
    return AgreementParty.objects.get(id=_party_id(agreement.id, member))


def agreement_terminate(
    *, actor, agreement: Agreement, reason: str, idempotency_key: str | None = None
) -> Agreement:
    """Abandon an agreement that has not entered into force (the secretariat)."""
    secretariat_only(actor, "the secretariat abandons agreements not yet in force")
    if not is_reason(reason):
        raise GovernanceError("give a reason of at most 300 characters")
    idem = idempotency(actor, idempotency_key)
    payload = {"agreement": str(agreement.id), "reason": reason}
    if idem.earlier("agreement.terminated", payload):
        agreement.refresh_from_db()
        return agreement
    with transaction.atomic(durable=True):
        agreement = Agreement.objects.select_for_update().get(id=agreement.id)
        if agreement.state == Agreement.State.IN_FORCE:
            raise GovernanceError(
                "an agreement in force ends by an accepted proposal (agreement.terminate)", 409
            )
        if agreement.state not in OPEN_STATES:
            raise GovernanceError(f"the agreement is {agreement.state}", 409)
        ledger.entry_append(
            signer=secretariat_signer(),
            kind="agreement.terminated",
            entry_id=idem.entry_id,
            payload=payload,
        )
    agreement.refresh_from_db()
    return agreement


def agreements_due() -> tuple[list[Agreement], list[Agreement]]:
    """Agreements due to enter into force today, and agreements whose period has ended
    (in force, or never completed)."""
    today = _today()
    enter, expire = [], []
    for a in Agreement.objects.filter(state__in=SIGNABLE_STATES).order_by("proposed_in"):
        start, until = effective_dates(a)
        if until is not None and until < today:
            expire.append(a)
        elif a.state == Agreement.State.SIGNED and start <= today:
            enter.append(a)
    return enter, expire


def agreements_advance() -> dict[str, list[str]]:
    """Bring due agreements into force and expire ended ones (the secretariat key signs).
    Run by the beat task every minute, and by ``manage.py consortium advance``. One
    agreement that cannot be advanced does not hold up the others."""
    done: dict[str, list[str]] = {"in_force": [], "expired": []}
    enter, expire = agreements_due()
    for agreement in enter:
        try:
            with transaction.atomic(durable=True):
                Agreement.objects.select_for_update().get(id=agreement.id)
                if _enter_into_force_if_due(agreement.id):
                    done["in_force"].append(str(agreement.id))
        except Exception:
            log.exception("could not bring agreement %s into force", agreement.id)
    for agreement in expire:
        try:
            with transaction.atomic(durable=True):
                locked = Agreement.objects.select_for_update().get(id=agreement.id)
                if locked.state not in SIGNABLE_STATES:
                    continue
                ledger.entry_append(
                    signer=secretariat_signer(),
                    kind="agreement.expired",
                    payload={"agreement": str(agreement.id)},
                )
                done["expired"].append(str(agreement.id))
        except Exception:
            log.exception("could not expire agreement %s", agreement.id)
    return done


# --- entries members sign with their own keys (checked in ``agreement_checks``) ---------


@ledger.then("agreement.signed")
def _after_submitted_signature(entry: Appended) -> None:
    # As for a signature through the services: one that completes an agreement already
    # effective brings it into force at once.
    _enter_into_force_if_due(uuid.UUID(entry.payload["agreement"]))
