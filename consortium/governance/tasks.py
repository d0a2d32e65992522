"""Background work of governance: deciding due proposals, advancing agreements."""

from __future__ import annotations

import logging

from celery import shared_task

# The notices' task lives beside what it tells; imported here so a worker registers it.
from consortium.governance.notifications import send_notice  # noqa: F401

log = logging.getLogger(__name__)


@shared_task(name="consortium.decide_due_proposals", ignore_result=True)
def decide_due_proposals() -> list[str]:
    """Decide every open proposal whose deadline has passed; return their ids."""
    from consortium.governance import proposals
    from consortium.governance.changes import GovernanceError

    decided = []
    for proposal in proposals.proposals_due():
        try:
            proposals.proposal_decide(proposal=proposal)
        except GovernanceError:
            continue  # decided or withdrawn meanwhile by another worker
        except Exception:
            # One proposal that cannot be decided must not hold up the others.
            log.exception("could not decide proposal %s", proposal.id)
            continue
        decided.append(str(proposal.id))
    return decided


@shared_task(name="consortium.advance_agreements", ignore_result=True)
def advance_agreements() -> dict[str, list[str]]:
    """Bring signed agreements into force on their effective date; expire ended ones."""
    from consortium.governance import agreements

    return agreements.agreements_advance()
