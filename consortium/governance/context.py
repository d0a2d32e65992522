"""Template context for the admin: what awaits the signed-in delegate's member."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject


def pending_work(request) -> dict:
    """``pending``: agreements awaiting the member's signature and open proposals it has
    not voted on, computed only when a template (the admin index) uses it."""

    def compute():
        from consortium.governance import selectors

        scope = selectors.acting_for(request.user) if hasattr(request, "user") else False
        if not scope:
            return None
        return {
            "member": scope,
            "agreements": [p.agreement for p in selectors.signatures_awaited(scope)],
            "proposals": list(selectors.votes_awaited(scope)),
        }

    return {"pending": SimpleLazyObject(compute)}
