"""The notice a member's delegates receive when one of its webhook subscriptions is
paused (marked failing): by e-mail, as the governance notices are sent
(``consortium.governance.notifications``), after the attempt's transaction commits."""

from __future__ import annotations

from django.utils.translation import gettext as _

from consortium.governance.notifications import in_site_language, notify


@in_site_language
def on_subscription_failing(sub, error: str) -> None:
    """The owner's delegates hear that deliveries stopped, and how to resume them. The
    URL is not in the notice: it may carry the partner's own token."""
    if sub.owner_id is None:
        return  # the secretariat's own subscriptions: it reads the delivery log
    notify(
        [sub.owner_id],
        _("Webhook paused: %(id)s") % {"id": sub.id},
        _(
            "Deliveries to a webhook subscription of your member (%(id)s) were paused after "
            "%(failures)s failed attempts in a row; the last: %(error)s. Once its receiver "
            "answers again, resume it with POST /api/v1/webhooks/%(id)s/resume."
        )
        % {"id": sub.id, "failures": sub.failures, "error": error},
        f"/api/v1/webhooks/{sub.id}/deliveries",
    )
