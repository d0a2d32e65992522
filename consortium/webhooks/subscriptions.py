"""Subscribing, unsubscribing and resuming: a member's seat holder manages its member's
subscriptions only (a consortium-wide seat: its own, the secretariat: any)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.http import QueryDict

from consortium.governance import selectors
from consortium.governance.changes import GovernanceError
from consortium.governance.models import Seat
from consortium.webhooks.models import WebhookSubscription
from ledger.api.views import EntryFilter
from ledger.events import delivery, feed
from ledger.services import Entry

# A partner system follows a handful of kinds; more is a mistake, not a need.
MAX_KINDS = 50


def visible(user):
    """The subscriptions ``user`` may read: its member's (all for the secretariat, the
    auditors and superusers, as for the members' other private records)."""
    members = selectors.visible_members_of(user)
    queryset = WebhookSubscription.objects.all()
    if members is None:
        return queryset
    seat = selectors.seat_of(user)
    if seat is not None and seat.member_id is None:
        return queryset.filter(owner__isnull=True, created_by=user)
    return queryset.filter(owner_id__in=members)


def may_manage(user, sub: WebhookSubscription) -> bool:
    if user.is_superuser or selectors.is_staff_role(user, Seat.Role.SECRETARIAT):
        return True
    seat = selectors.seat_of(user)
    if seat is None:
        return False
    if seat.member_id is None:
        return sub.owner_id is None and sub.created_by_id == user.pk
    return sub.owner_id == seat.member_id


def _check_filters(kinds: list[str], member: str) -> None:
    if len(kinds) > MAX_KINDS:
        raise GovernanceError(f"kinds: at most {MAX_KINDS} kinds")
    query = QueryDict(mutable=True)
    query.setlist("kind", kinds)
    if member:
        query["member"] = member
    filters = EntryFilter(query, queryset=Entry.objects.none())
    if not filters.is_valid():
        raise GovernanceError("; ".join(m for ms in filters.errors.values() for m in ms))


def webhook_subscribe(
    *, actor, url: str, kinds: list[str], member: str = "", after: int | None = None
) -> WebhookSubscription:
    """Subscribe ``url`` to the entries after ``after`` (default: from now) that pass the
    filters, for the actor's member."""
    seat = selectors.seat_of(actor)
    if seat is None and not actor.is_superuser:
        raise GovernanceError("you hold no seat in the consortium", status=403)
    try:
        delivery.check_url(url, allow_http=settings.WEBHOOK_ALLOW_HTTP)
    except delivery.egress.EgressRefused as exc:
        raise GovernanceError(f"url: {exc}") from exc
    _check_filters(kinds, member)
    with transaction.atomic(durable=True):
        last = feed.last_index()
        if after is not None and after > last:
            raise GovernanceError(f"after: {after} is beyond the last entry ({last})")
        return WebhookSubscription.objects.create(
            owner_id=seat.member_id if seat is not None else None,
            url=url,
            kinds=list(dict.fromkeys(kinds)),
            member=member,
            created_by=actor,
            cursor=last if after is None else after,
        )


def webhook_unsubscribe(*, actor, subscription: WebhookSubscription) -> None:
    """Delete the subscription and its delivery log."""
    if not may_manage(actor, subscription):
        raise GovernanceError("you may not manage this subscription", status=403)
    with transaction.atomic(durable=True):
        WebhookSubscription.objects.filter(pk=subscription.pk).delete()


def webhook_resume(*, actor, subscription: WebhookSubscription) -> WebhookSubscription:
    """Resume a failing subscription from its cursor (the next attempt at once)."""
    if not may_manage(actor, subscription):
        raise GovernanceError("you may not manage this subscription", status=403)
    with transaction.atomic(durable=True):
        WebhookSubscription.objects.filter(pk=subscription.pk).update(
            state=WebhookSubscription.State.ACTIVE, failures=0, next_attempt_at=None
        )
    subscription.refresh_from_db()
    from consortium.webhooks.sending import request_fan_out

    transaction.on_commit(request_fan_out)
    return subscription
