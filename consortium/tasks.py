"""Background work of governance."""

from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)


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
        except Exception:
            # One proposal that cannot be decided must not hold up the others.
            log.exception("could not decide proposal %s", proposal.id)
            continue
        decided.append(str(proposal.id))
    return decided


@shared_task(name="consortium.advance_agreements", ignore_result=True)
def advance_agreements() -> dict[str, list[str]]:
    """Bring signed agreements into force on their effective date; expire ended ones."""
    from consortium import agreements

    return agreements.agreements_advance()


@shared_task(name="consortium.verify_checkpoints", ignore_result=True)
def verify_checkpoints(digest: str | None = None) -> dict[str, list[str]]:
    """Re-hash stored checkpoint files (one checkpoint, or every published one); block
    any whose files no longer match their manifest."""
    from consortium import checkpoints

    return checkpoints.checkpoints_verify(digest)


# Acknowledged late and requeued if its worker dies: the build claims the export, so a
# second delivery while the first is at work does nothing.
@shared_task(
    name="consortium.audit_export", ignore_result=True, acks_late=True, reject_on_worker_lost=True
)
def audit_export(export_id: str) -> str:
    """Build an audit export; its progress is kept on the export's row."""
    from consortium import audit

    try:
        return audit.audit_export_build(export_id).status
    except Exception:
        # The export's row holds the error, for the admin and the API to show.
        log.exception("audit export %s failed", export_id)
        return "failed"


@shared_task(name="consortium.prune_idempotent_responses", ignore_result=True)
def prune_idempotent_responses() -> int:
    """Forget the kept answers of writes older than IDEMPOTENCY_KEEP_DAYS."""
    from consortium import idempotency

    return idempotency.prune()
