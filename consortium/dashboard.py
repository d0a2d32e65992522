"""The admin's front page: what a seat holder's member has to do, where it stands, what it
may download, what the ledger recorded about it and how its witness fares; for the
secretariat, the same across the consortium.

Everything is read here, in a bounded number of queries whatever the size of the log:
entries are found by the indexed columns that name them (their author key) and by the
entry indexes the projections keep (``assigned_in``, ``recorded_in``, ``authorized_in``...),
never by reading leaves; the checkpoints decided are the latest ``DOWNLOAD_ROWS``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils.safestring import mark_safe

from consortium.access.entitlements import entitlement
from consortium.access.models import DownloadAuthorization, ModelCheckpoint
from consortium.governance import selectors
from consortium.governance.models import (
    AccessGrant,
    Agreement,
    AgreementParty,
    Member,
    Proposal,
    Seat,
    Vote,
)
from consortium.governance.terms import ACCESS_SCOPES
from contributions.chart import cost_share_svg
from contributions.models import Contribution, Dispute
from contributions.report import ReportError, cost_share_report
from ledger.services import (
    Entry,
    EnvelopeError,
    Key,
    Witness,
    parse_time,
    tree_size,
    witness_alarm_count,
    witness_status,
)

RECENT_ENTRIES = 10


def _when(rfc3339: str) -> datetime | None:
    try:
        return parse_time(rfc3339)
    except EnvelopeError:
        return None


@dataclass
class Balance:
    """A member's line (or every line) of one agreement's cost-share report."""

    agreement: Agreement
    report: dict | None = None
    error: str = ""
    lines: list[dict] = field(default_factory=list)

    @property
    def chart(self) -> str:
        return mark_safe(cost_share_svg(self.report)) if self.report else ""  # noqa: S308  (escaped in chart.py)


def _cost_sharing_agreements(member: str | None) -> list[Agreement]:
    """Agreements in force that share costs: those binding ``member``, or all."""
    qs = Agreement.objects.filter(state=Agreement.State.IN_FORCE).order_by("proposed_in")
    if member is not None:
        qs = qs.filter(
            parties__member_id=member,
            parties__signed_in__isnull=False,
            parties__withdrawn_in__isnull=True,
        )
    return [a for a in qs if a.terms.get("cost_sharing")]


def balances(member: str | None) -> list[Balance]:
    """The cost-share report of each agreement in force that shares costs (binding
    ``member``, or all): its lines for ``member`` (or every line) and its chart."""
    out = []
    for agreement in _cost_sharing_agreements(member):
        try:
            report = cost_share_report(agreement).as_dict()
        except ReportError as exc:
            out.append(Balance(agreement, error=str(exc)))
            continue
        lines = [m for m in report["members"] if member is None or m["member"] == member]
        out.append(Balance(agreement, report=report, lines=lines))
    return out


DOWNLOAD_ROWS = 20


def downloads(member: str) -> list[dict]:
    """Per checkpoint (the latest ``DOWNLOAD_ROWS``) and scope: may ``member`` download
    it, and why; each balance ratio behind the decisions is computed once."""
    checkpoints = ModelCheckpoint.objects.select_related("model__agreement").order_by(
        "-published_in"
    )[:DOWNLOAD_ROWS]
    ratios: dict = {}
    return [
        {
            "checkpoint": cp,
            "decisions": [entitlement(member, cp, scope, ratios=ratios) for scope in ACCESS_SCOPES],
        }
        for cp in checkpoints
    ]


def _concerning(member: str) -> list[int]:
    """The indexes of the latest entries that concern ``member``: signed by its keys, or
    naming it (as the projections recorded), newest first."""
    keys = list(Key.objects.filter(owner=member).values_list("fingerprint", flat=True))
    n = RECENT_ENTRIES
    # (rows, the column holding an entry index): the latest n of each, merged.
    sources = [
        (Entry.objects.filter(author__in=keys), "index"),
        (Seat.objects.filter(member_id=member), "assigned_in"),
        (Seat.objects.filter(member_id=member, vacated_in__isnull=False), "vacated_in"),
        (AgreementParty.objects.filter(member_id=member), "agreement__proposed_in"),
        (Contribution.objects.filter(member_id=member), "recorded_in"),
        (Dispute.objects.filter(contribution__member_id=member), "opened_in"),
        (DownloadAuthorization.objects.filter(member_id=member), "authorized_in"),
        (AccessGrant.objects.filter(member_id=member), "granted_in"),
    ]
    found: set[int] = set(Member.objects.filter(code=member).values_list("changed_in", flat=True))
    for rows, column in sources:
        latest = rows.order_by(f"-{column}").values_list(column, flat=True)[:n]
        found.update(i for i in latest if i is not None)
    return sorted(found, reverse=True)[:n]


def recent_entries(member: str) -> list[Entry]:
    """The last entries that concern ``member`` (see :func:`_concerning`)."""
    indexes = _concerning(member)
    entries = list(Entry.objects.filter(index__in=indexes).defer("leaf_hash").order_by("-index"))
    for e in entries:
        e.at = _when(e.integrated_time)
    return entries


def witnesses(member: str) -> list[dict]:
    """The member's registered witnesses: the size and time it last cosigned, its last
    contact and error, and its alarms."""
    rows = list(Witness.objects.filter(member=member, retired_in__isnull=True).order_by("name"))
    if not rows:
        return []
    status = witness_status([w.name for w in rows])
    return [{"witness": w, **status[w.name]} for w in rows]


def awaiting(member: str) -> dict:
    """Agreements awaiting ``member``'s signature and proposals awaiting its vote."""
    proposals = list(selectors.votes_awaited(member))
    for p in proposals:
        p.deadline_at = _when(p.deadline)
    return {
        "agreements": [p.agreement for p in selectors.signatures_awaited(member)],
        "proposals": proposals,
    }


def member_dashboard(user) -> dict | None:
    """The dashboard of the member whose seat ``user`` holds (``None`` without one)."""
    seat = selectors.seat_of(user)
    if seat is None or seat.member_id is None:
        return None
    member = seat.member_id
    return {
        "member": seat.member,
        "seat": seat,
        "may_sign": seat.role == Seat.Role.SIGNATORY,
        **awaiting(member),
        "balances": balances(member),
        "downloads": downloads(member),
        "entries": recent_entries(member),
        "witnesses": witnesses(member),
    }


def consortium_dashboard(user) -> dict | None:
    """For the secretariat, auditors and superusers: every member's balances, the open
    proposals (and who has not voted), agreements awaiting signatures, witness alarms."""
    if not (
        user.is_superuser or selectors.is_staff_role(user, Seat.Role.SECRETARIAT, Seat.Role.AUDITOR)
    ):
        return None
    proposals = list(Proposal.objects.filter(state=Proposal.State.OPEN).order_by("deadline"))
    voted: dict = {}
    for pid, code in Vote.objects.filter(proposal__in=proposals).values_list(
        "proposal_id", "member_id"
    ):
        voted.setdefault(pid, set()).add(code)
    for p in proposals:
        p.deadline_at = _when(p.deadline)
        p.not_voted = sorted(set(p.eligible) - voted.get(p.id, set()))
    unsigned: dict = {}
    for party in AgreementParty.objects.filter(
        signed_in__isnull=True,
        withdrawn_in__isnull=True,
        agreement__state__in=selectors.OPEN_STATES,
    ).select_related("agreement"):
        unsigned.setdefault(party.agreement, []).append(party.member_id)
    return {
        "balances": balances(None),
        "proposals": proposals,
        "agreements": [(a, sorted(codes)) for a, codes in unsigned.items()],
        "alarms": witness_alarm_count(),
        "members": Member.objects.count(),
        "log_size": tree_size(),
    }
