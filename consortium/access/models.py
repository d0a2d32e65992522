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
        max_length=64, primary_key=True, help_text=gettext_lazy("A lowercase slug.")
    )
    name = models.CharField(max_length=200)
    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="models")
    registered_in = models.BigIntegerField()

    class Meta:
        ordering = ["code"]
        verbose_name = gettext_lazy("model")

    def __str__(self) -> str:
        return self.name


class TrainingRun(models.Model):
    """What a training run used: datasets by manifest hash, compute by contribution."""

    id = models.UUIDField(primary_key=True)
    model = models.ForeignKey(TrainedModel, on_delete=models.PROTECT, related_name="runs")
    name = models.CharField(max_length=200)
    datasets = models.JSONField(help_text=gettext_lazy("Manifest SHA-256 of each dataset used."))
    compute = models.JSONField(help_text=gettext_lazy("Ids of the compute contributions used."))
    recorded_in = models.BigIntegerField()

    class Meta:
        ordering = ["-recorded_in"]

    def __str__(self) -> str:
        return f"{self.model_id}: {self.name}"


class ModelCheckpoint(models.Model):
    """A checkpoint: its files (path, size, SHA-256) and the digest of their manifest."""

    class State(models.TextChoices):
        PUBLISHED = "published", gettext_lazy("published")
        BLOCKED = "blocked", gettext_lazy("blocked (a stored file no longer matches its hash)")

    digest = models.CharField(
        max_length=64, primary_key=True, help_text=gettext_lazy("Manifest SHA-256.")
    )
    model = models.ForeignKey(TrainedModel, on_delete=models.PROTECT, related_name="checkpoints")
    name = models.CharField(max_length=200)
    run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="checkpoints"
    )
    files = models.JSONField(help_text=gettext_lazy("[{path, size, sha256}] in manifest order."))
    size = models.BigIntegerField()
    published_in = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PUBLISHED)
    blocked_in = models.BigIntegerField(null=True, blank=True)
    blocked_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-published_in"]
        verbose_name = gettext_lazy("checkpoint")

    def __str__(self) -> str:
        return f"{self.model_id} {self.name}"


class Evaluation(models.Model):
    """An accredited evaluator's attestation of a checkpoint: the hash of its safety and
    ethics evaluation report, and its verdict."""

    id = models.BigIntegerField(
        primary_key=True, help_text=gettext_lazy("Index of the attestation entry.")
    )
    checkpoint = models.ForeignKey(
        ModelCheckpoint, on_delete=models.PROTECT, related_name="evaluations"
    )
    evaluator = models.CharField(
        max_length=64, help_text=gettext_lazy("The evaluator's code (key owner).")
    )
    report_sha256 = models.CharField(max_length=64)
    verdict = models.CharField(max_length=8)
    attested_at = models.CharField(max_length=40)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.evaluator}: {self.verdict} for {self.checkpoint_id[:12]}…"


class DownloadAuthorization(models.Model):
    """A download the gate allowed, as recorded on the ledger."""

    token_id = models.CharField(max_length=32, primary_key=True)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="downloads")
    seat = models.CharField(
        max_length=36, help_text=gettext_lazy("The delegate's seat (pseudonymous).")
    )
    checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.PROTECT, related_name="+")
    scope = models.CharField(max_length=16)
    files = models.JSONField()
    rule = models.CharField(max_length=300)
    figures = models.JSONField(default=dict)
    expires = models.CharField(max_length=40)
    authorized_in = models.BigIntegerField()

    class Meta:
        ordering = ["-authorized_in"]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.checkpoint_id[:12]}… ({self.scope})"


class DownloadEvent(AppendOnly):
    """The access log: every file served and every request refused (local data, kept as
    evidence: the ORM and the database refuse to change or remove a line, migration
    0009)."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    member = models.CharField(max_length=32, blank=True, db_index=True)
    username = models.CharField(max_length=150, blank=True)
    checkpoint = models.CharField(max_length=64, blank=True)
    path = models.CharField(max_length=500, blank=True)
    outcome = models.CharField(max_length=8, help_text=gettext_lazy("served or denied"))
    reason = models.CharField(max_length=300, blank=True)
    token_id = models.CharField(max_length=32, blank=True)
    remote_addr = models.CharField(max_length=64, blank=True)
    bytes_served = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.member} {self.outcome} {self.path}"
