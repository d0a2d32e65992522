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
from django.utils.translation import gettext_lazy as _

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

    index = models.BigIntegerField(_("index"), primary_key=True)
    entry_id = models.CharField(_("entry id"), max_length=128, unique=True)
    kind = models.CharField(_("kind"), max_length=64, db_index=True)
    author = models.CharField(_("author key"), max_length=64, db_index=True)
    leaf = models.BinaryField(
        _("leaf"),
        help_text=_("The exact leaf bytes: canonical JSON."),
    )
    leaf_hash = models.BinaryField(_("leaf hash"), max_length=32)

    class Meta:
        verbose_name = _("entry")
        verbose_name_plural = _("entries")
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

    idx = models.BigIntegerField(_("idx"), primary_key=True)
    hash = models.BinaryField(_("hash"), max_length=32)

    class Meta:
        verbose_name = _("tree hash")
        verbose_name_plural = _("tree hashes")

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

    id = models.PositiveSmallIntegerField(_("id"), primary_key=True, default=1)
    size = models.BigIntegerField(_("size"), default=0)
    frontier = models.BinaryField(
        _("frontier"),
        default=b"",
        help_text=_("Hashes at root_indexes(size), concatenated."),
    )

    class Meta:
        verbose_name = _("log head")
        verbose_name_plural = _("log heads")
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="ledger_loghead_single_row")
        ]

    def __str__(self) -> str:
        return f"log head at size {self.size}"


class Checkpoint(AppendOnly):
    """A C2SP tlog-checkpoint signed note published by the log key."""

    tree_size = models.BigIntegerField(_("tree size"), unique=True)
    root_hash = models.BinaryField(_("root hash"), max_length=32)
    note = models.TextField(_("note"), help_text=_("The signed note, byte for byte."))
    published_at = models.DateTimeField(_("published at"))

    class Meta:
        verbose_name = _("checkpoint")
        verbose_name_plural = _("checkpoints")
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
        LOG = "log", _("log (signs checkpoints and tokens)")
        MEMBER = "member", _("member")
        FACILITY = "facility", _("facility")
        WITNESS = "witness", _("witness")
        EVALUATOR = "evaluator", _("evaluator")
        SERVICE = "service", _("service")

    class Custody(models.TextChoices):
        HOSTED = "hosted", _("hosted (sealed on this server)")
        EXTERNAL = "external", _("external (held by its owner)")

    fingerprint = models.CharField(_("fingerprint"), max_length=64, primary_key=True)
    public_key = models.BinaryField(_("public key"), max_length=32)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    owner = models.CharField(
        _("owner"),
        max_length=200,
        help_text=_("Who holds the key."),
    )
    custody = models.CharField(_("custody"), max_length=16, choices=Custody.choices)
    name = models.CharField(
        _("name"),
        max_length=200,
        help_text=_("Key name in signed notes."),
    )
    valid_from = models.BigIntegerField(
        _("valid from"),
        help_text=_("First entry index the key may sign."),
    )
    revoked_at = models.BigIntegerField(
        _("revoked at"),
        null=True,
        blank=True,
        help_text=_("Index of the revocation entry; nothing after it."),
    )
    registered_in = models.BigIntegerField(
        _("registered in"),
        help_text=_("Index of the registering entry."),
    )

    class Meta:
        verbose_name = _("key")
        verbose_name_plural = _("keys")
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
        verbose_name=_("key"),
        on_delete=models.PROTECT,
        primary_key=True,
        related_name="sealed",
    )
    kek_id = models.CharField(
        _("kek id"),
        max_length=16,
        help_text=_("Which key-encryption key sealed it."),
    )
    sealed_seed = models.BinaryField(_("sealed seed"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("sealed key")
        verbose_name_plural = _("sealed keys")

    def __str__(self) -> str:
        return f"sealed key {self.key_id[:12]}"


class VerificationRun(AppendOnly):
    """One run of the scheduled verification (``ledger.verify_recent``): the entries it
    checked (``first`` to ``size - 1``), when, and the outcome. The next run starts
    after the last run that passed, from the tree it rebuilt (``frontier``)."""

    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), db_index=True)
    first = models.BigIntegerField(_("first"), help_text=_("First entry index checked."))
    size = models.BigIntegerField(
        _("size"),
        help_text=_("Tree size reached: entries first..size-1."),
    )
    checkpoints = models.IntegerField(
        _("checkpoints"),
        default=0,
        help_text=_("Checkpoints checked."),
    )
    ok = models.BooleanField(_("ok"))
    failed_index = models.BigIntegerField(
        _("failed index"),
        null=True,
        blank=True,
        help_text=_("The first bad entry index, if one is named."),
    )
    reason = models.TextField(
        _("reason"),
        blank=True,
        help_text=_("What failed first."),
    )
    failures = models.IntegerField(
        _("failures"),
        default=0,
        help_text=_("Bad entries and other problems."),
    )
    frontier = models.BinaryField(
        _("frontier"),
        default=b"",
        help_text=_("Hashes at root_indexes(size) of the rebuilt tree, concatenated."),
    )
    root = models.BinaryField(_("root"), max_length=32, default=b"")

    class Meta:
        verbose_name = _("verification run")
        verbose_name_plural = _("verification runs")
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
