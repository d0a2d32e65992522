"""Votes on proposals.

``vote.cast`` (a member's key; its one applier is here)
    ``{"proposal": uuid, "choice": "yes" | "no" | "abstain"}``; a later vote by the
    same member replaces its earlier one. Votes integrated after the deadline are not
    counted. Members with keys of their own sign and submit it themselves.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from django.db import transaction

from consortium.governance.changes import GovernanceError, acting_signer, idempotency
from consortium.governance.models import Member, Proposal, Vote
from consortium.governance.validators import is_canonical_uuid
from consortium.governance.voting import CHOICES
from ledger import services as ledger
from ledger.core.envelope import parse_time
from ledger.services import Appended, Key, applier, projection

projection(Vote)


@applier("vote.cast")
def apply_vote(entry: Appended) -> None:
    p = entry.payload
    key = Key.objects.get(fingerprint=entry.author)
    member = key.owner
    proposal = Proposal.objects.filter(id=uuid.UUID(p["proposal"])).first()
    # A vote that reaches the log after the deadline, on a closed proposal, by a key
    # other than a member's, or from a member not eligible changes nothing (it stays
    # on the record, uncounted).
    if (
        proposal is None
        or key.kind != "member"
        or proposal.state != Proposal.State.OPEN
        or parse_time(entry.integrated_time) > parse_time(proposal.deadline)
        or member not in proposal.eligible
    ):
        return
    Vote.objects.update_or_create(
        id=f"{proposal.id}:{member}",
        defaults={
            "proposal_id": proposal.id,
            "member_id": member,
            "choice": p["choice"],
            "cast_in": entry.index,
            "cast_at": entry.integrated_time,
        },
    )


def vote_cast(
    *, actor, proposal: Proposal, choice: str, idempotency_key: str | None = None
) -> Vote:
    """Cast (or change) the actor's member's vote. With ``idempotency_key``, a retry
    returns the vote the first request cast (from its entry: a later vote may have
    replaced it since)."""
    idem = idempotency(actor, idempotency_key)
    done = idem.entry()
    if done is not None:
        if done.payload != {"proposal": str(proposal.id), "choice": choice}:
            raise GovernanceError("this Idempotency-Key was used for another vote", 409)
        member = Key.objects.get(fingerprint=done.author).owner
        return Vote(
            id=f"{proposal.id}:{member}",
            proposal=proposal,
            member_id=member,
            choice=choice,
            cast_in=done.index,
            cast_at=done.integrated_time,
        )
    if choice not in CHOICES:
        raise GovernanceError(f"a vote is {', '.join(CHOICES)}")
    signer, member = acting_signer(actor)
    if member is None:
        raise GovernanceError("the secretariat does not vote; members do", 403)
    proposal.refresh_from_db()
    if proposal.state != Proposal.State.OPEN:
        raise GovernanceError(f"the proposal is {proposal.state}", 409)
    if datetime.now(UTC) >= parse_time(proposal.deadline):
        raise GovernanceError("the deadline has passed", 409)
    if member not in proposal.eligible:
        raise GovernanceError(f"{member} may not vote on this proposal", 403)
    with transaction.atomic(durable=True):
        entry = ledger.entry_append(
            signer=signer,
            entry_id=idem.entry_id,
            kind="vote.cast",
            payload={"proposal": str(proposal.id), "choice": choice},
        )
        vote = Vote.objects.filter(id=f"{proposal.id}:{member}").first()
        if vote is None or vote.cast_in != entry.index:
            # Integrated after the deadline (or after the proposal closed): the vote
            # would not count, so it is not written at all.
            raise GovernanceError("the deadline has passed", 409)
    return vote


# --- votes members sign with their own keys (POST /api/v1/ledger/entries) ------------------


@ledger.accepts("vote.cast")
def _submitted_vote(signed, key, submitter) -> None:
    payload = signed.envelope["payload"]
    if set(payload) != {"proposal", "choice"} or payload["choice"] not in CHOICES:
        raise ledger.Refused("vote.cast payload is {proposal, choice: yes | no | abstain}")
    if key.kind != "member" or not ledger.may_act_for(submitter, key.owner):
        raise ledger.Refused(f"you may not vote for {key.owner}", 403)
    member = Member.objects.filter(code=key.owner).first()
    if member is None or member.status != Member.Status.MEMBER:
        raise ledger.Refused(f"{key.owner} is not a member in good standing", 403)
    if not is_canonical_uuid(payload["proposal"]):
        raise ledger.Refused("proposal must be a UUID in its canonical form (lowercase, hyphens)")
    proposal = Proposal.objects.filter(id=payload["proposal"]).first()
    if proposal is None:
        raise ledger.Refused("no such proposal", 404)
    if proposal.state != Proposal.State.OPEN:
        raise ledger.Refused(f"the proposal is {proposal.state}", 409)
    if datetime.now(UTC) >= parse_time(proposal.deadline):
        raise ledger.Refused("the deadline has passed", 409)
    if member.code not in proposal.eligible:
        raise ledger.Refused(f"{member.code} may not vote on this proposal", 403)
