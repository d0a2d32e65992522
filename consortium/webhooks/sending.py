"""Delivering a subscription's events: in index order from its cursor, one attempt at a
time, every attempt in the delivery log, the cursor moved only by a 2xx answer and in the
same transaction as that attempt's row. At least once: a worker stopped between a 2xx
and its commit sends that event again, under the same ``webhook-id``."""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.http import QueryDict
from django.utils import timezone

from consortium.webhooks import notices
from consortium.webhooks.models import WebhookDelivery, WebhookSubscription
from ledger.api.views import EntryFilter
from ledger.events import cloudevents, delivery, feed
from ledger.services import Entry

log = logging.getLogger(__name__)

FAN_OUT_PENDING = "webhooks:fan-out-pending"
# Events delivered by one run of the task before it hands over to the next.
RUN = 100


def entries_for(sub: WebhookSubscription):
    """The entries ``sub`` follows: the entries list's own filters, with its kinds and member."""
    query = QueryDict(mutable=True)
    query.setlist("kind", list(sub.kinds))
    if sub.member:
        query["member"] = sub.member
    filters = EntryFilter(query, queryset=Entry.objects.all())
    filters.is_valid()
    return filters.qs


def backoff(failures: int) -> float:
    """Seconds before the next attempt after ``failures`` failed ones in a row: the base
    doubled at each, capped, and jittered down by up to half (so that many subscriptions
    failing together do not retry together)."""
    delay = min(
        settings.WEBHOOK_RETRY_MAX_SECONDS, settings.WEBHOOK_RETRY_SECONDS * 2 ** (failures - 1)
    )
    return delay * (0.5 + random.random() / 2)


def due() -> Q:
    now = timezone.now()
    return (
        Q(state=WebhookSubscription.State.ACTIVE)
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        & (Q(leased_until__isnull=True) | Q(leased_until__lt=now))
    )


def _claim(pk) -> bool:
    until = timezone.now() + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    return bool(WebhookSubscription.objects.filter(due(), pk=pk).update(leased_until=until))


def _renew(pk) -> None:
    until = timezone.now() + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    WebhookSubscription.objects.filter(pk=pk).update(leased_until=until)


def deliver(subscription_id) -> int:
    """Deliver what is due to one subscription, if no other worker is; the number of
    events delivered. A failed attempt schedules the next one (``backoff``)."""
    if not _claim(subscription_id):
        return 0
    sent, retry_in = 0, None
    try:
        for _ in range(RUN):
            sub = WebhookSubscription.objects.filter(pk=subscription_id).first()
            if sub is None or sub.state != WebhookSubscription.State.ACTIVE:
                break
            # The head first: every entry up to it is committed when the entries are read.
            last = feed.last_index()
            entry = entries_for(sub).filter(index__gt=sub.cursor).order_by("index").first()
            if entry is None:
                # Nothing it follows up to the head: pass over the rest, so that the
                # fan-out stops waking a subscription whose filters match little.
                WebhookSubscription.objects.filter(pk=sub.pk, cursor__lt=last).update(cursor=last)
                break
            retry_in = attempt(sub, entry)
            if retry_in is not None:
                break
            sent += 1
            _renew(subscription_id)
        else:
            retry_in = 0  # more to send: the next run goes on
    finally:
        WebhookSubscription.objects.filter(pk=subscription_id).update(leased_until=None)
    if retry_in is None and _still_behind(subscription_id):
        # An append's own delivery task found this run's claim and gave up: go on.
        retry_in = 0
    if retry_in is not None:
        from consortium.webhooks.tasks import deliver as task

        task.apply_async((str(subscription_id),), countdown=retry_in)
    return sent


def _still_behind(pk) -> bool:
    return WebhookSubscription.objects.filter(due(), pk=pk, cursor__lt=feed.last_index()).exists()


def attempt(sub: WebhookSubscription, entry) -> float | None:
    """POST one event; record the attempt. ``None`` when delivered, else the seconds
    before the next attempt (``None`` too once the subscription is marked failing)."""
    msg_id = cloudevents.webhook_id(entry.index)
    payload = cloudevents.body(entry)
    headers = cloudevents.headers(msg_id, int(time.time()), payload)
    number = WebhookDelivery.objects.filter(subscription=sub, index=entry.index).count() + 1
    at = timezone.now()
    outcome = delivery.post(
        sub.url, payload, headers, settings.WEBHOOK_TIMEOUT, allow_http=settings.WEBHOOK_ALLOW_HTTP
    )
    error = outcome.error or ("" if outcome.delivered else f"answered {outcome.status}")
    retry_in = None
    with transaction.atomic(durable=True):
        locked = WebhookSubscription.objects.select_for_update().filter(pk=sub.pk).first()
        if locked is None:
            return None  # deleted meanwhile: nothing more to record
        row = WebhookDelivery(
            subscription=locked,
            index=entry.index,
            event_id=msg_id,
            attempt=number,
            status_code=outcome.status,
            error=error[:500],
            duration_ms=round(outcome.seconds * 1000),
            attempted_at=at,
            delivered=outcome.delivered,
        )
        if outcome.delivered:
            locked.cursor = max(locked.cursor, entry.index)
            locked.failures, locked.next_attempt_at = 0, None
        else:
            locked.failures += 1
            retry_in = backoff(locked.failures)
            row.next_attempt_at = locked.next_attempt_at = at + timedelta(seconds=retry_in)
            # 410 Gone: the receiver wants no more (Standard Webhooks), so stop at once.
            if locked.failures >= settings.WEBHOOK_MAX_ATTEMPTS or outcome.status == 410:
                locked.state = WebhookSubscription.State.FAILING
                row.next_attempt_at = locked.next_attempt_at = None
                retry_in = None
                log.warning("webhook %s marked failing after %d attempts", sub.pk, locked.failures)
                notices.on_subscription_failing(locked, error[:200])
        row.save()
        locked.save(update_fields=["cursor", "failures", "next_attempt_at", "state"])
    return None if outcome.delivered else retry_in


def prune() -> int:
    """Forget delivery log rows older than ``WEBHOOK_DELIVERY_KEEP_DAYS``; how many."""
    before = timezone.now() - timedelta(days=settings.WEBHOOK_DELIVERY_KEEP_DAYS)
    return WebhookDelivery.objects.filter(attempted_at__lt=before).delete()[0]


def behind() -> list[str]:
    """The subscriptions with entries after their cursor and nothing holding them back."""
    last = feed.last_index()
    return [
        str(pk)
        for pk in WebhookSubscription.objects.filter(due(), cursor__lt=last).values_list(
            "pk", flat=True
        )
    ]


def request_fan_out() -> None:
    """After an append commits: one fan-out queued at a time (the sweep catches anything
    a down broker or cache lost)."""
    from consortium.web import background
    from consortium.webhooks.tasks import fan_out

    try:
        if cache.add(FAN_OUT_PENDING, 1, timeout=60):
            try:
                background.later(fan_out)
            except Exception:
                cache.delete(FAN_OUT_PENDING)
                raise
    except Exception:
        log.exception("could not queue the webhooks' fan-out")


__all__ = ["attempt", "backoff", "behind", "deliver", "entries_for", "request_fan_out"]
