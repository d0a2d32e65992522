"""The witnesses' tables.

``Witness`` and ``WitnessPolicy`` are projections of the log (``witness.registered``,
``witness.retired``, and the proposal decisions that adopt a policy): replay rebuilds
them. ``WitnessContact`` is the collection's own working state (where each witness is,
as far as the log knows). ``Cosignature`` and ``WitnessAlarm`` are records, added and
never changed.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from ledger.models import AppendOnly


class Witness(models.Model):
    """A member's witness, as its ``witness.registered`` entry describes it."""

    name = models.CharField(
        _("name"),
        max_length=200,
        primary_key=True,
        help_text=_("Its cosignature key name (unique)."),
    )
    member = models.CharField(
        _("member"),
        max_length=32,
        help_text=_("The member that runs it."),
    )
    url = models.CharField(
        _("url"),
        max_length=500,
        help_text=_("Its tlog-witness submission prefix."),
    )
    vkey = models.CharField(
        _("vkey"),
        max_length=200,
        help_text=_("Ed25519 cosignature/v1 verifier key (name+hex8+base64)."),
    )
    mldsa_vkey = models.TextField(
        _("mldsa vkey"),
        blank=True,
        default="",
        help_text=_("ML-DSA-44 verifier key, if the witness has one."),
    )
    registered_in = models.BigIntegerField(
        _("registered in"),
        help_text=_("Index of the registering entry."),
    )
    retired_in = models.BigIntegerField(
        _("retired in"),
        null=True,
        blank=True,
        help_text=_("Index of the retiring entry; not asked after it."),
    )

    class Meta:
        verbose_name = _("registered witness")
        verbose_name_plural = _("registered witnesses")
        ordering = ["registered_in"]

    def __str__(self) -> str:
        return f"witness {self.name} of {self.member}"

    @property
    def active(self) -> bool:
        return self.retired_in is None


class WitnessPolicy(models.Model):
    """A C2SP tlog-policy text adopted by an accepted proposal; the latest one applies."""

    adopted_in = models.BigIntegerField(
        _("adopted in"),
        primary_key=True,
        help_text=_("Index of the decision that adopted it."),
    )
    text = models.TextField(_("text"))

    class Meta:
        verbose_name = _("witness policy")
        verbose_name_plural = _("witness policies")
        ordering = ["-adopted_in"]

    def __str__(self) -> str:
        return f"witness policy adopted at #{self.adopted_in}"


class WitnessContact(models.Model):
    """Where a witness stands, as the collection last heard it."""

    witness = models.CharField(_("witness"), max_length=200, primary_key=True)
    last_size = models.BigIntegerField(
        _("last size"),
        default=0,
        help_text=_("The latest tree size it cosigned (or told us it holds)."),
    )
    last_contact = models.DateTimeField(_("last contact"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")

    class Meta:
        verbose_name = _("witness contact")
        verbose_name_plural = _("witness contacts")

    def __str__(self) -> str:
        return f"contact with {self.witness}"


class Cosignature(AppendOnly):
    """One cosignature line a witness returned for a checkpoint, verified under the
    registered key before it was kept."""

    # No constraint in the database: checkpoints are never removed, and one would stand
    # between a TRUNCATE of the checkpoints and the trigger that refuses it by name.
    checkpoint = models.ForeignKey(
        "ledger.Checkpoint",
        verbose_name=_("checkpoint"),
        on_delete=models.PROTECT,
        related_name="cosignatures",
        db_constraint=False,
    )
    witness = models.CharField(_("witness"), max_length=200, db_index=True)
    key_id = models.CharField(
        _("key id"),
        max_length=8,
        help_text=_("The line's key id (hex)."),
    )
    line = models.TextField(
        _("line"),
        help_text=_("The signature line, with its newline."),
    )
    timestamp = models.BigIntegerField(
        _("timestamp"),
        help_text=_("The cosignature's time (Unix seconds)."),
    )
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("cosignature")
        verbose_name_plural = _("cosignatures")
        ordering = ["checkpoint_id", "witness", "key_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["checkpoint", "witness", "key_id"], name="ledger_cosignature_once"
            )
        ]

    def __str__(self) -> str:
        return f"cosignature by {self.witness}"


class WitnessAlarm(AppendOnly):
    """A witness's answer that may mean a fork or a rollback: a 422, or a size ahead of
    the log's."""

    class Kind(models.TextChoices):
        REFUSED = "refused", _("refused (422: inconsistent or forked)")
        AHEAD = "ahead", _("witness ahead of the log")

    witness = models.CharField(_("witness"), max_length=200, db_index=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    log_size = models.BigIntegerField(
        _("log size"),
        help_text=_("The size of the checkpoint sent."),
    )
    witness_size = models.BigIntegerField(
        _("witness size"),
        null=True,
        blank=True,
        help_text=_("The size the witness holds, where it said."),
    )
    detail = models.TextField(_("detail"))
    raised_at = models.DateTimeField(_("raised at"), db_index=True)

    class Meta:
        verbose_name = _("witness alarm")
        verbose_name_plural = _("witness alarms")
        ordering = ["-raised_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} alarm from {self.witness} at size {self.log_size}"
