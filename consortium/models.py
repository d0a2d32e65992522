"""Consortium-wide records that are not ledger entries: API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "clt"  # noqa: S105  (a prefix, not a secret)


def hash_secret(secret: str) -> str:
    # The secret is 256 random bits, so a plain SHA-256 is enough: there is nothing
    # to brute-force that a slow hash would protect.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now, user__is_active=True)


class ApiToken(models.Model):
    """A bearer token for a partner system. Only its hash is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for.")
    key_id = models.CharField(max_length=16, unique=True, help_text="Public part, shown in lists.")
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{TOKEN_PREFIX}_{self.key_id}… ({self.user})"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    @classmethod
    def issue(cls, *, user, name: str = "", days: int | None = None) -> tuple[ApiToken, str]:
        """Create a token; return it and the plaintext, which is never stored."""
        days = settings.API_TOKEN_DEFAULT_DAYS if days is None else days
        if not 0 < days <= settings.API_TOKEN_MAX_DAYS:
            raise ValueError(f"a token lives between 1 and {settings.API_TOKEN_MAX_DAYS} days")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            name=name,
            key_id=key_id,
            secret_hash=hash_secret(secret),
            expires_at=timezone.now() + timedelta(days=days),
        )
        return token, f"{TOKEN_PREFIX}_{key_id}_{secret}"

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
