"""``Authorization: Bearer <token>`` for the REST API."""

from __future__ import annotations

import hmac
import re
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from django.utils.module_loading import import_string
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from consortium.governance.models import TOKEN_PREFIX, ApiToken, hash_secret
from consortium.web.clientip import client_address

_TOKEN_RE = re.compile(rf"^{TOKEN_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{20,100}})$")


def _failures_key(address: str | None) -> str:
    return f"bearer-failures:{address or '-'}"


def refuse_when_throttled(request) -> None:
    """429 once the client's address sent ``API_TOKEN_FAILURE_LIMIT`` invalid bearer
    tokens within the window: guessing stops there, for every token from that address
    until the window ends (a valid token from another address is never slowed)."""
    at = cache.get(_failures_key(client_address(request)))
    if at and at["count"] >= settings.API_TOKEN_FAILURE_LIMIT:
        raise exceptions.Throttled(wait=max(1, int(at["until"] - time.time())))


def count_failure(request) -> None:
    """One more invalid bearer token from the client's address, in a window that starts
    with the first and lasts ``API_TOKEN_FAILURE_WINDOW`` seconds (not atomic across
    workers: a few extra guesses may pass at the limit, never many)."""
    key = _failures_key(client_address(request))
    window = settings.API_TOKEN_FAILURE_WINDOW
    at = cache.get(key) or {"count": 0, "until": time.time() + window}
    at["count"] += 1
    cache.set(key, at, timeout=max(1, int(at["until"] - time.time())))


def _held_seat(user):
    """``selectors.seat_of(user)`` from the row ``select_related`` already read."""
    try:
        holder = user.seat_holder
    except ObjectDoesNotExist:
        return None
    return holder.seat if holder.seat.active else None


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        refuse_when_throttled(request)
        try:
            return self._authenticate(value)
        except exceptions.AuthenticationFailed:
            count_failure(request)
            raise

    def _authenticate(self, value: str):
        match = _TOKEN_RE.match(value.strip())
        if not match:
            raise exceptions.AuthenticationFailed("malformed bearer token")
        key_id, secret = match.groups()
        # One query: the token, its user, its seat and the seat the user holds now (what
        # the seat check and HoldsASeat need), however many checks follow.
        # (key_id is unique: no ordering to compile and sort by.)
        token = next(
            iter(
                ApiToken.objects.select_related("user", "seat", "user__seat_holder__seat")
                .filter(key_id=key_id)
                .order_by()[:1]
            ),
            None,
        )
        # Compare in constant time even when the id is unknown.
        expected = token.secret_hash if token else "0" * 64
        if not hmac.compare_digest(expected, hash_secret(secret)) or token is None:
            raise exceptions.AuthenticationFailed("invalid bearer token")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("this token has been revoked")
        now = timezone.now()
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed("this token has expired")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("the token's user is inactive")
        held = _held_seat(token.user)
        if (held.pk if held is not None else None) != token.seat_id:
            # ApiToken.seat_lost, from the rows read above.
            if token.seat_id is None:
                raise exceptions.AuthenticationFailed(
                    "this token was issued before its user held a seat: issue a new one"
                )
            raise exceptions.AuthenticationFailed(
                f"this token was issued for a seat ({token.seat}) its user no longer holds"
            )
        # For HoldsASeat: the seat this request's user holds, read with the token.
        token.held_seat = held
        # Record use at most once a minute, to keep reads from becoming writes.
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI description of the bearer token: defined here, beside the class it
    describes, so that it is known wherever the API's authentication is."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A token a seat holder makes in the admin (API tokens), or the operator "
                "with `manage.py apitoken create --user <username>`."
            ),
        }


DEFAULT_READER_CHECK = "consortium.governance.selectors.holds_a_seat"
_UNREAD = object()


class HoldsASeat(permissions.BasePermission):
    """The API's default: a signed-in user who holds a seat (or a superuser). Who may
    read the ledger is the same question (``LEDGER_READER_CHECK``), so a user whose seat
    is vacated reads nothing more, through the API or the admin."""

    message = "you hold no seat in the consortium"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if user.is_superuser:
            return True
        hook = getattr(settings, "LEDGER_READER_CHECK", None)
        if hook == DEFAULT_READER_CHECK and isinstance(request.auth, ApiToken):
            # The same answer, from the seat read with the token a moment ago.
            held = getattr(request.auth, "held_seat", _UNREAD)
            if held is not _UNREAD:
                return held is not None
        return bool(hook) and import_string(hook)(user)
