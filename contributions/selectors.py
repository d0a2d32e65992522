"""Reads and visibility of contributions: what a user may see, who confirms a member's
payments, who may dispute whose contributions, a facility's key. Used by the services,
the admin and the API; nothing here writes."""

from __future__ import annotations

from django.db.models import QuerySet

from consortium.governance.changes import SECRETARIAT_OWNER
from consortium.governance.models import Agreement, AgreementParty
from consortium.governance.selectors import recording_for, visible_members_of
from contributions.models import Contribution, Dispute, Facility
from ledger.services import Key


def visible_contributions(user, qs: QuerySet | None = None) -> QuerySet[Contribution]:
    """The contributions (of ``qs``, by default all) ``user`` may list: its member's;
    every one for the secretariat and auditors."""
    members = visible_members_of(user)
    qs = Contribution.objects.all() if qs is None else qs
    return qs if members is None else qs.filter(member__in=members)


def awaiting_treasurer(user) -> QuerySet[Contribution] | None:
    """The pending payments of other members that ``user``'s member confirms as their
    treasurer (``None`` when there are none, or when ``user`` sees every contribution)."""
    member = recording_for(user)
    if member is None or visible_members_of(user) is None:
        return None
    pending = Contribution.objects.filter(
        kind=Contribution.Kind.FUNDS, state=Contribution.State.PENDING
    )
    owed = [
        m
        for m in pending.exclude(member_id=member).values_list("member_id", flat=True).distinct()
        if treasurer_of(m) == member
    ]
    return pending.filter(member__in=owed) if owed else None


def facilities_run_by(user) -> QuerySet[Facility]:
    """The facilities whose accounting ``user`` imports: those its member operates."""
    member = recording_for(user)
    return Facility.objects.filter(operator_id=member) if member else Facility.objects.none()


def facility_key(facility: Facility) -> Key | None:
    """The facility's valid key (the newest, if it has several)."""
    return (
        Key.objects.filter(kind="facility", owner=facility.code, revoked_at__isnull=True)
        .order_by("-registered_in")
        .first()
    )


def treasurer_of(member: str) -> str:
    """Who confirms ``member``'s payments against its books: the ``treasurer`` named by
    the latest treaty in force that binds ``member`` (a member code, or the secretariat,
    the default), and the secretariat for the treasurer's own payments."""
    treaty = (
        Agreement.objects.filter(
            kind=Agreement.Kind.TREATY,
            state=Agreement.State.IN_FORCE,
            parties__member_id=member,
            parties__signed_in__isnull=False,
            parties__withdrawn_in__isnull=True,
        )
        .order_by("-in_force_in")
        .first()
    )
    named = (treaty.terms.get("treasurer") if treaty is not None else None) or SECRETARIAT_OWNER
    return SECRETARIAT_OWNER if named == member else named


def bound_together(member: str, other: str) -> bool:
    """Are ``member`` and ``other`` both bound (signed, not withdrawn) by one agreement in
    force that shares cost? Only then may one dispute the other's contributions."""
    bound = AgreementParty.objects.filter(
        agreement__state=Agreement.State.IN_FORCE,
        signed_in__isnull=False,
        withdrawn_in__isnull=True,
    )
    mine = set(bound.filter(member_id=member).values_list("agreement_id", flat=True))
    shared = bound.filter(member_id=other, agreement_id__in=mine).values_list(
        "agreement__terms", flat=True
    )
    return any("cost_sharing" in terms for terms in shared)


def open_dispute_of(contribution) -> Dispute | None:
    return Dispute.objects.filter(contribution=contribution, resolved_in__isnull=True).first()
