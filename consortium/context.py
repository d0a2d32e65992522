"""Template context for the admin: the signed-in person's dashboard (what awaits their
member, where it stands) and, for the secretariat, the consortium's."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from consortium.dashboard import consortium_dashboard, member_dashboard


def dashboard(request) -> dict:
    """``dashboard`` (the member's) and ``consortium_view`` (the secretariat's), computed
    only when a template (the admin index) uses them."""
    user = getattr(request, "user", None)

    def member():
        return member_dashboard(user) if user is not None else None

    def consortium():
        if user is None or not user.is_authenticated:
            return None
        return consortium_dashboard(user)

    return {"dashboard": SimpleLazyObject(member), "consortium_view": SimpleLazyObject(consortium)}
