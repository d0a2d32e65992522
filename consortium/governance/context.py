"""Template context for the admin: what awaits the signed-in delegate's member."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject


def pending_work(request) -> dict:
    """``pending``: agreements awaiting the member's signature and open proposals it has
    not voted on, computed only when a template (the admin index) uses it."""

    def compute():
        from consortium.governance import agreements
        from consortium.governance import members as governance
        from consortium.governance.models import Proposal

        scope = governance.acting_for(request.user) if hasattr(request, "user") else False
        if not scope:
            return None
        return {
            "member": scope,
            "agreements": [p.agreement for p in agreements.awaiting_signature(request.user)],
            "proposals": list(
                Proposal.objects.filter(state=Proposal.State.OPEN)
                .exclude(votes__member_id=scope)
                .filter(eligible__has_key=scope)
                .order_by("deadline")
            ),
        }

    return {"pending": SimpleLazyObject(compute)}
