"""Audit exports asked for, their progress and the finished bundles (local data)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from consortium.governance.models import Member, Seat


class AuditExport(models.Model):
    """An audit export asked for, its progress and the finished bundle (local data; a
    finished export is recorded on the ledger as ``audit.exported``)."""

    class Status(models.TextChoices):
        QUEUED = "queued", gettext_lazy("queued")
        RUNNING = "running", gettext_lazy("running")
        DONE = "done", gettext_lazy("done")
        FAILED = "failed", gettext_lazy("failed")

    id = models.UUIDField(primary_key=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requester = models.CharField(
        max_length=150, help_text=gettext_lazy("Who asked, as they were known.")
    )
    seat = models.ForeignKey(
        Seat, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    member = models.ForeignKey(
        Member,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=gettext_lazy("Only what concerns this member; empty for everything."),
    )
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    first = models.BigIntegerField(
        null=True, blank=True, help_text=gettext_lazy("First index asked for.")
    )
    end = models.BigIntegerField(
        null=True, blank=True, help_text=gettext_lazy("Index after the last asked.")
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    done = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    step = models.CharField(max_length=100, blank=True)
    range_first = models.BigIntegerField(null=True, blank=True)
    range_end = models.BigIntegerField(null=True, blank=True)
    anchor = models.BigIntegerField(null=True, blank=True)
    entries = models.BigIntegerField(null=True, blank=True)
    file = models.FileField(upload_to="exports/", max_length=200, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    bundle_sha256 = models.CharField(max_length=64, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    recorded_in = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text=gettext_lazy("When the build last made progress.")
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = gettext_lazy("audit export")

    def __str__(self) -> str:
        scope = self.member_id or "everything"
        return f"audit export {str(self.id)[:8]} ({scope}, {self.status})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return int(100 * self.done / self.total) if self.total else 0
