"""Reads of audits: who may export what and see which exports, and what concerns a member
(the entries a member's audit export selects: its keys' entries, every governance
decision, entries that name it, the agreements it is party to, and entries about its
records by their ids)."""

from __future__ import annotations

import json
import uuid

from django.db.models import Q

from consortium.audit.models import AuditExport
from consortium.governance.changes import GovernanceError
from consortium.governance.models import AgreementParty, Seat
from consortium.governance.selectors import is_staff_role, seat_of
from contributions.models import Contribution, Dispute
from ledger.services import Key

# Entries about the whole consortium: every member's export holds them.
GOVERNANCE_KINDS = (
    "consortium.founded",
    "member.applied",
    "proposal.opened",
    "proposal.decided",
    "proposal.withdrawn",
)
MEMBER_FIELDS = ("member", "code", "party", "operator")
# Payload fields naming a record of a member by its id.
RECORD_FIELDS = ("contribution", "dispute", "import")
MEMBERS_FIELDS = ("members", "parties")


def _names(value, code: str) -> bool:
    """Does a payload name ``code`` as a member, a party, or in a list of them?"""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in MEMBER_FIELDS and v == code:
                return True
            if (
                k in MEMBERS_FIELDS
                and isinstance(v, list)
                and any(x == code or (isinstance(x, dict) and x.get("code") == code) for x in v)
            ):
                return True
            if isinstance(v, dict | list) and _names(v, code):
                return True
    elif isinstance(value, list):
        return any(_names(v, code) for v in value)
    return False


def _uid(value) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        return None


def concerns(code: str):
    """A predicate over (index, leaf bytes): does the entry concern member ``code``? Its
    keys' entries, governance decisions, entries that name it, its agreements, and
    entries about its records by their ids (disputes, resolutions, attestations)."""
    keys = set(Key.objects.filter(kind="member", owner=code).values_list("fingerprint", flat=True))
    agreements = {
        str(a)
        for a in AgreementParty.objects.filter(member_id=code).values_list(
            "agreement_id", flat=True
        )
    }
    mine = Contribution.objects.filter(member_id=code)
    records = (
        {str(i) for i in mine.values_list("id", flat=True)}
        | {str(i) for i in mine.exclude(import_id=None).values_list("import_id", flat=True)}
        | {
            str(i)
            for i in Dispute.objects.filter(
                Q(contribution__member_id=code) | Q(member_id=code)
            ).values_list("id", flat=True)
        }
    )
    needle = json.dumps(code).encode()

    def select(index: int, leaf: bytes) -> bool:
        envelope = json.loads(leaf)["entry"]
        if envelope["kind"] in GOVERNANCE_KINDS or envelope["author"] in keys:
            return True
        payload = envelope["payload"]
        if _uid(payload.get("agreement")) in agreements:
            return True
        if any(_uid(payload.get(f)) in records for f in RECORD_FIELDS if f in payload):
            return True
        return needle in leaf and _names(payload, code)

    return select


# --- who may export what ---------------------------------------------------------------------


def exporter_scope(actor) -> str | None:
    """``None`` if ``actor`` may export everything, else the one member it may export."""
    if actor is None or actor.is_superuser:
        return None
    if is_staff_role(actor, Seat.Role.SECRETARIAT, Seat.Role.AUDITOR):
        return None
    seat = seat_of(actor)
    if seat is None or not seat.member_id:
        raise GovernanceError(
            "audit exports are for auditors, the secretariat and members' delegates", 403
        )
    return seat.member_id


def may_read(actor, export: AuditExport) -> bool:
    """Whether ``actor`` may see ``export`` and fetch its file."""
    try:
        scope = exporter_scope(actor)
    except GovernanceError:
        return False
    return scope is None or export.member_id == scope


def visible_exports(actor):
    """The exports ``actor`` may see: every one, or its member's."""
    try:
        scope = exporter_scope(actor)
    except GovernanceError:
        return AuditExport.objects.none()
    qs = AuditExport.objects.select_related("member")
    return qs if scope is None else qs.filter(member_id=scope)
