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
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from datetime import UTC, date, datetime

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max, Q, QuerySet

from consortium.governance.members import (
    SECRETARIAT_OWNER,
    GovernanceError,
    acting_for,
    acting_signer,
    holds_a_seat,
    idempotent_entry_id,
    keyed_uuid,
    replay_of,
    secretariat_signer,
    visible_members_of,
)
from consortium.governance.models import Agreement, AgreementParty, Document, Member
from consortium.governance.terms import check_terms, required_parties
from ledger import services as ledger
from ledger import submissions
from ledger.core.envelope import EnvelopeError, canonical, check_value, parse_time
from ledger.log import Appended, applier
from ledger.models import Entry, Key
from ledger.replay import projection

for model in (Agreement, AgreementParty):
    projection(model)

log = logging.getLogger(__name__)
OPEN_STATES = (Agreement.State.OPEN, Agreement.State.SIGNED)
SIGNABLE_STATES = (*OPEN_STATES, Agreement.State.IN_FORCE)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME_RE = re.compile(r"[^/\\\x00-\x1f]{1,200}")


def terms_hash(terms: dict) -> str:
    """SHA-256 of the terms' JCS form: what each party signs, with the document hash."""
    return hashlib.sha256(canonical(terms)).hexdigest()


def _hash_or_empty(terms) -> str:
    """The terms' hash, or "" for terms that cannot be canonicalised (the schema check
    that follows then names what is wrong with them)."""
    if not isinstance(terms, dict):
        return ""
    try:
        check_value(terms, "terms")
        return terms_hash(terms)
    except (EnvelopeError, RecursionError, ValueError):
        return ""


def _uuid(value, what: str) -> str:
    try:
        canonical_form = str(uuid.UUID(str(value)))
    except ValueError:
        canonical_form = None
    if canonical_form != value:
        raise GovernanceError(f"{what} must be a UUID in its canonical form (lowercase, hyphens)")
    return value


def _party_id(agreement_id, member: str) -> str:
    return f"{agreement_id}:{member}"


# --- appliers --------------------------------------------------------------------------------


def _member_of(author: str) -> str | None:
    """The member whose member key ``author`` is, if it is one."""
    key = Key.objects.filter(fingerprint=author, kind="member").first()
    return key.owner if key is not None else None


def _by_secretariat(author: str) -> bool:
    return Key.objects.filter(fingerprint=author, kind="service", owner=SECRETARIAT_OWNER).exists()


def _bound_parties(agreement: Agreement) -> set[str]:
    """The parties bound by an agreement: those that signed and have not withdrawn."""
    return set(
        agreement.parties.filter(signed_in__isnull=False, withdrawn_in__isnull=True).values_list(
            "member_id", flat=True
        )
    )


@applier("agreement.proposed")
def apply_proposed(entry: Appended) -> None:
    p = entry.payload
    proposer = _member_of(entry.author)
    if not (_by_secretariat(entry.author) or proposer in p["terms"]["parties"]):
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
        if old.state != Agreement.State.IN_FORCE or not _bound_parties(old) <= _bound_parties(
            agreement
        ):
            return False
    return True


@applier("agreement.in_force")
def apply_in_force(entry: Appended) -> None:
    agreement = _agreement(entry)
    if (
        agreement is None
        or not _by_secretariat(entry.author)
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
    if not _by_secretariat(entry.author):
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
    if agreement is None or not _by_secretariat(entry.author):
        return
    _, until = effective_dates(agreement)
    if until is not None and parse_time(entry.integrated_time).date() > until:
        close_agreement(
            agreement.id, Agreement.State.EXPIRED, entry.index, "effective period ended"
        )


# --- who may see what --------------------------------------------------------------------------


def visible_agreements(user) -> QuerySet[Agreement]:
    """Agreements ``user`` may read. Agreements are the consortium's shared record (their
    terms are on the ledger, which every member verifies): every seat holder reads them
    all, anyone else none."""
    if user.is_superuser or holds_a_seat(user):
        return Agreement.objects.all()
    return Agreement.objects.none()


def readable_document(user, sha256: str) -> Document | None:
    """The document, if ``user`` may read it: the document of an agreement they may see,
    or one not yet named by an agreement that they (or their member's delegates)
    uploaded; the secretariat and auditors read every document."""
    doc = Document.objects.filter(sha256=sha256).first()
    if doc is None:
        return None
    members = visible_members_of(user)
    if members is None or doc.uploaded_by_id == user.pk:
        return doc
    if doc.holders.filter(code__in=members).exists():
        return doc
    if visible_agreements(user).filter(document_sha256=sha256).exists():
        return doc
    return None


def _member_may_use(doc: Document, member: str) -> bool:
    """May ``member`` name ``doc`` in an agreement it proposes? If its delegates uploaded
    the bytes, or an agreement names them already."""
    return (
        doc.holders.filter(code=member).exists()
        or Agreement.objects.filter(document_sha256=doc.sha256).exists()
    )


def awaiting_signature(user) -> QuerySet[AgreementParty]:
    """The parties' rows of agreements that await a signature from ``user``'s member."""
    scope = acting_for(user)
    if not scope:
        return AgreementParty.objects.none()
    return AgreementParty.objects.filter(
        member_id=scope,
        signed_in__isnull=True,
        withdrawn_in__isnull=True,
        agreement__state__in=SIGNABLE_STATES,
    ).select_related("agreement")


# --- documents ---------------------------------------------------------------------------------


def document_store(*, actor, name: str, content: bytes, media_type: str = "") -> Document:
    """Store an agreement document under its SHA-256 (the same bytes twice: one file).

    The secretariat and members' signatories upload documents; the ledger carries only
    the hash, when an agreement is proposed.
    """
    scope = acting_for(actor)
    if scope is False:
        raise GovernanceError("only the secretariat or a member's signatory uploads documents", 403)
    if scope and not Member.objects.filter(code=scope, status=Member.Status.MEMBER).exists():
        raise GovernanceError(f"{scope} is not a member in good standing: it cannot act", 403)
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise GovernanceError("a document's name is 1-200 characters, with no / or \\")
    limit = settings.AGREEMENT_DOCUMENT_MAX_BYTES
    if not content:
        raise GovernanceError("the document is empty")
    if len(content) > limit:
        raise GovernanceError(f"the document is larger than {limit} bytes", 413)
    media_type = media_type or "application/octet-stream"
    if len(media_type) > 100 or "/" not in media_type:
        raise GovernanceError("media_type is a MIME type such as application/pdf")
    sha256 = hashlib.sha256(content).hexdigest()
    doc = Document.objects.filter(sha256=sha256).first()
    if doc is None:
        doc = Document(
            sha256=sha256, name=name, media_type=media_type, size=len(content), uploaded_by=actor
        )
        doc.file.save(sha256, ContentFile(content), save=False)
        try:
            with transaction.atomic():
                doc.save()
        except IntegrityError:
            # Uploaded concurrently by someone else: same bytes, same name on disk.
            doc = Document.objects.get(sha256=sha256)
    if scope:
        # Whoever uploads the bytes holds them already: they may read the stored copy.
        doc.holders.add(scope)
    return doc


# --- checks shared by the services and the client-signed submissions ----------------------------


def _members_in_standing() -> set[str]:
    return set(Member.objects.filter(status=Member.Status.MEMBER).values_list("code", flat=True))


def check_proposal(payload: dict, proposer: str | None) -> None:
    """Is ``payload`` a valid ``agreement.proposed`` for ``proposer`` (a member code, or
    ``None`` for the secretariat) against the agreements as they stand now?"""
    fields = {
        "agreement",
        "series",
        "version",
        "kind",
        "title",
        "terms",
        "terms_sha256",
        "document",
        "supersedes",
    }
    if not isinstance(payload, dict) or set(payload) != fields:
        raise GovernanceError(f"agreement.proposed payload is {{{', '.join(sorted(fields))}}}")
    _uuid(payload["agreement"], "agreement")
    _uuid(payload["series"], "series")
    if not isinstance(payload["title"], str) or not 0 < len(payload["title"]) <= 300:
        raise GovernanceError("an agreement needs a title of at most 300 characters")
    if payload["kind"] not in Agreement.Kind.values:
        raise GovernanceError(f"kind must be one of {', '.join(Agreement.Kind.values)}")
    terms = check_terms(payload["kind"], payload["terms"], _members_in_standing())
    if payload["terms_sha256"] != terms_hash(terms):
        raise GovernanceError("terms_sha256 is not the SHA-256 of the terms' JCS form")
    if proposer is not None and proposer not in terms["parties"]:
        raise GovernanceError(f"{proposer} proposes only agreements it is a party to", 403)
    doc = payload["document"]
    if not isinstance(doc, dict) or set(doc) != {"sha256", "name", "size"}:
        raise GovernanceError("document is {sha256, name, size}")
    stored = None
    if isinstance(doc["sha256"], str):
        stored = Document.objects.filter(sha256=doc["sha256"]).first()
    if stored is None:
        raise GovernanceError("upload the document first: no stored document has that SHA-256")
    if proposer is not None and not _member_may_use(stored, proposer):
        raise GovernanceError("upload the document first: no stored document has that SHA-256")
    if (doc["name"], doc["size"]) != (stored.name, stored.size):
        raise GovernanceError("document name and size must be those of the stored document")
    if Agreement.objects.filter(id=payload["agreement"]).exists():
        raise GovernanceError("that agreement already exists", 409)
    version = payload["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise GovernanceError("version is a whole number")
    if payload["supersedes"] is None:
        if version != 1 or payload["series"] != payload["agreement"]:
            raise GovernanceError("a new agreement is version 1, its series its own id")
        return
    old = Agreement.objects.filter(id=_uuid(payload["supersedes"], "supersedes")).first()
    if old is None:
        raise GovernanceError("supersedes names no agreement", 404)
    if proposer is not None and not old.parties.filter(member_id=proposer).exists():
        raise GovernanceError(f"{proposer} is not a party to the agreement it would amend", 403)
    if old.state != Agreement.State.IN_FORCE:
        raise GovernanceError(
            f"only an agreement in force is amended; this one is {old.state}", 409
        )
    if old.kind != payload["kind"]:
        raise GovernanceError("an amendment keeps its agreement's kind")
    pending = Agreement.objects.filter(series=old.series, state__in=OPEN_STATES).first()
    if pending is not None:
        raise GovernanceError(
            f"version {pending.version} of this agreement is still open: terminate it first", 409
        )
    latest = Agreement.objects.filter(series=old.series).aggregate(v=Max("version"))["v"]
    if payload["series"] != str(old.series) or version != latest + 1:
        raise GovernanceError(f"an amendment is version {latest + 1} of series {old.series}")
    # No party can be bound by an amendment it did not sign, nor released from the
    # version it signed by one: every party bound now is a required party of the next.
    bound = _bound_parties(old)
    missing = bound - set(required_parties(terms))
    if missing:
        raise GovernanceError(
            "an amendment needs the signatures of every party bound by the version it "
            f"amends: make {', '.join(sorted(missing))} required parties"
        )


def check_signature(agreement: Agreement, member: str, terms_sha256, document_sha256) -> None:
    party = agreement.parties.filter(member_id=member).first()
    if party is None:
        raise GovernanceError(f"{member} is not a party to this agreement", 403)
    if agreement.state not in SIGNABLE_STATES:
        raise GovernanceError(f"the agreement is {agreement.state}", 409)
    if party.withdrawn_in is not None:
        raise GovernanceError(f"{member} has withdrawn from this agreement", 409)
    if party.signed_in is not None:
        raise GovernanceError(f"{member} has already signed", 409)
    for given, actual, what in (
        (terms_sha256, agreement.terms_sha256, "terms"),
        (document_sha256, agreement.document_sha256, "document"),
    ):
        if not isinstance(given, str) or not _HEX64.fullmatch(given):
            raise GovernanceError(f"{what}_sha256 is 64 lowercase hex digits")
        if given != actual:
            raise GovernanceError(
                f"the {what} hash you signed is not this agreement's: read it again", 409
            )


def check_withdrawal(agreement: Agreement, member: str, reason) -> None:
    if not isinstance(reason, str) or len(reason) > 300:
        raise GovernanceError("reason is a string of at most 300 characters")
    party = agreement.parties.filter(member_id=member).first()
    if party is None:
        raise GovernanceError(f"{member} is not a party to this agreement", 403)
    if agreement.state not in SIGNABLE_STATES:
        raise GovernanceError(f"the agreement is {agreement.state}", 409)
    if party.withdrawn_in is not None:
        raise GovernanceError(f"{member} has already withdrawn", 409)


def _get(agreement_id) -> Agreement:
    agreement = Agreement.objects.filter(id=agreement_id).first()
    if agreement is None:
        raise GovernanceError("no such agreement", 404)
    return agreement


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
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    agreement_id = uuid.uuid4()
    if entry_id is not None:
        agreement_id = keyed_uuid(entry_id)
        done = Agreement.objects.filter(id=agreement_id).first()
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
        "terms_sha256": _hash_or_empty(terms),
        "document": {"sha256": doc.sha256, "name": doc.name, "size": doc.size},
        "supersedes": str(supersedes.id) if supersedes else None,
    }
    with transaction.atomic(durable=True):
        if supersedes is not None:
            # Two amendments of one version, or an amendment and a termination, in turn.
            Agreement.objects.select_for_update().get(id=supersedes.id)
        check_proposal(payload, member)
        ledger.entry_append(
            signer=signer, entry_id=entry_id, kind="agreement.proposed", payload=payload
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
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    signer, member = acting_signer(actor)
    if member is None:
        raise GovernanceError("the secretariat does not sign agreements; parties do", 403)
    payload = {
        "agreement": str(agreement.id),
        "terms_sha256": terms_sha256,
        "document_sha256": document_sha256,
    }
    if entry_id is not None:
        done = Entry.objects.filter(entry_id=entry_id).first()
        if done is not None:
            if done.payload != payload:
                raise GovernanceError("this Idempotency-Key was used for another signature", 409)
            return AgreementParty.objects.get(id=_party_id(agreement.id, member))
    with transaction.atomic(durable=True):
        agreement = Agreement.objects.select_for_update().get(id=agreement.id)
        check_signature(agreement, member, terms_sha256, document_sha256)
        ledger.entry_append(
            signer=signer, entry_id=entry_id, kind="agreement.signed", payload=payload
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
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    payload = {"agreement": str(agreement.id), "reason": reason}
    if replay_of(entry_id, "agreement.withdrawn", payload):
        return AgreementParty.objects.get(id=_party_id(agreement.id, member))
    with transaction.atomic(durable=True):
        agreement = Agreement.objects.select_for_update().get(id=agreement.id)
        check_withdrawal(agreement, member, reason)
        ledger.entry_append(
            signer=signer, kind="agreement.withdrawn", entry_id=entry_id, payload=payload
        )
    return AgreementParty.objects.get(id=_party_id(agreement.id, member))


def agreement_terminate(
    *, actor, agreement: Agreement, reason: str, idempotency_key: str | None = None
) -> Agreement:
    """Abandon an agreement that has not entered into force (the secretariat)."""
    if acting_for(actor) is not None:
        raise GovernanceError("the secretariat abandons agreements not yet in force", 403)
    if not isinstance(reason, str) or not 0 < len(reason) <= 300:
        raise GovernanceError("give a reason of at most 300 characters")
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    payload = {"agreement": str(agreement.id), "reason": reason}
    if replay_of(entry_id, "agreement.terminated", payload):
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
            entry_id=entry_id,
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


# --- entries members sign with their own keys (POST /api/v1/ledger/entries) --------------------


def _submitting_member(key, submitter) -> str:
    if key.kind != "member" or not submissions.may_act_for(submitter, key.owner):
        raise submissions.Refused(f"you may not act for {key.owner}", 403)
    if not Member.objects.filter(code=key.owner, status=Member.Status.MEMBER).exists():
        raise submissions.Refused(f"{key.owner} is not a member in good standing", 403)
    return key.owner


def _refusing(fn, *args) -> None:
    try:
        fn(*args)
    except GovernanceError as exc:
        raise submissions.Refused(str(exc), exc.status) from exc


def _submitted_agreement(payload) -> Agreement:
    if not isinstance(payload, dict) or "agreement" not in payload:
        raise submissions.Refused("the payload names the agreement")
    _refusing(_uuid, payload["agreement"], "agreement")
    agreement = Agreement.objects.filter(id=payload["agreement"]).first()
    if agreement is None:
        raise submissions.Refused("no such agreement", 404)
    return agreement


@submissions.accepts("agreement.proposed")
def _submitted_proposal(signed, key, submitter) -> None:
    member = _submitting_member(key, submitter)
    _refusing(check_proposal, signed.envelope["payload"], member)


@submissions.accepts("agreement.signed")
def _submitted_signature(signed, key, submitter) -> None:
    member = _submitting_member(key, submitter)
    payload = signed.envelope["payload"]
    if set(payload) != {"agreement", "terms_sha256", "document_sha256"}:
        raise submissions.Refused(
            "agreement.signed payload is {agreement, terms_sha256, document_sha256}"
        )
    agreement = _submitted_agreement(payload)
    _refusing(
        check_signature, agreement, member, payload["terms_sha256"], payload["document_sha256"]
    )


@submissions.then("agreement.signed")
def _after_submitted_signature(entry: Appended) -> None:
    # As for a signature through the services: one that completes an agreement already
    # effective brings it into force at once.
    _enter_into_force_if_due(uuid.UUID(entry.payload["agreement"]))


@submissions.accepts("agreement.withdrawn")
def _submitted_withdrawal(signed, key, submitter) -> None:
    member = _submitting_member(key, submitter)
    payload = signed.envelope["payload"]
    if set(payload) != {"agreement", "reason"}:
        raise submissions.Refused("agreement.withdrawn payload is {agreement, reason}")
    _refusing(check_withdrawal, _submitted_agreement(payload), member, payload["reason"])
