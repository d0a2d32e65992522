"""API tokens: issued and revoked by the one write path here, for the ``apitoken``
command (the operator, ``actor=None``) and the admin's self-service pages (a seat holder
for its own partner systems).

Tokens are local credentials, not facts of the consortium: like sessions, they are kept
in the database (only a hash of the secret) and are not ledger entries. What a token does
is on the ledger, signed with its member's key, as for a session.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from consortium.governance import selectors
from consortium.governance.changes import GovernanceError
from consortium.governance.models import ApiToken, Seat


def may_see_every_token(user) -> bool:
    """The secretariat and superusers see and revoke every token; anyone else its own."""
    return user.is_superuser or selectors.is_staff_role(user, Seat.Role.SECRETARIAT)


def visible_tokens(user) -> QuerySet[ApiToken]:
    """The tokens ``user`` may see: its own; every token for the secretariat."""
    qs = ApiToken.objects.select_related("user", "seat", "seat__member")
    return qs if may_see_every_token(user) else qs.filter(user=user)


def token_issue(*, actor, user, name: str = "", days: int | None = None) -> tuple[ApiToken, str]:
    """Issue a token to ``user`` for the seat it holds now; return it and its plaintext,
    which is shown once and never stored. ``actor`` is ``None`` for the operator at the
    console; anyone else issues tokens only to itself, and must hold a seat (or be a
    superuser)."""
    if actor is not None:
        if actor.pk != user.pk:
            raise GovernanceError("a token is issued only to the person who asks for it", 403)
        if not (actor.is_superuser or selectors.holds_a_seat(actor)):
            raise GovernanceError("you hold no seat in the consortium", 403)
    days = settings.API_TOKEN_DEFAULT_DAYS if days is None else days
    try:
        with transaction.atomic():
            return ApiToken.issue(user=user, name=name, days=days)
    except ValueError as exc:
        raise GovernanceError(str(exc)) from exc


def token_revoke(*, actor, token: ApiToken) -> ApiToken:
    """Revoke ``token`` (revoking it again changes nothing). ``actor`` is ``None`` for the
    operator; otherwise the token's own user, or the secretariat or a superuser."""
    if actor is not None and token.user_id != actor.pk and not may_see_every_token(actor):
        raise GovernanceError("you may revoke only your own tokens", 403)
    with transaction.atomic():
        token.revoke()
    return token
