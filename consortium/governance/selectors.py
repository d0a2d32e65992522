"""Reads of governance, and who may see and do what: the seat a user holds, whom it acts
for, which members' records and which agreements it may read, and what awaits a member.
The services, the admin, the API and the templates' context ask here."""

from __future__ import annotations

from django.db.models import QuerySet

from consortium.governance.models import (
    Agreement,
    AgreementParty,
    Document,
    Member,
    Proposal,
    Seat,
    SeatHolder,
)

# Agreements still collecting signatures, and those a party may still sign or leave.
OPEN_STATES = (Agreement.State.OPEN, Agreement.State.SIGNED)
SIGNABLE_STATES = (*OPEN_STATES, Agreement.State.IN_FORCE)


# --- seats: who acts for whom ------------------------------------------------------------------


def seat_of(user) -> Seat | None:
    """The active seat ``user`` holds, if any."""
    if user is None or not user.is_authenticated:
        return None
    holder = SeatHolder.objects.select_related("seat", "seat__member").filter(user=user).first()
    if holder is None or not holder.seat.active:
        return None
    return holder.seat


def member_of(user) -> str | None:
    """The member whose seat ``user`` holds (``None``: none, or a consortium-wide seat)."""
    seat = seat_of(user)
    return seat.member_id if seat is not None else None


def holds_a_seat(user) -> bool:
    return seat_of(user) is not None


def is_staff_role(user, *roles: str) -> bool:
    seat = seat_of(user)
    return seat is not None and seat.member_id is None and seat.role in roles


def visible_members_of(user) -> set[str] | None:
    """Members whose private records ``user`` may read: ``None`` means all of them."""
    if user.is_superuser or is_staff_role(user, Seat.Role.SECRETARIAT, Seat.Role.AUDITOR):
        return None
    seat = seat_of(user)
    return {seat.member_id} if seat is not None and seat.member_id else set()


def acting_for(user):
    """Whom ``user`` may act for: ``None`` for the secretariat (the consortium, any
    member), a member's code for that member's signatory, ``False`` for anyone else."""
    seat = seat_of(user)
    if seat is not None and seat.member_id is None and seat.role == Seat.Role.SECRETARIAT:
        return None
    if seat is not None and seat.role == Seat.Role.SIGNATORY:
        return seat.member_id
    return False


def recording_for(user) -> str | None:
    """The member ``user`` records contributions for: its recorder's or signatory's."""
    seat = seat_of(user)
    if seat is not None and seat.role in (Seat.Role.RECORDER, Seat.Role.SIGNATORY):
        return seat.member_id
    return None


def may_act_for(user, owner: str) -> bool:
    """A user may submit entries signed by ``owner``'s keys if it is ``owner``'s signatory."""
    seat = seat_of(user)
    return (
        seat is not None
        and seat.role == Seat.Role.SIGNATORY
        and seat.member_id == owner
        and seat.member.status == Member.Status.MEMBER
    )


# --- members -----------------------------------------------------------------------------------


def in_good_standing(code: str) -> bool:
    """Is ``code`` a member in good standing (neither an applicant, suspended nor gone)?"""
    return Member.objects.filter(code=code, status=Member.Status.MEMBER).exists()


def members_in_standing() -> set[str]:
    """The codes of the members in good standing."""
    return set(Member.objects.filter(status=Member.Status.MEMBER).values_list("code", flat=True))


# --- agreements and their documents ------------------------------------------------------------


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


def member_may_use(doc: Document, member: str) -> bool:
    """May ``member`` name ``doc`` in an agreement it proposes? If its delegates uploaded
    the bytes, or an agreement names them already."""
    return (
        doc.holders.filter(code=member).exists()
        or Agreement.objects.filter(document_sha256=doc.sha256).exists()
    )


# --- what awaits a member ----------------------------------------------------------------------


def signatures_awaited(member: str) -> QuerySet[AgreementParty]:
    """The parties' rows of agreements that await ``member``'s signature."""
    return AgreementParty.objects.filter(
        member_id=member,
        signed_in__isnull=True,
        withdrawn_in__isnull=True,
        agreement__state__in=SIGNABLE_STATES,
    ).select_related("agreement")


def awaiting_signature(user) -> QuerySet[AgreementParty]:
    """The parties' rows of agreements that await a signature from ``user``'s member."""
    scope = acting_for(user)
    if not scope:
        return AgreementParty.objects.none()
    return signatures_awaited(scope)


def votes_awaited(member: str) -> QuerySet[Proposal]:
    """Open proposals ``member`` may vote on and has not, soonest deadline first."""
    return (
        Proposal.objects.filter(state=Proposal.State.OPEN)
        .exclude(votes__member_id=member)
        .filter(eligible__has_key=member)
        .order_by("deadline")
    )
