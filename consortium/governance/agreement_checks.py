"""The checks an agreement's entries pass before they are appended, shared by the
services and by the entries members sign with their own keys: a proposal's payload
(its terms, its document, the version it amends), a signature, a withdrawal."""

from __future__ import annotations

import hashlib

from django.db.models import Max

from consortium.governance.changes import GovernanceError
from consortium.governance.models import Agreement, Document
from consortium.governance.selectors import (
    OPEN_STATES,
    SIGNABLE_STATES,
    in_good_standing,
    member_may_use,
    members_in_standing,
)
from consortium.governance.terms import check_terms, required_parties
from consortium.governance.validators import SHA256_RE, is_canonical_uuid
from ledger import services as ledger
from ledger.core.envelope import EnvelopeError, canonical, check_value

PROPOSAL_FIELDS = {
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


def terms_hash(terms: dict) -> str:
    """SHA-256 of the terms' JCS form: what each party signs, with the document hash."""
    return hashlib.sha256(canonical(terms)).hexdigest()


def hash_or_empty(terms) -> str:
    """The terms' hash, or "" for terms that cannot be canonicalised (the schema check
    that follows then names what is wrong with them)."""
    if not isinstance(terms, dict):
        return ""
    try:
        check_value(terms, "terms")
        return terms_hash(terms)
    except (EnvelopeError, RecursionError, ValueError):
        return ""


def canonical_uuid(value, what: str) -> str:
    if not is_canonical_uuid(value):
        raise GovernanceError(f"{what} must be a UUID in its canonical form (lowercase, hyphens)")
    return value


def bound_parties(agreement: Agreement) -> set[str]:
    """The parties bound by an agreement: those that signed and have not withdrawn."""
    return set(
        agreement.parties.filter(signed_in__isnull=False, withdrawn_in__isnull=True).values_list(
            "member_id", flat=True
        )
    )


def check_proposal(payload: dict, proposer: str | None) -> None:
    """Is ``payload`` a valid ``agreement.proposed`` for ``proposer`` (a member code, or
    ``None`` for the secretariat) against the agreements as they stand now?"""
    if not isinstance(payload, dict) or set(payload) != PROPOSAL_FIELDS:
        raise GovernanceError(
            f"agreement.proposed payload is {{{', '.join(sorted(PROPOSAL_FIELDS))}}}"
        )
    canonical_uuid(payload["agreement"], "agreement")
    canonical_uuid(payload["series"], "series")
    if not isinstance(payload["title"], str) or not 0 < len(payload["title"]) <= 300:
        raise GovernanceError("an agreement needs a title of at most 300 characters")
    if payload["kind"] not in Agreement.Kind.values:
        raise GovernanceError(f"kind must be one of {', '.join(Agreement.Kind.values)}")
    terms = check_terms(payload["kind"], payload["terms"], members_in_standing())
    if payload["terms_sha256"] != terms_hash(terms):
        raise GovernanceError("terms_sha256 is not the SHA-256 of the terms' JCS form")
    if proposer is not None and proposer not in terms["parties"]:
        raise GovernanceError(f"{proposer} proposes only agreements it is a party to", 403)
    _check_document(payload["document"], proposer)
    if Agreement.objects.filter(id=payload["agreement"]).exists():
        raise GovernanceError("that agreement already exists", 409)
    version = payload["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise GovernanceError("version is a whole number")
    if payload["supersedes"] is None:
        if version != 1 or payload["series"] != payload["agreement"]:
            raise GovernanceError("a new agreement is version 1, its series its own id")
        return
    _check_amendment(payload, terms, proposer)


def _check_document(doc, proposer: str | None) -> None:
    """The document is one stored here (and, for a member, one it may name)."""
    if not isinstance(doc, dict) or set(doc) != {"sha256", "name", "size"}:
        raise GovernanceError("document is {sha256, name, size}")
    stored = None
    if isinstance(doc["sha256"], str):
        stored = Document.objects.filter(sha256=doc["sha256"]).first()
    if stored is None:
        raise GovernanceError("upload the document first: no stored document has that SHA-256")
    if proposer is not None and not member_may_use(stored, proposer):
        raise GovernanceError("upload the document first: no stored document has that SHA-256")
    if (doc["name"], doc["size"]) != (stored.name, stored.size):
        raise GovernanceError("document name and size must be those of the stored document")


def _check_amendment(payload: dict, terms: dict, proposer: str | None) -> None:
    """An amendment is the next version of an agreement in force, of its kind, and needs
    every party bound by that version."""
    old = Agreement.objects.filter(id=canonical_uuid(payload["supersedes"], "supersedes")).first()
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
    if payload["series"] != str(old.series) or payload["version"] != latest + 1:
        raise GovernanceError(f"an amendment is version {latest + 1} of series {old.series}")
    # No party can be bound by an amendment it did not sign, nor released from the
    # version it signed by one: every party bound now is a required party of the next.
    missing = bound_parties(old) - set(required_parties(terms))
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
        if not isinstance(given, str) or not SHA256_RE.fullmatch(given):
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


# --- entries members sign with their own keys (POST /api/v1/ledger/entries) ----------------------


def _submitting_member(key, submitter) -> str:
    if key.kind != "member" or not ledger.may_act_for(submitter, key.owner):
        raise ledger.Refused(f"you may not act for {key.owner}", 403)
    if not in_good_standing(key.owner):
        raise ledger.Refused(f"{key.owner} is not a member in good standing", 403)
    return key.owner


def _refusing(fn, *args) -> None:
    try:
        fn(*args)
    except GovernanceError as exc:
        raise ledger.Refused(str(exc), exc.status) from exc


def _submitted_agreement(payload) -> Agreement:
    if not isinstance(payload, dict) or "agreement" not in payload:
        raise ledger.Refused("the payload names the agreement")
    _refusing(canonical_uuid, payload["agreement"], "agreement")
    agreement = Agreement.objects.filter(id=payload["agreement"]).first()
    if agreement is None:
        raise ledger.Refused("no such agreement", 404)
    return agreement


@ledger.accepts("agreement.proposed")
def _submitted_proposal(signed, key, submitter) -> None:
    member = _submitting_member(key, submitter)
    _refusing(check_proposal, signed.envelope["payload"], member)


@ledger.accepts("agreement.signed")
def _submitted_signature(signed, key, submitter) -> None:
    member = _submitting_member(key, submitter)
    payload = signed.envelope["payload"]
    if set(payload) != {"agreement", "terms_sha256", "document_sha256"}:
        raise ledger.Refused(
            "agreement.signed payload is {agreement, terms_sha256, document_sha256}"
        )
    agreement = _submitted_agreement(payload)
    _refusing(
        check_signature, agreement, member, payload["terms_sha256"], payload["document_sha256"]
    )


@ledger.accepts("agreement.withdrawn")
def _submitted_withdrawal(signed, key, submitter) -> None:
    member = _submitting_member(key, submitter)
    payload = signed.envelope["payload"]
    if set(payload) != {"agreement", "reason"}:
        raise ledger.Refused("agreement.withdrawn payload is {agreement, reason}")
    _refusing(check_withdrawal, _submitted_agreement(payload), member, payload["reason"])
