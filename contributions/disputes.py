"""Disputes: a member bound with another by an agreement that shares cost disputes one of
its contributions; the secretariat resolves.

Entry kinds, each with one applier:

``contribution.disputed`` (the key of a member bound with the contribution's member by an
agreement in force that shares cost)
    ``{"dispute": uuid, "contribution": uuid, "reason"}``: one open dispute per
    contribution; the contribution keeps its state (and counts, if counted) meanwhile.
``contribution.resolved`` (the secretariat key)
    ``{"dispute": uuid, "outcome": "upheld" | "dismissed", "resolution"}``: an upheld
    dispute voids the contribution; a dismissed one leaves it as it was.
"""

from __future__ import annotations

import uuid

from django.db import transaction

from consortium.governance import notifications
from consortium.governance.changes import (
    GovernanceError,
    acting_signer,
    by_secretariat,
    idempotency,
    secretariat_signer,
)
from consortium.governance.selectors import acting_for
from contributions.balances import tallied
from contributions.common import member_key_owner, text
from contributions.models import Contribution, Dispute
from contributions.selectors import bound_together, open_dispute_of
from ledger import services as ledger
from ledger.services import Appended, applier

DISPUTABLE = (Contribution.State.COUNTED, Contribution.State.REPORTED, Contribution.State.PENDING)


def contribution_dispute(
    *, actor, contribution: Contribution, reason: str, idempotency_key: str | None = None
) -> Dispute:
    """A member disputes a contribution (its signatory, for a member bound with the
    contribution's member by an agreement in force that shares cost): signed with the
    disputing member's key, reason included. The contribution keeps counting until the
    secretariat upholds the dispute; one open dispute per contribution."""
    signer, member = acting_signer(actor)
    if member is None:
        raise GovernanceError("members dispute contributions; the secretariat resolves", 403)
    text(reason, "reason", 500)
    if not bound_together(member, contribution.member_id):
        raise GovernanceError(
            f"only a signatory of a member bound with {contribution.member_id} by an agreement "
            "in force that shares cost disputes its contributions",
            403,
        )
    idem = idempotency(actor, idempotency_key)
    payload = {
        "dispute": str(idem.new_id()),
        "contribution": str(contribution.id),
        "reason": reason,
    }
    if idem.earlier("contribution.disputed", payload):
        return Dispute.objects.get(id=payload["dispute"])
    with transaction.atomic(durable=True):
        locked = Contribution.objects.select_for_update().get(id=contribution.id)
        if locked.state not in DISPUTABLE:
            raise GovernanceError(f"the contribution is {locked.state}", 409)
        current = open_dispute_of(locked)
        if current is not None:
            raise GovernanceError(
                f"the contribution is under dispute {current.id} already (opened by "
                f"{current.member_id} at entry {current.opened_in}): one open dispute at a time",
                409,
            )
        ledger.entry_append(
            signer=signer, entry_id=idem.entry_id, kind="contribution.disputed", payload=payload
        )
    return Dispute.objects.get(id=payload["dispute"])


def dispute_resolve(
    *, actor, dispute: Dispute, outcome: str, resolution: str, idempotency_key: str | None = None
) -> Dispute:
    """The secretariat resolves a dispute: upheld voids the contribution; dismissed
    leaves it as it was."""
    if acting_for(actor) is not None:
        raise GovernanceError("the secretariat resolves disputes", 403)
    if outcome not in ("upheld", "dismissed"):
        raise GovernanceError("outcome: upheld or dismissed")
    text(resolution, "resolution", 500)
    idem = idempotency(actor, idempotency_key)
    payload = {"dispute": str(dispute.id), "outcome": outcome, "resolution": resolution}
    if idem.earlier("contribution.resolved", payload):
        dispute.refresh_from_db()
        return dispute
    with transaction.atomic(durable=True):
        locked = Dispute.objects.select_for_update().get(id=dispute.id)
        if locked.resolved_in is not None:
            raise GovernanceError("the dispute is resolved already", 409)
        ledger.entry_append(
            signer=secretariat_signer(),
            kind="contribution.resolved",
            entry_id=idem.entry_id,
            payload=payload,
        )
    dispute.refresh_from_db()
    return dispute


@applier("contribution.disputed")
def apply_disputed(entry: Appended) -> None:
    p = entry.payload
    member = member_key_owner(entry)
    contribution = Contribution.objects.filter(id=uuid.UUID(p["contribution"])).first()
    if member is None or contribution is None or contribution.state not in DISPUTABLE:
        return
    if Dispute.objects.filter(id=uuid.UUID(p["dispute"])).exists():
        return
    if open_dispute_of(contribution) is not None:
        return  # one open dispute at a time: on the record, without effect
    if not bound_together(member, contribution.member_id):
        return
    dispute = Dispute.objects.create(
        id=uuid.UUID(p["dispute"]),
        contribution=contribution,
        member_id=member,
        reason=p["reason"],
        opened_in=entry.index,
    )
    with tallied(Contribution.objects.filter(id=contribution.id)):
        Contribution.objects.filter(id=contribution.id).update(disputed=True)
    notifications.on_dispute_opened(dispute)


@applier("contribution.resolved")
def apply_resolved(entry: Appended) -> None:
    p = entry.payload
    dispute = Dispute.objects.filter(id=uuid.UUID(p["dispute"]), resolved_in__isnull=True).first()
    if dispute is None or not by_secretariat(entry.author):
        return
    Dispute.objects.filter(id=dispute.id).update(
        outcome=p["outcome"], resolution=p["resolution"], resolved_in=entry.index
    )
    changes = {"disputed": False}
    if p["outcome"] == "upheld":
        changes["state"] = Contribution.State.VOID
    with tallied(Contribution.objects.filter(id=dispute.contribution_id)):
        Contribution.objects.filter(id=dispute.contribution_id).update(**changes)
