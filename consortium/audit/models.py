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

    id = models.UUIDField(verbose_name=gettext_lazy("id"), primary_key=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=gettext_lazy("requested by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requester = models.CharField(
        verbose_name=gettext_lazy("requester"),
        max_length=150,
        help_text=gettext_lazy("Who asked, as they were known."),
    )
    seat = models.ForeignKey(
        Seat,
        verbose_name=gettext_lazy("seat"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    member = models.ForeignKey(
        Member,
        verbose_name=gettext_lazy("member"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=gettext_lazy("Only what concerns this member; empty for everything."),
    )
    date_from = models.DateField(verbose_name=gettext_lazy("date from"), null=True, blank=True)
    date_to = models.DateField(verbose_name=gettext_lazy("date to"), null=True, blank=True)
    first = models.BigIntegerField(
        verbose_name=gettext_lazy("first"),
        null=True,
        blank=True,
        help_text=gettext_lazy("First index asked for."),
    )
    end = models.BigIntegerField(
        verbose_name=gettext_lazy("end"),
        null=True,
        blank=True,
        help_text=gettext_lazy("Index after the last asked."),
    )
    status = models.CharField(
        verbose_name=gettext_lazy("status"),
        max_length=8,
        choices=Status.choices,
        default=Status.QUEUED,
    )
    done = models.BigIntegerField(verbose_name=gettext_lazy("done"), default=0)
    total = models.BigIntegerField(verbose_name=gettext_lazy("total"), default=0)
    step = models.CharField(verbose_name=gettext_lazy("step"), max_length=100, blank=True)
    range_first = models.BigIntegerField(
        verbose_name=gettext_lazy("range first"), null=True, blank=True
    )
    range_end = models.BigIntegerField(
        verbose_name=gettext_lazy("range end"), null=True, blank=True
    )
    anchor = models.BigIntegerField(verbose_name=gettext_lazy("anchor"), null=True, blank=True)
    entries = models.BigIntegerField(verbose_name=gettext_lazy("entries"), null=True, blank=True)
    file = models.FileField(
        verbose_name=gettext_lazy("file"), upload_to="exports/", max_length=200, blank=True
    )
    size = models.BigIntegerField(verbose_name=gettext_lazy("size"), null=True, blank=True)
    bundle_sha256 = models.CharField(
        verbose_name=gettext_lazy("bundle sha256"), max_length=64, blank=True
    )
    manifest_sha256 = models.CharField(
        verbose_name=gettext_lazy("manifest sha256"), max_length=64, blank=True
    )
    recorded_in = models.BigIntegerField(
        verbose_name=gettext_lazy("recorded in"), null=True, blank=True
    )
    error = models.TextField(verbose_name=gettext_lazy("error"), blank=True)
    created_at = models.DateTimeField(verbose_name=gettext_lazy("created at"), default=timezone.now)
    started_at = models.DateTimeField(
        verbose_name=gettext_lazy("started at"), null=True, blank=True
    )
    heartbeat_at = models.DateTimeField(
        verbose_name=gettext_lazy("heartbeat at"),
        null=True,
        blank=True,
        help_text=gettext_lazy("When the build last made progress."),
    )
    finished_at = models.DateTimeField(
        verbose_name=gettext_lazy("finished at"), null=True, blank=True
    )

    class Meta:
        verbose_name = gettext_lazy("audit export")
        verbose_name_plural = gettext_lazy("audit exports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        scope = self.member_id or "everything"
        return f"audit export {str(self.id)[:8]} ({scope}, {self.status})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return int(100 * self.done / self.total) if self.total else 0
