"""Contributions: projections of the ledger (facilities, compute, data, funds, disputes)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy

from consortium.governance.models import Member


class Facility(models.Model):
    """A computing facility (a national supercomputer), run by a member, with a key of
    its own that attests the compute it delivered."""

    code = models.CharField(
        max_length=32, primary_key=True, help_text=gettext_lazy("A lowercase slug.")
    )
    name = models.CharField(max_length=200)
    operator = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="facilities")
    country = models.CharField(max_length=2)
    timezone = models.CharField(
        max_length=64, help_text=gettext_lazy("IANA zone its accounting uses.")
    )
    default_accelerator = models.CharField(max_length=64)
    partitions = models.JSONField(
        default=dict, help_text=gettext_lazy("{partition: accelerator type}")
    )
    accounts = models.JSONField(default=dict, help_text=gettext_lazy("{account: member code}"))
    registered_in = models.BigIntegerField()
    changed_in = models.BigIntegerField()

    class Meta:
        ordering = ["code"]
        verbose_name_plural = gettext_lazy("facilities")

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Contribution(models.Model):
    """What a member delivered: compute, data or funds. Values are exact decimals."""

    class Kind(models.TextChoices):
        COMPUTE = "compute", gettext_lazy("compute")
        DATA = "data", gettext_lazy("data")
        FUNDS = "funds", gettext_lazy("funds")

    class State(models.TextChoices):
        REPORTED = "reported", gettext_lazy("reported, awaiting the facility's attestation")
        PENDING = "pending", gettext_lazy("pending, awaiting the treasurer's confirmation")
        COUNTED = "counted", gettext_lazy("counted")
        REJECTED = "rejected", gettext_lazy("rejected by the treasurer")
        VOID = "void", gettext_lazy("void (a dispute was upheld)")

    id = models.UUIDField(primary_key=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="contributions")
    state = models.CharField(max_length=16, choices=State.choices)
    disputed = models.BooleanField(
        default=False,
        help_text=gettext_lazy(
            "Under an open dispute: it keeps its state (and counts if counted) until "
            "the dispute is upheld."
        ),
    )
    recorded_in = models.BigIntegerField()
    recorded_at = models.CharField(
        max_length=40, help_text=gettext_lazy("Integration time, RFC 3339 UTC.")
    )
    delivered_on = models.DateField(
        help_text=gettext_lazy(
            "The day it counts for: compute's last day, funds' payment, data's record."
        )
    )
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    # compute
    facility = models.ForeignKey(
        Facility, null=True, blank=True, on_delete=models.PROTECT, related_name="contributions"
    )
    import_id = models.UUIDField(
        null=True, blank=True, help_text=gettext_lazy("The import it came from.")
    )
    accelerator = models.CharField(max_length=64, blank=True)
    allocations = models.BigIntegerField(null=True, blank=True)
    gpu_seconds = models.BigIntegerField(null=True, blank=True)
    gpu_hours = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    evidence_sha256 = models.CharField(max_length=64, blank=True)
    attested_in = models.BigIntegerField(null=True, blank=True)
    # data
    dataset = models.JSONField(
        null=True, blank=True, help_text=gettext_lazy("Name, manifest, licence, DUO...")
    )
    tokens = models.BigIntegerField(null=True, blank=True)
    # funds
    amount = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    amount_micros = models.BigIntegerField(
        null=True, blank=True, help_text=gettext_lazy("The amount in millionths: sums stay exact.")
    )
    currency = models.CharField(max_length=3, blank=True)
    date = models.DateField(null=True, blank=True)
    confirmed_in = models.BigIntegerField(
        null=True,
        blank=True,
        help_text=gettext_lazy("The treasurer's confirmation (or rejection)."),
    )
    claimed = models.JSONField(
        null=True,
        blank=True,
        help_text=gettext_lazy(
            "The amount, currency and day as the member recorded them, when the "
            "treasurer confirmed other figures (which are the ones that count)."
        ),
    )

    class Meta:
        ordering = ["-recorded_in"]
        indexes = [models.Index(fields=["delivered_on", "kind", "state"])]

    def __str__(self) -> str:
        if self.kind == self.Kind.COMPUTE:
            return f"{self.gpu_hours} {self.accelerator} GPU-hours by {self.member_id}"
        if self.kind == self.Kind.FUNDS:
            return f"{self.amount} {self.currency} by {self.member_id}"
        return f"dataset {self.dataset.get('name') if self.dataset else ''} by {self.member_id}"


class SacctImport(models.Model):
    """One accounting export imported for a facility: its hash, and what it held."""

    id = models.UUIDField(primary_key=True)
    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="imports")
    export_sha256 = models.CharField(max_length=64)
    lines = models.BigIntegerField()
    allocations = models.BigIntegerField()
    left_out = models.JSONField(default=dict, help_text=gettext_lazy("{reason: rows}"))
    recorded_in = models.BigIntegerField()
    attested_in = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-recorded_in"]
        constraints = [
            models.UniqueConstraint(
                fields=["facility", "export_sha256"], name="contributions_one_import_per_export"
            )
        ]

    def __str__(self) -> str:
        return f"export {self.export_sha256[:12]}… of {self.facility_id}"


class Dispute(models.Model):
    """A member's dispute of a contribution, and its resolution."""

    id = models.UUIDField(primary_key=True)
    contribution = models.ForeignKey(
        Contribution, on_delete=models.PROTECT, related_name="disputes"
    )
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="disputes")
    reason = models.CharField(max_length=500)
    opened_in = models.BigIntegerField()
    outcome = models.CharField(
        max_length=16, blank=True, help_text=gettext_lazy("upheld or dismissed")
    )
    resolution = models.CharField(max_length=500, blank=True)
    resolved_in = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_in"]
        constraints = [
            models.UniqueConstraint(
                fields=["contribution"],
                condition=models.Q(resolved_in__isnull=True),
                name="contributions_one_open_dispute",
            )
        ]

    def __str__(self) -> str:
        return f"dispute by {self.member_id} of {self.contribution_id}"


class CountedAllocation(models.Model):
    """An allocation an import of a facility counted, known by a hash of its cluster, raw
    job id and submit time: a later export that lists it again (a job across the end of
    a month, say) does not count it twice.

    Local bookkeeping beside the ledger, like stored documents: the imports' entries
    record what was counted; this table remembers which jobs that was.
    """

    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=32)
    import_id = models.UUIDField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["facility", "key"], name="contributions_count_once")
        ]

    def __str__(self) -> str:
        return f"allocation {self.key} of {self.facility_id}"
