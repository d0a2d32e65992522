"""Reads and visibility of the access gate: checkpoints, who may download which and why,
and the authorisations and access-log lines a user may see. Used by the services, the
admin and the API; nothing here writes."""

from __future__ import annotations

from django.db.models import QuerySet

from consortium.access.entitlements import Decision, entitlement
from consortium.access.models import DownloadAuthorization, DownloadEvent, ModelCheckpoint
from consortium.governance.models import Member
from consortium.governance.selectors import visible_members_of
from consortium.governance.terms import ACCESS_SCOPES


def checkpoint_of(digest: str) -> ModelCheckpoint | None:
    """The checkpoint with manifest digest ``digest``, if there is one."""
    return ModelCheckpoint.objects.filter(digest=digest).first()


def members_to_check(user) -> list[str]:
    """The members whose access ``user`` may ask about: its own member's; every member in
    good standing for the secretariat and auditors."""
    visible = visible_members_of(user)
    if visible is None:
        return [m.code for m in Member.objects.filter(status=Member.Status.MEMBER)]
    return sorted(visible)


def access_table(user, checkpoint: ModelCheckpoint) -> list[tuple[str, str, Decision]]:
    """Who may download ``checkpoint``, in each scope, and why: a row per member ``user``
    may ask about and scope."""
    return [
        (code, scope, entitlement(code, checkpoint, scope))
        for code in members_to_check(user)
        for scope in ACCESS_SCOPES
    ]


def downloadable_checkpoints(member: str, scope: str = "full_weights") -> list[ModelCheckpoint]:
    """The checkpoints ``member`` may download in ``scope`` now, by the gate's decision."""
    return [
        cp
        for cp in ModelCheckpoint.objects.filter(state=ModelCheckpoint.State.PUBLISHED)
        .select_related("model__agreement")
        .order_by("published_in")
        if entitlement(member, cp, scope).allow
    ]


def visible_authorizations(user, qs: QuerySet | None = None) -> QuerySet[DownloadAuthorization]:
    """The downloads authorised (of ``qs``, by default all) that ``user`` may see: its
    member's; all for the secretariat and auditors."""
    visible = visible_members_of(user)
    qs = DownloadAuthorization.objects.all() if qs is None else qs
    return qs if visible is None else qs.filter(member__in=visible)


def visible_access_log(user, qs: QuerySet | None = None) -> QuerySet[DownloadEvent]:
    """The access log's lines (of ``qs``, by default all) that ``user`` may read: its
    member's; all for the secretariat and auditors."""
    visible = visible_members_of(user)
    qs = DownloadEvent.objects.all() if qs is None else qs
    return qs if visible is None else qs.filter(member__in=visible)
