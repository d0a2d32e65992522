"""Audit exports asked for, their progress and the finished bundles (local data)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consortium.governance.models import Member, Seat


class AuditExport(models.Model):
    """An audit export asked for, its progress and the finished bundle (local data; a
    finished export is recorded on the ledger as ``audit.exported``)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    id = models.UUIDField(_("id"), primary_key=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requester = models.CharField(
        _("requester"),
        max_length=150,
        help_text=_("Who asked, as they were known."),
    )
    seat = models.ForeignKey(
        Seat,
        verbose_name=_("seat"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    member = models.ForeignKey(
        Member,
        verbose_name=_("member"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Only what concerns this member; empty for everything."),
    )
    date_from = models.DateField(_("date from"), null=True, blank=True)
    date_to = models.DateField(_("date to"), null=True, blank=True)
    first = models.BigIntegerField(
        _("first"),
        null=True,
        blank=True,
        help_text=_("First index asked for."),
    )
    end = models.BigIntegerField(
        _("end"),
        null=True,
        blank=True,
        help_text=_("Index after the last asked."),
    )
    status = models.CharField(
        _("status"),
        max_length=8,
        choices=Status.choices,
        default=Status.QUEUED,
    )
    done = models.BigIntegerField(_("done"), default=0)
    total = models.BigIntegerField(_("total"), default=0)
    step = models.CharField(_("step"), max_length=100, blank=True)
    range_first = models.BigIntegerField(_("range first"), null=True, blank=True)
    range_end = models.BigIntegerField(_("range end"), null=True, blank=True)
    anchor = models.BigIntegerField(_("anchor"), null=True, blank=True)
    entries = models.BigIntegerField(_("entries"), null=True, blank=True)
    file = models.FileField(_("file"), upload_to="exports/", max_length=200, blank=True)
    size = models.BigIntegerField(_("size"), null=True, blank=True)
    bundle_sha256 = models.CharField(_("bundle sha256"), max_length=64, blank=True)
    manifest_sha256 = models.CharField(_("manifest sha256"), max_length=64, blank=True)
    recorded_in = models.BigIntegerField(_("recorded in"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        _("heartbeat at"),
        null=True,
        blank=True,
        help_text=_("When the build last made progress."),
    )
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("audit export")
        verbose_name_plural = _("audit exports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        scope = self.member_id or "everything"
        return f"audit export {str(self.id)[:8]} ({scope}, {self.status})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return int(100 * self.done / self.total) if self.total else 0
