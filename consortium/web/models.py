"""Local data of the web layer: the kept answers of idempotent writes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class IdempotentResponse(models.Model):
    """The answer to the first write a user sent with an ``Idempotency-Key`` (local data,
    never on the ledger): a retry with the same key gets exactly this answer again, its
    status and body, whatever has happened since."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    key = models.CharField(_("key"), max_length=64)
    request_sha256 = models.CharField(
        _("request sha256"),
        max_length=64,
        help_text=_("Method, path, query and body of the first request."),
    )
    status = models.PositiveSmallIntegerField(_("status"))
    body = models.JSONField(_("body"), null=True)
    location = models.CharField(_("location"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("idempotent response")
        verbose_name_plural = _("idempotent responses")
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotent_response_once")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"
