"""Governance: API tokens, and the projections of the ledger for the consortium, its
members and seats, proposals and votes, agreements and their documents, and the
decisions later stages act on (valuation tables, access grants, release approvals)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

TOKEN_PREFIX = "clt"  # noqa: S105  (a prefix, not a secret)


def hash_secret(secret: str) -> str:
    # The secret is 256 random bits, so a plain SHA-256 is enough: there is nothing
    # to brute-force that a slow hash would protect.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now, user__is_active=True)


class ApiToken(models.Model):
    """A bearer token for a partner system. Only its hash is stored.

    A token issued to a delegate belongs to the seat the delegate held then, and so
    carries its member and role: it stops working once its user no longer holds that
    seat. A token issued to a user with no seat (an operator) has none.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=gettext_lazy("user"),
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    seat = models.ForeignKey(
        "Seat",
        verbose_name=gettext_lazy("seat"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.PROTECT,
        related_name="api_tokens",
        help_text=gettext_lazy(
            "The seat its user held when it was issued; it works only while they hold it."
        ),
    )
    name = models.CharField(
        verbose_name=gettext_lazy("name"),
        max_length=100,
        blank=True,
        help_text=gettext_lazy("What the token is for."),
    )
    key_id = models.CharField(
        verbose_name=gettext_lazy("key id"),
        max_length=16,
        unique=True,
        help_text=gettext_lazy("Public part, shown in lists."),
    )
    secret_hash = models.CharField(verbose_name=gettext_lazy("secret hash"), max_length=64)
    created_at = models.DateTimeField(verbose_name=gettext_lazy("created at"), default=timezone.now)
    expires_at = models.DateTimeField(verbose_name=gettext_lazy("expires at"))
    revoked_at = models.DateTimeField(
        verbose_name=gettext_lazy("revoked at"), null=True, blank=True
    )
    last_used_at = models.DateTimeField(
        verbose_name=gettext_lazy("last used at"), null=True, blank=True
    )

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = gettext_lazy("API token")
        verbose_name_plural = gettext_lazy("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{TOKEN_PREFIX}_{self.key_id}… ({self.user})"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def seat_lost(self) -> bool:
        """The token's user no longer holds the seat it was issued for (vacated, or they
        moved on), or, for a token issued without a seat, now holds one: a token acts
        with exactly the seat it was issued for, never one given later."""
        from consortium.governance.selectors import seat_of

        held = seat_of(self.user)
        return (held.pk if held is not None else None) != self.seat_id

    @classmethod
    def issue(cls, *, user, name: str = "", days: int | None = None) -> tuple[ApiToken, str]:
        """Create a token for ``user`` and the seat they hold now, if any; return it and
        the plaintext, which is never stored."""
        from consortium.governance.selectors import seat_of

        days = settings.API_TOKEN_DEFAULT_DAYS if days is None else days
        if not 0 < days <= settings.API_TOKEN_MAX_DAYS:
            raise ValueError(f"a token lives between 1 and {settings.API_TOKEN_MAX_DAYS} days")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            seat=seat_of(user),
            name=name,
            key_id=key_id,
            secret_hash=hash_secret(secret),
            expires_at=timezone.now() + timedelta(days=days),
        )
        return token, f"{TOKEN_PREFIX}_{key_id}_{secret}"

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


# --- governance: projections of the ledger ---------------------------------------------


class Consortium(models.Model):
    """The consortium itself, as founded on the ledger (one row)."""

    id = models.PositiveSmallIntegerField(
        verbose_name=gettext_lazy("id"), primary_key=True, default=1
    )
    name = models.CharField(verbose_name=gettext_lazy("name"), max_length=200)
    rules = models.JSONField(
        verbose_name=gettext_lazy("rules"),
        help_text=gettext_lazy("The governance rules adopted at founding."),
    )
    founded_in = models.BigIntegerField(
        verbose_name=gettext_lazy("founded in"),
        help_text=gettext_lazy("Index of the founding entry."),
    )

    class Meta:
        verbose_name = gettext_lazy("consortium")
        verbose_name_plural = gettext_lazy("consortium")

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    """A member nation or institution, with the figures its voting rules need."""

    class Kind(models.TextChoices):
        NATION = "nation", gettext_lazy("nation state")
        INSTITUTION = "institution", gettext_lazy("institution")
        FACILITY_OPERATOR = "facility_operator", gettext_lazy("facility operator")
        OBSERVER = "observer", gettext_lazy("observer")

    class Status(models.TextChoices):
        APPLICANT = "applicant", gettext_lazy("applicant")
        MEMBER = "member", gettext_lazy("member")
        SUSPENDED = "suspended", gettext_lazy("suspended")
        WITHDRAWN = "withdrawn", gettext_lazy("withdrawn")

    code = models.CharField(
        verbose_name=gettext_lazy("code"),
        max_length=32,
        primary_key=True,
        help_text=gettext_lazy("ISO 3166-1 alpha-2 for a nation (FR); a lowercase slug otherwise."),
    )
    kind = models.CharField(verbose_name=gettext_lazy("kind"), max_length=24, choices=Kind.choices)
    name = models.CharField(verbose_name=gettext_lazy("name"), max_length=200)
    country = models.CharField(
        verbose_name=gettext_lazy("country"),
        max_length=2,
        help_text=gettext_lazy("ISO 3166-1 alpha-2 of its seat."),
    )
    status = models.CharField(
        verbose_name=gettext_lazy("status"), max_length=16, choices=Status.choices
    )
    figures = models.JSONField(
        verbose_name=gettext_lazy("figures"),
        default=dict,
        help_text=gettext_lazy("Voting figures, e.g. population."),
    )
    registered_in = models.BigIntegerField(verbose_name=gettext_lazy("registered in"))
    changed_in = models.BigIntegerField(verbose_name=gettext_lazy("changed in"))

    class Meta:
        verbose_name = gettext_lazy("member")
        verbose_name_plural = gettext_lazy("members")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Seat(models.Model):
    """A role held by a (pseudonymous) delegate: for a member, or consortium-wide.

    The ledger names seats, never people: who holds a seat is local account data
    (``SeatHolder``), kept off the append-only record.
    """

    class Role(models.TextChoices):
        SIGNATORY = "signatory", gettext_lazy("signatory (signs agreements, votes)")
        RECORDER = "recorder", gettext_lazy("recorder (records contributions, requests downloads)")
        OBSERVER = "observer", gettext_lazy("observer (reads)")
        SECRETARIAT = "secretariat", gettext_lazy("secretariat (runs the system)")
        AUDITOR = "auditor", gettext_lazy("auditor (reads everything, exports)")

    MEMBER_ROLES = (Role.SIGNATORY, Role.RECORDER, Role.OBSERVER)
    STAFF_ROLES = (Role.SECRETARIAT, Role.AUDITOR)

    id = models.UUIDField(verbose_name=gettext_lazy("id"), primary_key=True)
    member = models.ForeignKey(
        Member,
        verbose_name=gettext_lazy("member"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="seats",
    )
    role = models.CharField(verbose_name=gettext_lazy("role"), max_length=16, choices=Role.choices)
    assigned_in = models.BigIntegerField(verbose_name=gettext_lazy("assigned in"))
    vacated_in = models.BigIntegerField(
        verbose_name=gettext_lazy("vacated in"), null=True, blank=True
    )

    class Meta:
        verbose_name = gettext_lazy("seat")
        verbose_name_plural = gettext_lazy("seats")
        ordering = ["assigned_in"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(member__isnull=False, role__in=["signatory", "recorder", "observer"])
                    | models.Q(member__isnull=True, role__in=["secretariat", "auditor"])
                ),
                name="consortium_seat_role_fits_member",
            )
        ]

    def __str__(self) -> str:
        return f"{self.role} of {self.member_id or 'the consortium'}"

    @property
    def active(self) -> bool:
        return self.vacated_in is None


class SeatHolder(models.Model):
    """Which user holds which seat: local account data, not on the ledger."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=gettext_lazy("user"),
        on_delete=models.CASCADE,
        related_name="seat_holder",
    )
    seat = models.OneToOneField(
        Seat, verbose_name=gettext_lazy("seat"), on_delete=models.PROTECT, related_name="holder"
    )

    class Meta:
        verbose_name = gettext_lazy("seat holder")
        verbose_name_plural = gettext_lazy("seat holders")

    def __str__(self) -> str:
        return f"{self.user} holds {self.seat}"


class Proposal(models.Model):
    """A proposal to the members: typed actions decided under a named voting rule."""

    class State(models.TextChoices):
        OPEN = "open", gettext_lazy("open")
        ACCEPTED = "accepted", gettext_lazy("accepted")
        REJECTED = "rejected", gettext_lazy("rejected")
        WITHDRAWN = "withdrawn", gettext_lazy("withdrawn")
        EXPIRED = "expired", gettext_lazy("expired (no quorum by the deadline)")
        DROPPED = "dropped", gettext_lazy("dropped (the rules changed underneath it)")

    id = models.UUIDField(verbose_name=gettext_lazy("id"), primary_key=True)
    title = models.CharField(verbose_name=gettext_lazy("title"), max_length=300)
    actions = models.JSONField(verbose_name=gettext_lazy("actions"))
    rule_name = models.CharField(verbose_name=gettext_lazy("rule name"), max_length=64)
    rule = models.JSONField(
        verbose_name=gettext_lazy("rule"),
        help_text=gettext_lazy("The rule as it stood when the proposal opened."),
    )
    eligible = models.JSONField(
        verbose_name=gettext_lazy("eligible"),
        help_text=gettext_lazy("Members who may vote, with their figures, at opening."),
    )
    deadline = models.CharField(
        verbose_name=gettext_lazy("deadline"),
        max_length=40,
        help_text=gettext_lazy("RFC 3339 UTC."),
    )
    opened_by = models.CharField(
        verbose_name=gettext_lazy("opened by"),
        max_length=64,
        help_text=gettext_lazy("Fingerprint of the opening key."),
    )
    opened_in = models.BigIntegerField(verbose_name=gettext_lazy("opened in"))
    state = models.CharField(
        verbose_name=gettext_lazy("state"), max_length=16, choices=State.choices, default=State.OPEN
    )
    tally = models.JSONField(verbose_name=gettext_lazy("tally"), null=True, blank=True)
    closed_in = models.BigIntegerField(
        verbose_name=gettext_lazy("closed in"), null=True, blank=True
    )

    class Meta:
        verbose_name = gettext_lazy("proposal")
        verbose_name_plural = gettext_lazy("proposals")
        ordering = ["-opened_in"]

    def __str__(self) -> str:
        return self.title


class Vote(models.Model):
    """A member's counted vote on a proposal: its latest one before the deadline."""

    # "<proposal>:<member>": a natural key, so replay rebuilds the same rows.
    id = models.CharField(verbose_name=gettext_lazy("id"), primary_key=True, max_length=80)
    proposal = models.ForeignKey(
        Proposal,
        verbose_name=gettext_lazy("proposal"),
        on_delete=models.PROTECT,
        related_name="votes",
    )
    member = models.ForeignKey(
        Member, verbose_name=gettext_lazy("member"), on_delete=models.PROTECT, related_name="votes"
    )
    choice = models.CharField(verbose_name=gettext_lazy("choice"), max_length=8)
    cast_in = models.BigIntegerField(verbose_name=gettext_lazy("cast in"))
    cast_at = models.CharField(
        verbose_name=gettext_lazy("cast at"),
        max_length=40,
        help_text=gettext_lazy("Integration time of the vote, RFC 3339 UTC."),
    )

    class Meta:
        verbose_name = gettext_lazy("vote")
        verbose_name_plural = gettext_lazy("votes")
        constraints = [
            models.UniqueConstraint(
                fields=["proposal", "member"], name="consortium_one_vote_per_member"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.choice}"


# --- agreements: projections of the ledger, and the documents they rest on ---------------


class Agreement(models.Model):
    """One version of an agreement: its terms, its document's hash and where it stands.

    Versions of one agreement share a ``series``; an amendment is a new version that
    supersedes the one in force when it enters into force itself.
    """

    class Kind(models.TextChoices):
        TREATY = "treaty", gettext_lazy("consortium treaty")
        DATA_SHARING = "data_sharing", gettext_lazy("data-sharing agreement")
        COMPUTE_PLEDGE = "compute_pledge", gettext_lazy("compute pledge")
        MODEL_LICENCE = "model_licence", gettext_lazy("model licence")

    class State(models.TextChoices):
        OPEN = "open", gettext_lazy("open for signature")
        SIGNED = "signed", gettext_lazy("signed by the required parties, not yet in force")
        IN_FORCE = "in_force", gettext_lazy("in force")
        SUPERSEDED = "superseded", gettext_lazy("superseded by an amendment")
        TERMINATED = "terminated", gettext_lazy("terminated")
        EXPIRED = "expired", gettext_lazy("expired")

    id = models.UUIDField(verbose_name=gettext_lazy("id"), primary_key=True)
    series = models.UUIDField(
        verbose_name=gettext_lazy("series"),
        help_text=gettext_lazy("Shared by every version of this agreement."),
    )
    version = models.PositiveIntegerField(verbose_name=gettext_lazy("version"))
    kind = models.CharField(verbose_name=gettext_lazy("kind"), max_length=16, choices=Kind.choices)
    title = models.CharField(verbose_name=gettext_lazy("title"), max_length=300)
    terms = models.JSONField(verbose_name=gettext_lazy("terms"))
    terms_sha256 = models.CharField(
        verbose_name=gettext_lazy("terms sha256"),
        max_length=64,
        help_text=gettext_lazy("SHA-256 of the terms' JCS form."),
    )
    document_sha256 = models.CharField(verbose_name=gettext_lazy("document sha256"), max_length=64)
    document_name = models.CharField(verbose_name=gettext_lazy("document name"), max_length=200)
    document_size = models.BigIntegerField(verbose_name=gettext_lazy("document size"))
    supersedes = models.ForeignKey(
        "self",
        verbose_name=gettext_lazy("supersedes"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="amendments",
    )
    proposed_by = models.CharField(
        verbose_name=gettext_lazy("proposed by"),
        max_length=64,
        help_text=gettext_lazy("Fingerprint of the proposing key."),
    )
    proposed_in = models.BigIntegerField(verbose_name=gettext_lazy("proposed in"))
    state = models.CharField(
        verbose_name=gettext_lazy("state"), max_length=16, choices=State.choices, default=State.OPEN
    )
    in_force_in = models.BigIntegerField(
        verbose_name=gettext_lazy("in force in"), null=True, blank=True
    )
    closed_in = models.BigIntegerField(
        verbose_name=gettext_lazy("closed in"), null=True, blank=True
    )
    closed_reason = models.CharField(
        verbose_name=gettext_lazy("closed reason"), max_length=300, blank=True
    )

    class Meta:
        verbose_name = gettext_lazy("agreement")
        verbose_name_plural = gettext_lazy("agreements")
        ordering = ["-proposed_in"]
        constraints = [
            models.UniqueConstraint(
                fields=["series", "version"], name="consortium_agreement_one_version_number"
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} (v{self.version})"


class AgreementParty(models.Model):
    """A party to an agreement version: whether its signature is required, and given."""

    # "<agreement>:<member>": a natural key, so replay rebuilds the same rows.
    id = models.CharField(verbose_name=gettext_lazy("id"), primary_key=True, max_length=80)
    agreement = models.ForeignKey(
        Agreement,
        verbose_name=gettext_lazy("agreement"),
        on_delete=models.PROTECT,
        related_name="parties",
    )
    member = models.ForeignKey(
        Member,
        verbose_name=gettext_lazy("member"),
        on_delete=models.PROTECT,
        related_name="agreements",
    )
    required = models.BooleanField(
        verbose_name=gettext_lazy("required"),
        help_text=gettext_lazy("Must sign before the agreement enters into force."),
    )
    signed_in = models.BigIntegerField(
        verbose_name=gettext_lazy("signed in"), null=True, blank=True
    )
    signed_at = models.CharField(verbose_name=gettext_lazy("signed at"), max_length=40, blank=True)
    signed_by = models.CharField(
        verbose_name=gettext_lazy("signed by"),
        max_length=64,
        blank=True,
        help_text=gettext_lazy("Fingerprint of the key."),
    )
    withdrawn_in = models.BigIntegerField(
        verbose_name=gettext_lazy("withdrawn in"), null=True, blank=True
    )
    withdrawal_reason = models.CharField(
        verbose_name=gettext_lazy("withdrawal reason"), max_length=300, blank=True
    )

    class Meta:
        verbose_name = gettext_lazy("agreement party")
        verbose_name_plural = gettext_lazy("agreement parties")
        ordering = ["agreement", "member"]
        constraints = [
            models.UniqueConstraint(
                fields=["agreement", "member"], name="consortium_one_party_row_per_member"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_id} to {self.agreement_id}"


def _document_path(instance, filename: str) -> str:
    return f"agreements/{instance.sha256}"


class Document(models.Model):
    """A stored agreement document, known by its SHA-256 (local data, not on the ledger:
    the ledger carries the hash, which anyone can check the file against)."""

    sha256 = models.CharField(verbose_name=gettext_lazy("sha256"), max_length=64, primary_key=True)
    name = models.CharField(verbose_name=gettext_lazy("name"), max_length=200)
    media_type = models.CharField(verbose_name=gettext_lazy("media type"), max_length=100)
    size = models.BigIntegerField(verbose_name=gettext_lazy("size"))
    file = models.FileField(
        verbose_name=gettext_lazy("file"), upload_to=_document_path, max_length=200
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=gettext_lazy("uploaded by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    holders = models.ManyToManyField(
        Member,
        verbose_name=gettext_lazy("holders"),
        blank=True,
        related_name="+",
        help_text=gettext_lazy(
            "Members whose delegates uploaded these bytes (and so may read them)."
        ),
    )
    uploaded_at = models.DateTimeField(
        verbose_name=gettext_lazy("uploaded at"), default=timezone.now
    )

    class Meta:
        verbose_name = gettext_lazy("document")
        verbose_name_plural = gettext_lazy("documents")

    def __str__(self) -> str:
        return f"{self.name} ({self.sha256[:12]}…)"


# --- decisions that later stages act on: projections of accepted proposals ---------------


class ValuationTable(models.Model):
    """A versioned valuation table adopted by the members: reference accelerator-hours
    per hour of each accelerator type."""

    version = models.PositiveIntegerField(verbose_name=gettext_lazy("version"), primary_key=True)
    unit = models.CharField(verbose_name=gettext_lazy("unit"), max_length=100)
    weights = models.JSONField(
        verbose_name=gettext_lazy("weights"),
        help_text=gettext_lazy("{accelerator type: weight as a decimal string}"),
    )
    unit_price = models.JSONField(
        verbose_name=gettext_lazy("unit price"),
        null=True,
        blank=True,
        help_text=gettext_lazy("{amount, currency}: what one reference unit is worth."),
    )
    data_price = models.JSONField(
        verbose_name=gettext_lazy("data price"),
        null=True,
        blank=True,
        help_text=gettext_lazy("{amount, currency, per_tokens}: what data is worth."),
    )
    adopted_in = models.BigIntegerField(
        verbose_name=gettext_lazy("adopted in"),
        help_text=gettext_lazy("Index of the decision that adopted it."),
    )
    proposal = models.ForeignKey(
        Proposal, verbose_name=gettext_lazy("proposal"), on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = gettext_lazy("valuation table")
        verbose_name_plural = gettext_lazy("valuation tables")
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"valuation table v{self.version}"


class AccessGrant(models.Model):
    """An access exception the members decided: a member may download checkpoints
    (some, or all) in a scope until a date, whatever the agreements' rules say."""

    # "<proposal>:<n>": the n-th action of the accepting proposal.
    id = models.CharField(verbose_name=gettext_lazy("id"), primary_key=True, max_length=80)
    member = models.ForeignKey(
        Member,
        verbose_name=gettext_lazy("member"),
        on_delete=models.PROTECT,
        related_name="access_grants",
    )
    scope = models.CharField(verbose_name=gettext_lazy("scope"), max_length=16)
    checkpoints = models.JSONField(
        verbose_name=gettext_lazy("checkpoints"),
        null=True,
        blank=True,
        help_text=gettext_lazy("Manifest digests; empty means every checkpoint."),
    )
    until = models.DateField(verbose_name=gettext_lazy("until"), null=True, blank=True)
    reason = models.CharField(verbose_name=gettext_lazy("reason"), max_length=300)
    granted_in = models.BigIntegerField(verbose_name=gettext_lazy("granted in"))
    revoked_in = models.BigIntegerField(
        verbose_name=gettext_lazy("revoked in"), null=True, blank=True
    )

    class Meta:
        verbose_name = gettext_lazy("access grant")
        verbose_name_plural = gettext_lazy("access grants")
        ordering = ["-granted_in"]

    def __str__(self) -> str:
        return f"{self.scope} access for {self.member_id}"


class ReleaseApproval(models.Model):
    """The members' approval to release a model checkpoint, known by its manifest digest."""

    checkpoint = models.CharField(
        verbose_name=gettext_lazy("checkpoint"),
        max_length=64,
        primary_key=True,
        help_text=gettext_lazy("Manifest SHA-256."),
    )
    note = models.CharField(verbose_name=gettext_lazy("note"), max_length=300, blank=True)
    approved_in = models.BigIntegerField(verbose_name=gettext_lazy("approved in"))
    proposal = models.ForeignKey(
        Proposal, verbose_name=gettext_lazy("proposal"), on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = gettext_lazy("release approval")
        verbose_name_plural = gettext_lazy("release approvals")
        ordering = ["-approved_in"]

    def __str__(self) -> str:
        return f"release of {self.checkpoint[:12]}…"
