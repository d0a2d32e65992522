"""The webhooks' background work: a fan-out after appends, one delivery task per
subscription, and the sweep (scheduled) that finds what is due."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache


@shared_task(name="webhooks.fan_out", ignore_result=True)
def fan_out() -> int:
    """Queue a delivery for each subscription behind the log; how many."""
    from consortium.webhooks import sending

    # Clear the flag first: appends committed from here on ask again.
    cache.delete(sending.FAN_OUT_PENDING)
    due = sending.behind()
    for pk in due:
        deliver.delay(pk)
    return len(due)


@shared_task(name="webhooks.deliver", ignore_result=True)
def deliver(subscription_id: str) -> int:
    """Deliver what is due to one subscription, in order, from its cursor."""
    from consortium.webhooks import sending

    return sending.deliver(subscription_id)


@shared_task(name="webhooks.sweep", ignore_result=True)
def sweep() -> int:
    """The schedule's fan-out: retries whose time has come, and anything a lost message
    or a stopped worker left behind (a claim lapses after WEBHOOK_LEASE_SECONDS); and the
    delivery log's old rows forgotten."""
    from consortium.webhooks import sending

    sending.prune()
    return fan_out()
