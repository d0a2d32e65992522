"""Template context for the admin: the alarm raised by a failed verification, the
witnesses' warnings, and a log left read-only behind what it published."""

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


def witness_warning(request) -> dict:
    """``witness_warning``: when a witness policy is adopted and no checkpoint meets it,
    what the checkpoint endpoint does about it (serves the latest anyway, fail-open, or
    refuses), and which witnesses have not cosigned; with the number of witness alarms.
    Read only when a template uses it, and only for a user who may read the ledger."""

    def compute():
        from ledger.admin import may_read_ledger
        from ledger.cosign.models import WitnessAlarm, WitnessPolicy
        from ledger.cosign.served import cosigned_checkpoint

        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not may_read_ledger(user):
            return None
        alarms = WitnessAlarm.objects.count()
        if not WitnessPolicy.objects.exists():
            return {"alarms": alarms, "unmet": None} if alarms else None
        served = cosigned_checkpoint()
        unmet = served if served is not None and not served.meets_policy else None
        if unmet is None and not alarms:
            return None
        return {"alarms": alarms, "unmet": unmet}

    return {"witness_warning": SimpleLazyObject(compute)}


def log_behind(request) -> dict:
    """``ledger_behind``: why the log is read-only when its database is behind (or not a
    prefix of) the newest checkpoint it published (``ledger.published``), else nothing;
    read only when a template uses it, and only for a user who may read the ledger."""

    def compute():
        from ledger.admin import may_read_ledger
        from ledger.published import behind_published

        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not may_read_ledger(user):
            return None
        return behind_published()

    return {"ledger_behind": SimpleLazyObject(compute)}
