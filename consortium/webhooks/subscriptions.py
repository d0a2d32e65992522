"""Subscribing, unsubscribing and resuming: a member's signatory and recorders manage its
member's subscriptions only, the secretariat any; whoever may read a member's private
records reads its subscriptions."""

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
    """The subscriptions ``user`` may read: its member's; all of them for the secretariat,
    the auditors and superusers (as for the members' other private records)."""
    members = selectors.visible_members_of(user)
    queryset = WebhookSubscription.objects.all()
    return queryset if members is None else queryset.filter(owner_id__in=members)


def managed_for(user) -> str | bool | None:
    """Whose subscriptions ``user`` manages: ``None`` for the secretariat (any, and its
    own are the consortium's), a member's code for its signatory and recorders, ``False``
    for anyone else (observers and auditors read them, and change nothing)."""
    if user.is_superuser or selectors.is_staff_role(user, Seat.Role.SECRETARIAT):
        return None
    seat = selectors.seat_of(user)
    if (
        seat is not None
        and seat.member_id
        and seat.role in (Seat.Role.SIGNATORY, Seat.Role.RECORDER)
    ):
        return seat.member_id
    return False


def _may_manage(user, sub: WebhookSubscription) -> bool:
    owner = managed_for(user)
    return owner is None or (owner is not False and sub.owner_id == owner)


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
    owner = managed_for(actor)
    if owner is False:
        raise GovernanceError(
            "webhooks are managed by a member's signatory and recorders, or the secretariat",
            status=403,
        )
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
            owner_id=owner,
            url=url,
            kinds=list(dict.fromkeys(kinds)),
            member=member,
            created_by=actor,
            cursor=last if after is None else after,
        )


def webhook_unsubscribe(*, actor, subscription: WebhookSubscription) -> None:
    """Delete the subscription and its delivery log."""
    if not _may_manage(actor, subscription):
        raise GovernanceError("you may not manage this subscription", status=403)
    with transaction.atomic(durable=True):
        WebhookSubscription.objects.filter(pk=subscription.pk).delete()


def webhook_resume(*, actor, subscription: WebhookSubscription) -> WebhookSubscription:
    """Resume a failing subscription from its cursor (the next attempt at once)."""
    if not _may_manage(actor, subscription):
        raise GovernanceError("you may not manage this subscription", status=403)
    with transaction.atomic(durable=True):
        WebhookSubscription.objects.filter(pk=subscription.pk).update(
            state=WebhookSubscription.State.ACTIVE, failures=0, next_attempt_at=None
        )
    subscription.refresh_from_db()
    from consortium.webhooks.sending import request_fan_out

    transaction.on_commit(request_fan_out)
    return subscription
