"""The log's tables.

``Entry``, ``TreeHash`` and ``Checkpoint`` are append-only: triggers installed by
migration 0002 make the database refuse UPDATE, DELETE and TRUNCATE on them.
``LogHead`` is updated by every append but never removed (migration 0007).
``Key`` is the key registry, a projection of the key entries; ``SealedKey`` holds
hosted private keys sealed under the key-encryption key, append-only (migration 0008).
"""

from __future__ import annotations

import base64
import json
from functools import cached_property

from django.db import models
from django.utils.translation import gettext_lazy

from ledger.core.note import verifier_key


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} is append-only")

    def delete(self):
        raise TypeError(f"{self.model.__name__} is append-only")


class AppendOnly(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError(f"{type(self).__name__} is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} is append-only")


class Entry(AppendOnly):
    """One signed ledger entry at its index in the tree.

    The leaf holds everything; the other columns are copies for lookups (by id, kind,
    author), which `ledger verify` checks against the leaf.
    """

    index = models.BigIntegerField(verbose_name=gettext_lazy("index"), primary_key=True)
    entry_id = models.CharField(verbose_name=gettext_lazy("entry id"), max_length=128, unique=True)
    kind = models.CharField(verbose_name=gettext_lazy("kind"), max_length=64, db_index=True)
    author = models.CharField(verbose_name=gettext_lazy("author key"), max_length=64, db_index=True)
    leaf = models.BinaryField(
        verbose_name=gettext_lazy("leaf"),
        help_text=gettext_lazy("The exact leaf bytes: canonical JSON."),
    )
    leaf_hash = models.BinaryField(verbose_name=gettext_lazy("leaf hash"), max_length=32)

    class Meta:
        verbose_name = gettext_lazy("entry")
        verbose_name_plural = gettext_lazy("entries")
        ordering = ["index"]

    def __str__(self) -> str:
        return f"#{self.index} {self.kind}"

    @cached_property
    def document(self) -> dict:
        return json.loads(bytes(self.leaf))

    @property
    def envelope(self) -> dict:
        return self.document["entry"]

    @property
    def payload(self) -> dict:
        return self.envelope["payload"]

    @property
    def time(self) -> str:
        """When the author says it signed the entry (RFC 3339 UTC, from the leaf)."""
        return self.envelope["time"]

    @property
    def integrated_time(self) -> str:
        """When the log added the entry (RFC 3339 UTC, from the leaf)."""
        return self.document["integrated_time"]

    @property
    def signature_b64(self) -> str:
        return self.document["signature"]

    @property
    def leaf_b64(self) -> str:
        return base64.b64encode(bytes(self.leaf)).decode()

    @property
    def leaf_hash_b64(self) -> str:
        return base64.b64encode(bytes(self.leaf_hash)).decode()


class TreeHash(AppendOnly):
    """A stored Merkle hash at its dense storage index (see ``ledger.core.merkle``)."""

    idx = models.BigIntegerField(verbose_name=gettext_lazy("idx"), primary_key=True)
    hash = models.BinaryField(verbose_name=gettext_lazy("hash"), max_length=32)

    class Meta:
        verbose_name = gettext_lazy("tree hash")
        verbose_name_plural = gettext_lazy("tree hashes")

    def __str__(self) -> str:
        return f"tree hash {self.idx}"


class LogHead(models.Model):
    """The tree's current size and right-edge hashes: one row, updated by every append.

    Reading it with SELECT ... FOR UPDATE is the sequence lock on PostgreSQL, and saves
    re-reading the frontier from the stored hashes. It is derived state: appends check
    it against the entries, `ledger verify` against the rebuilt tree, and if it were
    ever wrong, the stored hashes would no longer extend the last signed checkpoint,
    which publication refuses to sign.
    """

    id = models.PositiveSmallIntegerField(
        verbose_name=gettext_lazy("id"), primary_key=True, default=1
    )
    size = models.BigIntegerField(verbose_name=gettext_lazy("size"), default=0)
    frontier = models.BinaryField(
        verbose_name=gettext_lazy("frontier"),
        default=b"",
        help_text=gettext_lazy("Hashes at root_indexes(size), concatenated."),
    )

    class Meta:
        verbose_name = gettext_lazy("log head")
        verbose_name_plural = gettext_lazy("log heads")
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="ledger_loghead_single_row")
        ]

    def __str__(self) -> str:
        return f"log head at size {self.size}"


class Checkpoint(AppendOnly):
    """A C2SP tlog-checkpoint signed note published by the log key."""

    tree_size = models.BigIntegerField(verbose_name=gettext_lazy("tree size"), unique=True)
    root_hash = models.BinaryField(verbose_name=gettext_lazy("root hash"), max_length=32)
    note = models.TextField(
        verbose_name=gettext_lazy("note"), help_text=gettext_lazy("The signed note, byte for byte.")
    )
    published_at = models.DateTimeField(verbose_name=gettext_lazy("published at"))

    class Meta:
        verbose_name = gettext_lazy("checkpoint")
        verbose_name_plural = gettext_lazy("checkpoints")
        ordering = ["-tree_size"]
        get_latest_by = "tree_size"

    def __str__(self) -> str:
        return f"checkpoint at size {self.tree_size}"

    @property
    def root_b64(self) -> str:
        return base64.b64encode(bytes(self.root_hash)).decode()


class Key(models.Model):
    """An Ed25519 public key in the registry, as the key entries describe it."""

    class Kind(models.TextChoices):
        LOG = "log", gettext_lazy("log (signs checkpoints and tokens)")
        MEMBER = "member", gettext_lazy("member")
        FACILITY = "facility", gettext_lazy("facility")
        WITNESS = "witness", gettext_lazy("witness")
        EVALUATOR = "evaluator", gettext_lazy("evaluator")
        SERVICE = "service", gettext_lazy("service")

    class Custody(models.TextChoices):
        HOSTED = "hosted", gettext_lazy("hosted (sealed on this server)")
        EXTERNAL = "external", gettext_lazy("external (held by its owner)")

    fingerprint = models.CharField(
        verbose_name=gettext_lazy("fingerprint"), max_length=64, primary_key=True
    )
    public_key = models.BinaryField(verbose_name=gettext_lazy("public key"), max_length=32)
    kind = models.CharField(verbose_name=gettext_lazy("kind"), max_length=16, choices=Kind.choices)
    owner = models.CharField(
        verbose_name=gettext_lazy("owner"),
        max_length=200,
        help_text=gettext_lazy("Who holds the key."),
    )
    custody = models.CharField(
        verbose_name=gettext_lazy("custody"), max_length=16, choices=Custody.choices
    )
    name = models.CharField(
        verbose_name=gettext_lazy("name"),
        max_length=200,
        help_text=gettext_lazy("Key name in signed notes."),
    )
    valid_from = models.BigIntegerField(
        verbose_name=gettext_lazy("valid from"),
        help_text=gettext_lazy("First entry index the key may sign."),
    )
    revoked_at = models.BigIntegerField(
        verbose_name=gettext_lazy("revoked at"),
        null=True,
        blank=True,
        help_text=gettext_lazy("Index of the revocation entry; nothing after it."),
    )
    registered_in = models.BigIntegerField(
        verbose_name=gettext_lazy("registered in"),
        help_text=gettext_lazy("Index of the registering entry."),
    )

    class Meta:
        verbose_name = gettext_lazy("key")
        verbose_name_plural = gettext_lazy("keys")
        ordering = ["registered_in"]
        constraints = [
            # One valid log key: a rotation revokes the old one as it adds the new.
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(kind="log", revoked_at__isnull=True),
                name="ledger_key_one_valid_log_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} key of {self.owner} ({self.fingerprint[:12]})"

    def valid_at(self, index: int) -> bool:
        return self.valid_from <= index and (self.revoked_at is None or index <= self.revoked_at)

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(bytes(self.public_key)).decode()

    @property
    def verifier_key(self) -> str:
        return verifier_key(self.name, bytes(self.public_key))


class SealedKey(AppendOnly):
    """A hosted private key, sealed (XSalsa20-Poly1305) under the key-encryption key.

    Added, never changed or removed (migration 0008): a rotation seals a new key.
    """

    key = models.OneToOneField(
        Key,
        verbose_name=gettext_lazy("key"),
        on_delete=models.PROTECT,
        primary_key=True,
        related_name="sealed",
    )
    kek_id = models.CharField(
        verbose_name=gettext_lazy("kek id"),
        max_length=16,
        help_text=gettext_lazy("Which key-encryption key sealed it."),
    )
    sealed_seed = models.BinaryField(verbose_name=gettext_lazy("sealed seed"))
    created_at = models.DateTimeField(verbose_name=gettext_lazy("created at"), auto_now_add=True)

    class Meta:
        verbose_name = gettext_lazy("sealed key")
        verbose_name_plural = gettext_lazy("sealed keys")

    def __str__(self) -> str:
        return f"sealed key {self.key_id[:12]}"


class VerificationRun(AppendOnly):
    """One run of the scheduled verification (``ledger.verify_recent``): the entries it
    checked (``first`` to ``size - 1``), when, and the outcome. The next run starts
    after the last run that passed, from the tree it rebuilt (``frontier``)."""

    started_at = models.DateTimeField(verbose_name=gettext_lazy("started at"))
    finished_at = models.DateTimeField(verbose_name=gettext_lazy("finished at"), db_index=True)
    first = models.BigIntegerField(
        verbose_name=gettext_lazy("first"), help_text=gettext_lazy("First entry index checked.")
    )
    size = models.BigIntegerField(
        verbose_name=gettext_lazy("size"),
        help_text=gettext_lazy("Tree size reached: entries first..size-1."),
    )
    checkpoints = models.IntegerField(
        verbose_name=gettext_lazy("checkpoints"),
        default=0,
        help_text=gettext_lazy("Checkpoints checked."),
    )
    ok = models.BooleanField(verbose_name=gettext_lazy("ok"))
    failed_index = models.BigIntegerField(
        verbose_name=gettext_lazy("failed index"),
        null=True,
        blank=True,
        help_text=gettext_lazy("The first bad entry index, if one is named."),
    )
    reason = models.TextField(
        verbose_name=gettext_lazy("reason"),
        blank=True,
        help_text=gettext_lazy("What failed first."),
    )
    failures = models.IntegerField(
        verbose_name=gettext_lazy("failures"),
        default=0,
        help_text=gettext_lazy("Bad entries and other problems."),
    )
    frontier = models.BinaryField(
        verbose_name=gettext_lazy("frontier"),
        default=b"",
        help_text=gettext_lazy("Hashes at root_indexes(size) of the rebuilt tree, concatenated."),
    )
    root = models.BinaryField(verbose_name=gettext_lazy("root"), max_length=32, default=b"")

    class Meta:
        verbose_name = gettext_lazy("verification run")
        verbose_name_plural = gettext_lazy("verification runs")
        ordering = ["-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        outcome = "ok" if self.ok else "FAILED"
        return f"verification {outcome}: entries {self.first} to {self.size - 1}"

    @property
    def what_failed(self) -> str:
        if self.ok:
            return ""
        if self.failed_index is not None:
            return f"index {self.failed_index}: {self.reason}"
        return self.reason


# The witnesses' tables live with the collection that writes them.
from ledger.cosign.models import (  # noqa: E402, F401
    Cosignature,
    Witness,
    WitnessAlarm,
    WitnessContact,
    WitnessPolicy,
)
