"""Contributions: projections of the ledger (facilities, compute, data, funds, disputes)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from consortium.governance.models import Member


class Facility(models.Model):
    """A computing facility (a national supercomputer), run by a member, with a key of
    its own that attests the compute it delivered."""

    code = models.CharField(
        _("code"),
        max_length=32,
        primary_key=True,
        help_text=_("A lowercase slug."),
    )
    name = models.CharField(_("name"), max_length=200)
    operator = models.ForeignKey(
        Member,
        verbose_name=_("operator"),
        on_delete=models.PROTECT,
        related_name="facilities",
    )
    country = models.CharField(_("country"), max_length=2)
    timezone = models.CharField(
        _("timezone"),
        max_length=64,
        help_text=_("IANA zone its accounting uses."),
    )
    default_accelerator = models.CharField(_("default accelerator"), max_length=64)
    partitions = models.JSONField(
        _("partitions"),
        default=dict,
        help_text=_("{partition: accelerator type}"),
    )
    accounts = models.JSONField(
        _("accounts"),
        default=dict,
        help_text=_("{account: member code}"),
    )
    registered_in = models.BigIntegerField(_("registered in"))
    changed_in = models.BigIntegerField(_("changed in"))

    class Meta:
        verbose_name = _("facility")
        verbose_name_plural = _("facilities")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Contribution(models.Model):
    """What a member delivered: compute, data or funds. Values are exact decimals."""

    class Kind(models.TextChoices):
        COMPUTE = "compute", _("compute")
        DATA = "data", _("data")
        FUNDS = "funds", _("funds")

    class State(models.TextChoices):
        REPORTED = "reported", _("reported, awaiting the facility's attestation")
        PENDING = "pending", _("pending, awaiting the treasurer's confirmation")
        COUNTED = "counted", _("counted")
        REJECTED = "rejected", _("rejected by the treasurer")
        VOID = "void", _("void (a dispute was upheld)")

    id = models.UUIDField(_("id"), primary_key=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    member = models.ForeignKey(
        Member,
        verbose_name=_("member"),
        on_delete=models.PROTECT,
        related_name="contributions",
    )
    state = models.CharField(_("state"), max_length=16, choices=State.choices)
    disputed = models.BooleanField(
        _("disputed"),
        default=False,
        help_text=_(
            "Under an open dispute: it keeps its state (and counts if counted) until "
            "the dispute is upheld."
        ),
    )
    recorded_in = models.BigIntegerField(_("recorded in"))
    recorded_at = models.CharField(
        _("recorded at"),
        max_length=40,
        help_text=_("Integration time, RFC 3339 UTC."),
    )
    delivered_on = models.DateField(
        _("delivered on"),
        help_text=_("The day it counts for: compute's last day, funds' payment, data's record."),
    )
    period_start = models.DateTimeField(_("period start"), null=True, blank=True)
    period_end = models.DateTimeField(_("period end"), null=True, blank=True)
    # compute
    facility = models.ForeignKey(
        Facility,
        verbose_name=_("facility"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="contributions",
    )
    import_id = models.UUIDField(
        _("import id"),
        null=True,
        blank=True,
        help_text=_("The import it came from."),
    )
    accelerator = models.CharField(_("accelerator"), max_length=64, blank=True)
    allocations = models.BigIntegerField(_("allocations"), null=True, blank=True)
    gpu_seconds = models.BigIntegerField(_("gpu seconds"), null=True, blank=True)
    gpu_hours = models.DecimalField(
        _("gpu hours"),
        max_digits=24,
        decimal_places=6,
        null=True,
        blank=True,
    )
    evidence_sha256 = models.CharField(_("evidence sha256"), max_length=64, blank=True)
    attested_in = models.BigIntegerField(_("attested in"), null=True, blank=True)
    # data
    dataset = models.JSONField(
        _("dataset"),
        null=True,
        blank=True,
        help_text=_("Name, manifest, licence, DUO..."),
    )
    tokens = models.BigIntegerField(_("tokens"), null=True, blank=True)
    # funds
    amount = models.DecimalField(
        _("amount"), max_digits=24, decimal_places=6, null=True, blank=True
    )
    amount_micros = models.BigIntegerField(
        _("amount micros"),
        null=True,
        blank=True,
        help_text=_("The amount in millionths: sums stay exact."),
    )
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    date = models.DateField(_("date"), null=True, blank=True)
    confirmed_in = models.BigIntegerField(
        _("confirmed in"),
        null=True,
        blank=True,
        help_text=_("The treasurer's confirmation (or rejection)."),
    )
    claimed = models.JSONField(
        _("claimed"),
        null=True,
        blank=True,
        help_text=_(
            "The amount, currency and day as the member recorded them, when the "
            "treasurer confirmed other figures (which are the ones that count)."
        ),
    )

    class Meta:
        verbose_name = _("contribution")
        verbose_name_plural = _("contributions")
        ordering = ["-recorded_in"]
        indexes = [
            models.Index(fields=["delivered_on", "kind", "state"]),
            # The report without a period (a balance over all time) selects by member and
            # kind, and windows by recorded_in: without this it scans the table.
            models.Index(
                fields=["member", "kind", "recorded_in"], name="contrib_member_kind_recorded"
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.COMPUTE:
            return f"{self.gpu_hours} {self.accelerator} GPU-hours by {self.member_id}"
        if self.kind == self.Kind.FUNDS:
            return f"{self.amount} {self.currency} by {self.member_id}"
        return f"dataset {self.dataset.get('name') if self.dataset else ''} by {self.member_id}"


class ContributionTally(models.Model):
    """The sums the balances need, per member, kind, accelerator or currency, state,
    dispute and valuation epoch (the ``adopted_in`` of the valuation table in force when
    the contributions were recorded; 0 before any): a projection the contribution
    appliers keep, so a balance costs a few queries whatever the number of contributions
    (``contributions.balances``)."""

    key = models.CharField(_("key"), max_length=200, primary_key=True)
    member = models.ForeignKey(
        Member, verbose_name=_("member"), on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Contribution.Kind.choices)
    accelerator = models.CharField(_("accelerator"), max_length=64, blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    state = models.CharField(_("state"), max_length=16, choices=Contribution.State.choices)
    disputed = models.BooleanField(_("disputed"), default=False)
    epoch = models.BigIntegerField(_("valuation epoch"))
    contributions = models.BigIntegerField(_("contributions"), default=0)
    gpu_seconds = models.BigIntegerField(_("gpu seconds"), default=0)
    tokens = models.BigIntegerField(_("tokens"), default=0)
    untokened = models.BigIntegerField(_("datasets without tokens"), default=0)
    # Millionths summed past 64 bits stay exact (a decimal of whole numbers).
    amount_micros = models.DecimalField(
        _("amount micros"), max_digits=40, decimal_places=0, default=0
    )

    class Meta:
        verbose_name = _("contribution tally")
        verbose_name_plural = _("contribution tallies")
        ordering = ["key"]
        indexes = [models.Index(fields=["member", "kind"], name="contrib_tally_member_kind")]

    def __str__(self) -> str:
        return self.key


class SacctImport(models.Model):
    """One accounting export imported for a facility: its hash, and what it held."""

    id = models.UUIDField(_("id"), primary_key=True)
    facility = models.ForeignKey(
        Facility,
        verbose_name=_("facility"),
        on_delete=models.PROTECT,
        related_name="imports",
    )
    export_sha256 = models.CharField(_("export sha256"), max_length=64)
    lines = models.BigIntegerField(_("lines"))
    allocations = models.BigIntegerField(_("allocations"))
    left_out = models.JSONField(
        _("left out"),
        default=dict,
        help_text=_("{reason: rows}"),
    )
    recorded_in = models.BigIntegerField(_("recorded in"))
    attested_in = models.BigIntegerField(_("attested in"), null=True, blank=True)

    class Meta:
        verbose_name = _("sacct import")
        verbose_name_plural = _("sacct imports")
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

    id = models.UUIDField(_("id"), primary_key=True)
    contribution = models.ForeignKey(
        Contribution,
        verbose_name=_("contribution"),
        on_delete=models.PROTECT,
        related_name="disputes",
    )
    member = models.ForeignKey(
        Member,
        verbose_name=_("member"),
        on_delete=models.PROTECT,
        related_name="disputes",
    )
    reason = models.CharField(_("reason"), max_length=500)
    opened_in = models.BigIntegerField(_("opened in"))
    outcome = models.CharField(
        _("outcome"),
        max_length=16,
        blank=True,
        help_text=_("upheld or dismissed"),
    )
    resolution = models.CharField(_("resolution"), max_length=500, blank=True)
    resolved_in = models.BigIntegerField(_("resolved in"), null=True, blank=True)

    class Meta:
        verbose_name = _("dispute")
        verbose_name_plural = _("disputes")
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
        Facility, verbose_name=_("facility"), on_delete=models.PROTECT, related_name="+"
    )
    key = models.CharField(_("key"), max_length=32)
    import_id = models.UUIDField(_("import id"))

    class Meta:
        verbose_name = _("counted allocation")
        verbose_name_plural = _("counted allocations")
        constraints = [
            models.UniqueConstraint(fields=["facility", "key"], name="contributions_count_once")
        ]

    def __str__(self) -> str:
        return f"allocation {self.key} of {self.facility_id}"
