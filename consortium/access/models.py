"""Access: models, training runs, checkpoints and evaluations (projections of the
ledger), download authorisations and the download log."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from consortium.governance.models import Agreement, Member
from ledger.models import AppendOnly

# --- models and their checkpoints: projections of the ledger ----------------------------


class TrainedModel(models.Model):
    """A model the consortium trains, under the agreement its weights are licensed by."""

    code = models.CharField(
        verbose_name=gettext_lazy("code"),
        max_length=64,
        primary_key=True,
        help_text=gettext_lazy("A lowercase slug."),
    )
    name = models.CharField(verbose_name=gettext_lazy("name"), max_length=200)
    agreement = models.ForeignKey(
        Agreement,
        verbose_name=gettext_lazy("agreement"),
        on_delete=models.PROTECT,
        related_name="models",
    )
    registered_in = models.BigIntegerField(verbose_name=gettext_lazy("registered in"))

    class Meta:
        verbose_name = gettext_lazy("model")
        verbose_name_plural = gettext_lazy("models")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class TrainingRun(models.Model):
    """What a training run used: datasets by manifest hash, compute by contribution."""

    id = models.UUIDField(verbose_name=gettext_lazy("id"), primary_key=True)
    model = models.ForeignKey(
        TrainedModel,
        verbose_name=gettext_lazy("model"),
        on_delete=models.PROTECT,
        related_name="runs",
    )
    name = models.CharField(verbose_name=gettext_lazy("name"), max_length=200)
    datasets = models.JSONField(
        verbose_name=gettext_lazy("datasets"),
        help_text=gettext_lazy("Manifest SHA-256 of each dataset used."),
    )
    compute = models.JSONField(
        verbose_name=gettext_lazy("compute"),
        help_text=gettext_lazy("Ids of the compute contributions used."),
    )
    recorded_in = models.BigIntegerField(verbose_name=gettext_lazy("recorded in"))

    class Meta:
        verbose_name = gettext_lazy("training run")
        verbose_name_plural = gettext_lazy("training runs")
        ordering = ["-recorded_in"]

    def __str__(self) -> str:
        return f"{self.model_id}: {self.name}"


class ModelCheckpoint(models.Model):
    """A checkpoint: its files (path, size, SHA-256) and the digest of their manifest."""

    class State(models.TextChoices):
        PUBLISHED = "published", gettext_lazy("published")
        BLOCKED = "blocked", gettext_lazy("blocked (a stored file no longer matches its hash)")

    digest = models.CharField(
        verbose_name=gettext_lazy("digest"),
        max_length=64,
        primary_key=True,
        help_text=gettext_lazy("Manifest SHA-256."),
    )
    model = models.ForeignKey(
        TrainedModel,
        verbose_name=gettext_lazy("model"),
        on_delete=models.PROTECT,
        related_name="checkpoints",
    )
    name = models.CharField(verbose_name=gettext_lazy("name"), max_length=200)
    run = models.ForeignKey(
        TrainingRun,
        verbose_name=gettext_lazy("run"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="checkpoints",
    )
    files = models.JSONField(
        verbose_name=gettext_lazy("files"),
        help_text=gettext_lazy("[{path, size, sha256}] in manifest order."),
    )
    size = models.BigIntegerField(verbose_name=gettext_lazy("size"))
    published_in = models.BigIntegerField(verbose_name=gettext_lazy("published in"))
    state = models.CharField(
        verbose_name=gettext_lazy("state"),
        max_length=16,
        choices=State.choices,
        default=State.PUBLISHED,
    )
    blocked_in = models.BigIntegerField(
        verbose_name=gettext_lazy("blocked in"), null=True, blank=True
    )
    blocked_reason = models.CharField(
        verbose_name=gettext_lazy("blocked reason"), max_length=300, blank=True
    )

    class Meta:
        verbose_name = gettext_lazy("checkpoint")
        verbose_name_plural = gettext_lazy("checkpoints")
        ordering = ["-published_in"]

    def __str__(self) -> str:
        return f"{self.model_id} {self.name}"


class Evaluation(models.Model):
    """An accredited evaluator's attestation of a checkpoint: the hash of its safety and
    ethics evaluation report, and its verdict."""

    id = models.BigIntegerField(
        verbose_name=gettext_lazy("id"),
        primary_key=True,
        help_text=gettext_lazy("Index of the attestation entry."),
    )
    checkpoint = models.ForeignKey(
        ModelCheckpoint,
        verbose_name=gettext_lazy("checkpoint"),
        on_delete=models.PROTECT,
        related_name="evaluations",
    )
    evaluator = models.CharField(
        verbose_name=gettext_lazy("evaluator"),
        max_length=64,
        help_text=gettext_lazy("The evaluator's code (key owner)."),
    )
    report_sha256 = models.CharField(verbose_name=gettext_lazy("report sha256"), max_length=64)
    verdict = models.CharField(verbose_name=gettext_lazy("verdict"), max_length=8)
    attested_at = models.CharField(verbose_name=gettext_lazy("attested at"), max_length=40)

    class Meta:
        verbose_name = gettext_lazy("evaluation")
        verbose_name_plural = gettext_lazy("evaluations")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.evaluator}: {self.verdict} for {self.checkpoint_id[:12]}…"


class DownloadAuthorization(models.Model):
    """A download the gate allowed, as recorded on the ledger."""

    token_id = models.CharField(
        verbose_name=gettext_lazy("token id"), max_length=32, primary_key=True
    )
    member = models.ForeignKey(
        Member,
        verbose_name=gettext_lazy("member"),
        on_delete=models.PROTECT,
        related_name="downloads",
    )
    seat = models.CharField(
        verbose_name=gettext_lazy("seat"),
        max_length=36,
        help_text=gettext_lazy("The delegate's seat (pseudonymous)."),
    )
    checkpoint = models.ForeignKey(
        ModelCheckpoint,
        verbose_name=gettext_lazy("checkpoint"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    scope = models.CharField(verbose_name=gettext_lazy("scope"), max_length=16)
    files = models.JSONField(verbose_name=gettext_lazy("files"))
    rule = models.CharField(verbose_name=gettext_lazy("rule"), max_length=300)
    figures = models.JSONField(verbose_name=gettext_lazy("figures"), default=dict)
    expires = models.CharField(verbose_name=gettext_lazy("expires"), max_length=40)
    authorized_in = models.BigIntegerField(verbose_name=gettext_lazy("authorized in"))

    class Meta:
        verbose_name = gettext_lazy("download authorization")
        verbose_name_plural = gettext_lazy("download authorizations")
        ordering = ["-authorized_in"]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.checkpoint_id[:12]}… ({self.scope})"


class DownloadEvent(AppendOnly):
    """The access log: every file served and every request refused (local data, kept as
    evidence: the ORM and the database refuse to change or remove a line, migration
    0009)."""

    at = models.DateTimeField(verbose_name=gettext_lazy("at"), default=timezone.now, db_index=True)
    member = models.CharField(
        verbose_name=gettext_lazy("member"), max_length=32, blank=True, db_index=True
    )
    username = models.CharField(verbose_name=gettext_lazy("username"), max_length=150, blank=True)
    checkpoint = models.CharField(
        verbose_name=gettext_lazy("checkpoint"), max_length=64, blank=True
    )
    path = models.CharField(verbose_name=gettext_lazy("path"), max_length=500, blank=True)
    outcome = models.CharField(
        verbose_name=gettext_lazy("outcome"),
        max_length=8,
        help_text=gettext_lazy("served or denied"),
    )
    reason = models.CharField(verbose_name=gettext_lazy("reason"), max_length=300, blank=True)
    token_id = models.CharField(verbose_name=gettext_lazy("token id"), max_length=32, blank=True)
    remote_addr = models.CharField(
        verbose_name=gettext_lazy("remote addr"), max_length=64, blank=True
    )
    bytes_served = models.BigIntegerField(verbose_name=gettext_lazy("bytes served"), default=0)

    class Meta:
        verbose_name = gettext_lazy("download event")
        verbose_name_plural = gettext_lazy("download events")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.member} {self.outcome} {self.path}"
