"""Access: models, training runs, checkpoints and evaluations (projections of the
ledger), download authorisations and the download log."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consortium.governance.models import Agreement, Member
from ledger.models import AppendOnly

# --- models and their checkpoints: projections of the ledger ----------------------------


class TrainedModel(models.Model):
    """A model the consortium trains, under the agreement its weights are licensed by."""

    code = models.CharField(
        _("code"),
        max_length=64,
        primary_key=True,
        help_text=_("A lowercase slug."),
    )
    name = models.CharField(_("name"), max_length=200)
    agreement = models.ForeignKey(
        Agreement,
        verbose_name=_("agreement"),
        on_delete=models.PROTECT,
        related_name="models",
    )
    registered_in = models.BigIntegerField(_("registered in"))

    class Meta:
        verbose_name = _("model")
        verbose_name_plural = _("models")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class TrainingRun(models.Model):
    """What a training run used: datasets by manifest hash, compute by contribution."""

    id = models.UUIDField(_("id"), primary_key=True)
    model = models.ForeignKey(
        TrainedModel,
        verbose_name=_("model"),
        on_delete=models.PROTECT,
        related_name="runs",
    )
    name = models.CharField(_("name"), max_length=200)
    datasets = models.JSONField(
        _("datasets"),
        help_text=_("Manifest SHA-256 of each dataset used."),
    )
    compute = models.JSONField(
        _("compute"),
        help_text=_("Ids of the compute contributions used."),
    )
    recorded_in = models.BigIntegerField(_("recorded in"))

    class Meta:
        verbose_name = _("training run")
        verbose_name_plural = _("training runs")
        ordering = ["-recorded_in"]

    def __str__(self) -> str:
        return f"{self.model_id}: {self.name}"


class ModelCheckpoint(models.Model):
    """A checkpoint: its files (path, size, SHA-256) and the digest of their manifest."""

    class State(models.TextChoices):
        PUBLISHED = "published", _("published")
        BLOCKED = "blocked", _("blocked (a stored file no longer matches its hash)")

    digest = models.CharField(
        _("digest"),
        max_length=64,
        primary_key=True,
        help_text=_("Manifest SHA-256."),
    )
    model = models.ForeignKey(
        TrainedModel,
        verbose_name=_("model"),
        on_delete=models.PROTECT,
        related_name="checkpoints",
    )
    name = models.CharField(_("name"), max_length=200)
    run = models.ForeignKey(
        TrainingRun,
        verbose_name=_("run"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="checkpoints",
    )
    files = models.JSONField(
        _("files"),
        help_text=_("[{path, size, sha256}] in manifest order."),
    )
    size = models.BigIntegerField(_("size"))
    published_in = models.BigIntegerField(_("published in"))
    state = models.CharField(
        _("state"),
        max_length=16,
        choices=State.choices,
        default=State.PUBLISHED,
    )
    blocked_in = models.BigIntegerField(_("blocked in"), null=True, blank=True)
    blocked_reason = models.CharField(_("blocked reason"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("checkpoint")
        verbose_name_plural = _("checkpoints")
        ordering = ["-published_in"]

    def __str__(self) -> str:
        return f"{self.model_id} {self.name}"


class Evaluation(models.Model):
    """An accredited evaluator's attestation of a checkpoint: the hash of its safety and
    ethics evaluation report, and its verdict."""

    id = models.BigIntegerField(
        _("id"),
        primary_key=True,
        help_text=_("Index of the attestation entry."),
    )
    checkpoint = models.ForeignKey(
        ModelCheckpoint,
        verbose_name=_("checkpoint"),
        on_delete=models.PROTECT,
        related_name="evaluations",
    )
    evaluator = models.CharField(
        _("evaluator"),
        max_length=64,
        help_text=_("The evaluator's code (key owner)."),
    )
    report_sha256 = models.CharField(_("report sha256"), max_length=64)
    verdict = models.CharField(_("verdict"), max_length=8)
    attested_at = models.CharField(_("attested at"), max_length=40)

    class Meta:
        verbose_name = _("evaluation")
        verbose_name_plural = _("evaluations")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.evaluator}: {self.verdict} for {self.checkpoint_id[:12]}…"


class DownloadAuthorization(models.Model):
    """A download the gate allowed, as recorded on the ledger."""

    token_id = models.CharField(_("token id"), max_length=32, primary_key=True)
    member = models.ForeignKey(
        Member,
        verbose_name=_("member"),
        on_delete=models.PROTECT,
        related_name="downloads",
    )
    seat = models.CharField(
        _("seat"),
        max_length=36,
        help_text=_("The delegate's seat (pseudonymous)."),
    )
    checkpoint = models.ForeignKey(
        ModelCheckpoint,
        verbose_name=_("checkpoint"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    scope = models.CharField(_("scope"), max_length=16)
    files = models.JSONField(_("files"))
    rule = models.CharField(_("rule"), max_length=300)
    figures = models.JSONField(_("figures"), default=dict)
    expires = models.CharField(_("expires"), max_length=40)
    authorized_in = models.BigIntegerField(_("authorized in"))

    class Meta:
        verbose_name = _("download authorization")
        verbose_name_plural = _("download authorizations")
        ordering = ["-authorized_in"]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.checkpoint_id[:12]}… ({self.scope})"


class DownloadEvent(AppendOnly):
    """The access log: every file served and every request refused (local data, kept as
    evidence: the ORM and the database refuse to change or remove a line, migration
    0009)."""

    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    member = models.CharField(_("member"), max_length=32, blank=True, db_index=True)
    username = models.CharField(_("username"), max_length=150, blank=True)
    checkpoint = models.CharField(_("checkpoint"), max_length=64, blank=True)
    path = models.CharField(_("path"), max_length=500, blank=True)
    outcome = models.CharField(
        _("outcome"),
        max_length=8,
        help_text=_("served or denied"),
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    token_id = models.CharField(_("token id"), max_length=32, blank=True)
    remote_addr = models.CharField(_("remote addr"), max_length=64, blank=True)
    bytes_served = models.BigIntegerField(_("bytes served"), default=0)

    class Meta:
        verbose_name = _("download event")
        verbose_name_plural = _("download events")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.member} {self.outcome} {self.path}"
