"""Contributions: projections of the ledger (facilities, compute, data, funds, disputes)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy

from consortium.governance.models import Member


class Facility(models.Model):
    """A computing facility (a national supercomputer), run by a member, with a key of
    its own that attests the compute it delivered."""

    code = models.CharField(
        verbose_name=gettext_lazy("code"),
        max_length=32,
        primary_key=True,
        help_text=gettext_lazy("A lowercase slug."),
    )
    name = models.CharField(verbose_name=gettext_lazy("name"), max_length=200)
    operator = models.ForeignKey(
        Member,
        verbose_name=gettext_lazy("operator"),
        on_delete=models.PROTECT,
        related_name="facilities",
    )
    country = models.CharField(verbose_name=gettext_lazy("country"), max_length=2)
    timezone = models.CharField(
        verbose_name=gettext_lazy("timezone"),
        max_length=64,
        help_text=gettext_lazy("IANA zone its accounting uses."),
    )
    default_accelerator = models.CharField(
        verbose_name=gettext_lazy("default accelerator"), max_length=64
    )
    partitions = models.JSONField(
        verbose_name=gettext_lazy("partitions"),
        default=dict,
        help_text=gettext_lazy("{partition: accelerator type}"),
    )
    accounts = models.JSONField(
        verbose_name=gettext_lazy("accounts"),
        default=dict,
        help_text=gettext_lazy("{account: member code}"),
    )
    registered_in = models.BigIntegerField(verbose_name=gettext_lazy("registered in"))
    changed_in = models.BigIntegerField(verbose_name=gettext_lazy("changed in"))

    class Meta:
        verbose_name = gettext_lazy("facility")
        verbose_name_plural = gettext_lazy("facilities")
        ordering = ["code"]

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

    id = models.UUIDField(verbose_name=gettext_lazy("id"), primary_key=True)
    kind = models.CharField(verbose_name=gettext_lazy("kind"), max_length=8, choices=Kind.choices)
    member = models.ForeignKey(
        Member,
        verbose_name=gettext_lazy("member"),
        on_delete=models.PROTECT,
        related_name="contributions",
    )
    state = models.CharField(
        verbose_name=gettext_lazy("state"), max_length=16, choices=State.choices
    )
    disputed = models.BooleanField(
        verbose_name=gettext_lazy("disputed"),
        default=False,
        help_text=gettext_lazy(
            "Under an open dispute: it keeps its state (and counts if counted) until "
            "the dispute is upheld."
        ),
    )
    recorded_in = models.BigIntegerField(verbose_name=gettext_lazy("recorded in"))
    recorded_at = models.CharField(
        verbose_name=gettext_lazy("recorded at"),
        max_length=40,
        help_text=gettext_lazy("Integration time, RFC 3339 UTC."),
    )
    delivered_on = models.DateField(
        verbose_name=gettext_lazy("delivered on"),
        help_text=gettext_lazy(
            "The day it counts for: compute's last day, funds' payment, data's record."
        ),
    )
    period_start = models.DateTimeField(
        verbose_name=gettext_lazy("period start"), null=True, blank=True
    )
    period_end = models.DateTimeField(
        verbose_name=gettext_lazy("period end"), null=True, blank=True
    )
    # compute
    facility = models.ForeignKey(
        Facility,
        verbose_name=gettext_lazy("facility"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="contributions",
    )
    import_id = models.UUIDField(
        verbose_name=gettext_lazy("import id"),
        null=True,
        blank=True,
        help_text=gettext_lazy("The import it came from."),
    )
    accelerator = models.CharField(
        verbose_name=gettext_lazy("accelerator"), max_length=64, blank=True
    )
    allocations = models.BigIntegerField(
        verbose_name=gettext_lazy("allocations"), null=True, blank=True
    )
    gpu_seconds = models.BigIntegerField(
        verbose_name=gettext_lazy("gpu seconds"), null=True, blank=True
    )
    gpu_hours = models.DecimalField(
        verbose_name=gettext_lazy("gpu hours"),
        max_digits=24,
        decimal_places=6,
        null=True,
        blank=True,
    )
    evidence_sha256 = models.CharField(
        verbose_name=gettext_lazy("evidence sha256"), max_length=64, blank=True
    )
    attested_in = models.BigIntegerField(
        verbose_name=gettext_lazy("attested in"), null=True, blank=True
    )
    # data
    dataset = models.JSONField(
        verbose_name=gettext_lazy("dataset"),
        null=True,
        blank=True,
        help_text=gettext_lazy("Name, manifest, licence, DUO..."),
    )
    tokens = models.BigIntegerField(verbose_name=gettext_lazy("tokens"), null=True, blank=True)
    # funds
    amount = models.DecimalField(
        verbose_name=gettext_lazy("amount"), max_digits=24, decimal_places=6, null=True, blank=True
    )
    amount_micros = models.BigIntegerField(
        verbose_name=gettext_lazy("amount micros"),
        null=True,
        blank=True,
        help_text=gettext_lazy("The amount in millionths: sums stay exact."),
    )
    currency = models.CharField(verbose_name=gettext_lazy("currency"), max_length=3, blank=True)
    date = models.DateField(verbose_name=gettext_lazy("date"), null=True, blank=True)
    confirmed_in = models.BigIntegerField(
        verbose_name=gettext_lazy("confirmed in"),
        null=True,
        blank=True,
        help_text=gettext_lazy("The treasurer's confirmation (or rejection)."),
    )
    claimed = models.JSONField(
        verbose_name=gettext_lazy("claimed"),
        null=True,
        blank=True,
        help_text=gettext_lazy(
            "The amount, currency and day as the member recorded them, when the "
            "treasurer confirmed other figures (which are the ones that count)."
        ),
    )

    class Meta:
        verbose_name = gettext_lazy("contribution")
        verbose_name_plural = gettext_lazy("contributions")
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

    id = models.UUIDField(verbose_name=gettext_lazy("id"), primary_key=True)
    facility = models.ForeignKey(
        Facility,
        verbose_name=gettext_lazy("facility"),
        on_delete=models.PROTECT,
        related_name="imports",
    )
    export_sha256 = models.CharField(verbose_name=gettext_lazy("export sha256"), max_length=64)
    lines = models.BigIntegerField(verbose_name=gettext_lazy("lines"))
    allocations = models.BigIntegerField(verbose_name=gettext_lazy("allocations"))
    left_out = models.JSONField(
        verbose_name=gettext_lazy("left out"),
        default=dict,
        help_text=gettext_lazy("{reason: rows}"),
    )
    recorded_in = models.BigIntegerField(verbose_name=gettext_lazy("recorded in"))
    attested_in = models.BigIntegerField(
        verbose_name=gettext_lazy("attested in"), null=True, blank=True
    )

    class Meta:
        verbose_name = gettext_lazy("sacct import")
        verbose_name_plural = gettext_lazy("sacct imports")
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

    id = models.UUIDField(verbose_name=gettext_lazy("id"), primary_key=True)
    contribution = models.ForeignKey(
        Contribution,
        verbose_name=gettext_lazy("contribution"),
        on_delete=models.PROTECT,
        related_name="disputes",
    )
    member = models.ForeignKey(
        Member,
        verbose_name=gettext_lazy("member"),
        on_delete=models.PROTECT,
        related_name="disputes",
    )
    reason = models.CharField(verbose_name=gettext_lazy("reason"), max_length=500)
    opened_in = models.BigIntegerField(verbose_name=gettext_lazy("opened in"))
    outcome = models.CharField(
        verbose_name=gettext_lazy("outcome"),
        max_length=16,
        blank=True,
        help_text=gettext_lazy("upheld or dismissed"),
    )
    resolution = models.CharField(
        verbose_name=gettext_lazy("resolution"), max_length=500, blank=True
    )
    resolved_in = models.BigIntegerField(
        verbose_name=gettext_lazy("resolved in"), null=True, blank=True
    )

    class Meta:
        verbose_name = gettext_lazy("dispute")
        verbose_name_plural = gettext_lazy("disputes")
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

    facility = models.ForeignKey(
        Facility, verbose_name=gettext_lazy("facility"), on_delete=models.PROTECT, related_name="+"
    )
    key = models.CharField(verbose_name=gettext_lazy("key"), max_length=32)
    import_id = models.UUIDField(verbose_name=gettext_lazy("import id"))

    class Meta:
        verbose_name = gettext_lazy("counted allocation")
        verbose_name_plural = gettext_lazy("counted allocations")
        constraints = [
            models.UniqueConstraint(fields=["facility", "key"], name="contributions_count_once")
        ]

    def __str__(self) -> str:
        return f"allocation {self.key} of {self.facility_id}"
