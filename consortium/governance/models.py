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
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    seat = models.ForeignKey(
        "Seat",
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
        max_length=100, blank=True, help_text=gettext_lazy("What the token is for.")
    )
    key_id = models.CharField(
        max_length=16, unique=True, help_text=gettext_lazy("Public part, shown in lists.")
    )
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = gettext_lazy("API token")
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

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    name = models.CharField(max_length=200)
    rules = models.JSONField(help_text=gettext_lazy("The governance rules adopted at founding."))
    founded_in = models.BigIntegerField(help_text=gettext_lazy("Index of the founding entry."))

    class Meta:
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
        max_length=32,
        primary_key=True,
        help_text=gettext_lazy("ISO 3166-1 alpha-2 for a nation (FR); a lowercase slug otherwise."),
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    name = models.CharField(max_length=200)
    country = models.CharField(
        max_length=2, help_text=gettext_lazy("ISO 3166-1 alpha-2 of its seat.")
    )
    status = models.CharField(max_length=16, choices=Status.choices)
    figures = models.JSONField(
        default=dict, help_text=gettext_lazy("Voting figures, e.g. population.")
    )
    registered_in = models.BigIntegerField()
    changed_in = models.BigIntegerField()

    class Meta:
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

    id = models.UUIDField(primary_key=True)
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="seats"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    assigned_in = models.BigIntegerField()
    vacated_in = models.BigIntegerField(null=True, blank=True)

    class Meta:
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
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="seat_holder"
    )
    seat = models.OneToOneField(Seat, on_delete=models.PROTECT, related_name="holder")

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

    id = models.UUIDField(primary_key=True)
    title = models.CharField(max_length=300)
    actions = models.JSONField()
    rule_name = models.CharField(max_length=64)
    rule = models.JSONField(
        help_text=gettext_lazy("The rule as it stood when the proposal opened.")
    )
    eligible = models.JSONField(
        help_text=gettext_lazy("Members who may vote, with their figures, at opening.")
    )
    deadline = models.CharField(max_length=40, help_text=gettext_lazy("RFC 3339 UTC."))
    opened_by = models.CharField(
        max_length=64, help_text=gettext_lazy("Fingerprint of the opening key.")
    )
    opened_in = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    tally = models.JSONField(null=True, blank=True)
    closed_in = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_in"]

    def __str__(self) -> str:
        return self.title


class Vote(models.Model):
    """A member's counted vote on a proposal: its latest one before the deadline."""

    # "<proposal>:<member>": a natural key, so replay rebuilds the same rows.
    id = models.CharField(primary_key=True, max_length=80)
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="votes")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="votes")
    choice = models.CharField(max_length=8)
    cast_in = models.BigIntegerField()
    cast_at = models.CharField(
        max_length=40, help_text=gettext_lazy("Integration time of the vote, RFC 3339 UTC.")
    )

    class Meta:
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

    id = models.UUIDField(primary_key=True)
    series = models.UUIDField(help_text=gettext_lazy("Shared by every version of this agreement."))
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    title = models.CharField(max_length=300)
    terms = models.JSONField()
    terms_sha256 = models.CharField(
        max_length=64, help_text=gettext_lazy("SHA-256 of the terms' JCS form.")
    )
    document_sha256 = models.CharField(max_length=64)
    document_name = models.CharField(max_length=200)
    document_size = models.BigIntegerField()
    supersedes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="amendments"
    )
    proposed_by = models.CharField(
        max_length=64, help_text=gettext_lazy("Fingerprint of the proposing key.")
    )
    proposed_in = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    in_force_in = models.BigIntegerField(null=True, blank=True)
    closed_in = models.BigIntegerField(null=True, blank=True)
    closed_reason = models.CharField(max_length=300, blank=True)

    class Meta:
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
    id = models.CharField(primary_key=True, max_length=80)
    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="parties")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="agreements")
    required = models.BooleanField(
        help_text=gettext_lazy("Must sign before the agreement enters into force.")
    )
    signed_in = models.BigIntegerField(null=True, blank=True)
    signed_at = models.CharField(max_length=40, blank=True)
    signed_by = models.CharField(
        max_length=64, blank=True, help_text=gettext_lazy("Fingerprint of the key.")
    )
    withdrawn_in = models.BigIntegerField(null=True, blank=True)
    withdrawal_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["agreement", "member"]
        verbose_name_plural = gettext_lazy("agreement parties")
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

    sha256 = models.CharField(max_length=64, primary_key=True)
    name = models.CharField(max_length=200)
    media_type = models.CharField(max_length=100)
    size = models.BigIntegerField()
    file = models.FileField(upload_to=_document_path, max_length=200)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    holders = models.ManyToManyField(
        Member,
        blank=True,
        related_name="+",
        help_text=gettext_lazy(
            "Members whose delegates uploaded these bytes (and so may read them)."
        ),
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} ({self.sha256[:12]}…)"


# --- decisions that later stages act on: projections of accepted proposals ---------------


class ValuationTable(models.Model):
    """A versioned valuation table adopted by the members: reference accelerator-hours
    per hour of each accelerator type."""

    version = models.PositiveIntegerField(primary_key=True)
    unit = models.CharField(max_length=100)
    weights = models.JSONField(
        help_text=gettext_lazy("{accelerator type: weight as a decimal string}")
    )
    unit_price = models.JSONField(
        null=True,
        blank=True,
        help_text=gettext_lazy("{amount, currency}: what one reference unit is worth."),
    )
    data_price = models.JSONField(
        null=True,
        blank=True,
        help_text=gettext_lazy("{amount, currency, per_tokens}: what data is worth."),
    )
    adopted_in = models.BigIntegerField(
        help_text=gettext_lazy("Index of the decision that adopted it.")
    )
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"valuation table v{self.version}"


class AccessGrant(models.Model):
    """An access exception the members decided: a member may download checkpoints
    (some, or all) in a scope until a date, whatever the agreements' rules say."""

    # "<proposal>:<n>": the n-th action of the accepting proposal.
    id = models.CharField(primary_key=True, max_length=80)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="access_grants")
    scope = models.CharField(max_length=16)
    checkpoints = models.JSONField(
        null=True,
        blank=True,
        help_text=gettext_lazy("Manifest digests; empty means every checkpoint."),
    )
    until = models.DateField(null=True, blank=True)
    reason = models.CharField(max_length=300)
    granted_in = models.BigIntegerField()
    revoked_in = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-granted_in"]

    def __str__(self) -> str:
        return f"{self.scope} access for {self.member_id}"


class ReleaseApproval(models.Model):
    """The members' approval to release a model checkpoint, known by its manifest digest."""

    checkpoint = models.CharField(
        max_length=64, primary_key=True, help_text=gettext_lazy("Manifest SHA-256.")
    )
    note = models.CharField(max_length=300, blank=True)
    approved_in = models.BigIntegerField()
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-approved_in"]

    def __str__(self) -> str:
        return f"release of {self.checkpoint[:12]}…"
