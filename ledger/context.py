"""Template context for the admin: the alarm raised by a failed verification."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject


def verification_alarm(request) -> dict:
    """``ledger_alarm``: the last scheduled verification run if it failed, else nothing;
    read only when a template (every admin page, through ``admin/base_site.html``) uses
    it, and only for a user who may read the ledger."""

    def compute():
        from ledger.admin import may_read_ledger
        from ledger.models import VerificationRun

        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not may_read_ledger(user):
            return None
        last = VerificationRun.objects.order_by("-id").first()
        return last if last is not None and not last.ok else None

    return {"ledger_alarm": SimpleLazyObject(compute)}
