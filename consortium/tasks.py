"""Background work of governance."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="consortium.decide_due_proposals", ignore_result=True)
def decide_due_proposals() -> list[str]:
    """Decide every open proposal whose deadline has passed; return their ids."""
    from consortium import proposals
    from consortium.governance import GovernanceError

    decided = []
    for proposal in proposals.proposals_due():
        try:
            proposals.proposal_decide(proposal=proposal)
        except GovernanceError:
            continue  # decided or withdrawn meanwhile by another worker
        decided.append(str(proposal.id))
    return decided
