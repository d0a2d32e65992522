"""Governance: API tokens, and the projections of the ledger for the consortium, its
members and seats, proposals and votes, agreements and their documents, and the
decisions later stages act on (valuation tables, access grants, release approvals).

Past 500 lines and kept whole: a third of it is the field and model names given to the
translation catalogue, one per line; the tables are few and refer to one another (a
token's seat, a vote's proposal, a grant's member). Split by domain (tokens, seats,
proposals, agreements, decisions) when it grows in substance."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    seat = models.ForeignKey(
        "Seat",
        verbose_name=_("seat"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.PROTECT,
        related_name="api_tokens",
        help_text=_("The seat its user held when it was issued; it works only while they hold it."),
    )
    name = models.CharField(
        _("name"),
        max_length=100,
        blank=True,
        help_text=_("What the token is for."),
    )
    key_id = models.CharField(
        _("key id"),
        max_length=16,
        unique=True,
        help_text=_("Public part, shown in lists."),
    )
    secret_hash = models.CharField(_("secret hash"), max_length=64)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
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

    id = models.PositiveSmallIntegerField(_("id"), primary_key=True, default=1)
    name = models.CharField(_("name"), max_length=200)
    rules = models.JSONField(
        _("rules"),
        help_text=_("The governance rules adopted at founding."),
    )
    founded_in = models.BigIntegerField(
        _("founded in"),
        help_text=_("Index of the founding entry."),
    )

    class Meta:
        verbose_name = _("consortium")
        verbose_name_plural = _("consortium")

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    """A member nation or institution, with the figures its voting rules need."""

    class Kind(models.TextChoices):
        NATION = "nation", _("nation state")
        INSTITUTION = "institution", _("institution")
        FACILITY_OPERATOR = "facility_operator", _("facility operator")
        OBSERVER = "observer", _("observer")

    class Status(models.TextChoices):
        APPLICANT = "applicant", _("applicant")
        MEMBER = "member", _("member")
        SUSPENDED = "suspended", _("suspended")
        WITHDRAWN = "withdrawn", _("withdrawn")

    code = models.CharField(
        _("code"),
        max_length=32,
        primary_key=True,
        help_text=_("ISO 3166-1 alpha-2 for a nation (FR); a lowercase slug otherwise."),
    )
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=200)
    country = models.CharField(
        _("country"),
        max_length=2,
        help_text=_("ISO 3166-1 alpha-2 of its seat."),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    figures = models.JSONField(
        _("figures"),
        default=dict,
        help_text=_("Voting figures, e.g. population."),
    )
    registered_in = models.BigIntegerField(_("registered in"))
    changed_in = models.BigIntegerField(_("changed in"))

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Seat(models.Model):
    """A role held by a (pseudonymous) delegate: for a member, or consortium-wide.

    The ledger names seats, never people: who holds a seat is local account data
    (``SeatHolder``), kept off the append-only record.
    """

    class Role(models.TextChoices):
        SIGNATORY = "signatory", _("signatory (signs agreements, votes)")
        RECORDER = "recorder", _("recorder (records contributions, requests downloads)")
        OBSERVER = "observer", _("observer (reads)")
        SECRETARIAT = "secretariat", _("secretariat (runs the system)")
        AUDITOR = "auditor", _("auditor (reads everything, exports)")

    MEMBER_ROLES = (Role.SIGNATORY, Role.RECORDER, Role.OBSERVER)
    STAFF_ROLES = (Role.SECRETARIAT, Role.AUDITOR)

    id = models.UUIDField(_("id"), primary_key=True)
    member = models.ForeignKey(
        Member,
        verbose_name=_("member"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="seats",
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    assigned_in = models.BigIntegerField(_("assigned in"))
    vacated_in = models.BigIntegerField(_("vacated in"), null=True, blank=True)

    class Meta:
        verbose_name = _("seat")
        verbose_name_plural = _("seats")
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
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="seat_holder",
    )
    seat = models.OneToOneField(
        Seat, verbose_name=_("seat"), on_delete=models.PROTECT, related_name="holder"
    )

    class Meta:
        verbose_name = _("seat holder")
        verbose_name_plural = _("seat holders")

    def __str__(self) -> str:
        return f"{self.user} holds {self.seat}"


class Proposal(models.Model):
    """A proposal to the members: typed actions decided under a named voting rule."""

    class State(models.TextChoices):
        OPEN = "open", _("open")
        ACCEPTED = "accepted", _("accepted")
        REJECTED = "rejected", _("rejected")
        WITHDRAWN = "withdrawn", _("withdrawn")
        EXPIRED = "expired", _("expired (no quorum by the deadline)")
        DROPPED = "dropped", _("dropped (the rules changed underneath it)")

    id = models.UUIDField(_("id"), primary_key=True)
    title = models.CharField(_("title"), max_length=300)
    actions = models.JSONField(_("actions"))
    rule_name = models.CharField(_("rule name"), max_length=64)
    rule = models.JSONField(
        _("rule"),
        help_text=_("The rule as it stood when the proposal opened."),
    )
    eligible = models.JSONField(
        _("eligible"),
        help_text=_("Members who may vote, with their figures, at opening."),
    )
    deadline = models.CharField(
        _("deadline"),
        max_length=40,
        help_text=_("RFC 3339 UTC."),
    )
    opened_by = models.CharField(
        _("opened by"),
        max_length=64,
        help_text=_("Fingerprint of the opening key."),
    )
    opened_in = models.BigIntegerField(_("opened in"))
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.OPEN)
    tally = models.JSONField(_("tally"), null=True, blank=True)
    closed_in = models.BigIntegerField(_("closed in"), null=True, blank=True)

    class Meta:
        verbose_name = _("proposal")
        verbose_name_plural = _("proposals")
        ordering = ["-opened_in"]

    def __str__(self) -> str:
        return self.title


class Vote(models.Model):
    """A member's counted vote on a proposal: its latest one before the deadline."""

    # "<proposal>:<member>": a natural key, so replay rebuilds the same rows.
    id = models.CharField(_("id"), primary_key=True, max_length=80)
    proposal = models.ForeignKey(
        Proposal,
        verbose_name=_("proposal"),
        on_delete=models.PROTECT,
        related_name="votes",
    )
    member = models.ForeignKey(
        Member, verbose_name=_("member"), on_delete=models.PROTECT, related_name="votes"
    )
    choice = models.CharField(_("choice"), max_length=8)
    cast_in = models.BigIntegerField(_("cast in"))
    cast_at = models.CharField(
        _("cast at"),
        max_length=40,
        help_text=_("Integration time of the vote, RFC 3339 UTC."),
    )

    class Meta:
        verbose_name = _("vote")
        verbose_name_plural = _("votes")
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
        TREATY = "treaty", _("consortium treaty")
        DATA_SHARING = "data_sharing", _("data-sharing agreement")
        COMPUTE_PLEDGE = "compute_pledge", _("compute pledge")
        MODEL_LICENCE = "model_licence", _("model licence")

    class State(models.TextChoices):
        OPEN = "open", _("open for signature")
        SIGNED = "signed", _("signed by the required parties, not yet in force")
        IN_FORCE = "in_force", _("in force")
        SUPERSEDED = "superseded", _("superseded by an amendment")
        TERMINATED = "terminated", _("terminated")
        EXPIRED = "expired", _("expired")

    id = models.UUIDField(_("id"), primary_key=True)
    series = models.UUIDField(
        _("series"),
        help_text=_("Shared by every version of this agreement."),
    )
    version = models.PositiveIntegerField(_("version"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=300)
    terms = models.JSONField(_("terms"))
    terms_sha256 = models.CharField(
        _("terms sha256"),
        max_length=64,
        help_text=_("SHA-256 of the terms' JCS form."),
    )
    document_sha256 = models.CharField(_("document sha256"), max_length=64)
    document_name = models.CharField(_("document name"), max_length=200)
    document_size = models.BigIntegerField(_("document size"))
    supersedes = models.ForeignKey(
        "self",
        verbose_name=_("supersedes"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="amendments",
    )
    proposed_by = models.CharField(
        _("proposed by"),
        max_length=64,
        help_text=_("Fingerprint of the proposing key."),
    )
    proposed_in = models.BigIntegerField(_("proposed in"))
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.OPEN)
    in_force_in = models.BigIntegerField(_("in force in"), null=True, blank=True)
    closed_in = models.BigIntegerField(_("closed in"), null=True, blank=True)
    closed_reason = models.CharField(_("closed reason"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("agreement")
        verbose_name_plural = _("agreements")
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
    id = models.CharField(_("id"), primary_key=True, max_length=80)
    agreement = models.ForeignKey(
        Agreement,
        verbose_name=_("agreement"),
        on_delete=models.PROTECT,
        related_name="parties",
    )
    member = models.ForeignKey(
        Member,
        verbose_name=_("member"),
        on_delete=models.PROTECT,
        related_name="agreements",
    )
    required = models.BooleanField(
        _("required"),
        help_text=_("Must sign before the agreement enters into force."),
    )
    signed_in = models.BigIntegerField(_("signed in"), null=True, blank=True)
    signed_at = models.CharField(_("signed at"), max_length=40, blank=True)
    signed_by = models.CharField(
        _("signed by"),
        max_length=64,
        blank=True,
        help_text=_("Fingerprint of the key."),
    )
    withdrawn_in = models.BigIntegerField(_("withdrawn in"), null=True, blank=True)
    withdrawal_reason = models.CharField(_("withdrawal reason"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("agreement party")
        verbose_name_plural = _("agreement parties")
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

    sha256 = models.CharField(_("sha256"), max_length=64, primary_key=True)
    name = models.CharField(_("name"), max_length=200)
    media_type = models.CharField(_("media type"), max_length=100)
    size = models.BigIntegerField(_("size"))
    file = models.FileField(_("file"), upload_to=_document_path, max_length=200)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    holders = models.ManyToManyField(
        Member,
        verbose_name=_("holders"),
        blank=True,
        related_name="+",
        help_text=_("Members whose delegates uploaded these bytes (and so may read them)."),
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), default=timezone.now)

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")

    def __str__(self) -> str:
        return f"{self.name} ({self.sha256[:12]}…)"


# --- decisions that later stages act on: projections of accepted proposals ---------------


class ValuationTable(models.Model):
    """A versioned valuation table adopted by the members: reference accelerator-hours
    per hour of each accelerator type."""

    version = models.PositiveIntegerField(_("version"), primary_key=True)
    unit = models.CharField(_("unit"), max_length=100)
    weights = models.JSONField(
        _("weights"),
        help_text=_("{accelerator type: weight as a decimal string}"),
    )
    unit_price = models.JSONField(
        _("unit price"),
        null=True,
        blank=True,
        help_text=_("{amount, currency}: what one reference unit is worth."),
    )
    data_price = models.JSONField(
        _("data price"),
        null=True,
        blank=True,
        help_text=_("{amount, currency, per_tokens}: what data is worth."),
    )
    adopted_in = models.BigIntegerField(
        _("adopted in"),
        help_text=_("Index of the decision that adopted it."),
    )
    proposal = models.ForeignKey(
        Proposal, verbose_name=_("proposal"), on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("valuation table")
        verbose_name_plural = _("valuation tables")
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"valuation table v{self.version}"


class AccessGrant(models.Model):
    """An access exception the members decided: a member may download checkpoints
    (some, or all) in a scope until a date, whatever the agreements' rules say."""

    # "<proposal>:<n>": the n-th action of the accepting proposal.
    id = models.CharField(_("id"), primary_key=True, max_length=80)
    member = models.ForeignKey(
        Member,
        verbose_name=_("member"),
        on_delete=models.PROTECT,
        related_name="access_grants",
    )
    scope = models.CharField(_("scope"), max_length=16)
    checkpoints = models.JSONField(
        _("checkpoints"),
        null=True,
        blank=True,
        help_text=_("Manifest digests; empty means every checkpoint."),
    )
    until = models.DateField(_("until"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=300)
    granted_in = models.BigIntegerField(_("granted in"))
    revoked_in = models.BigIntegerField(_("revoked in"), null=True, blank=True)

    class Meta:
        verbose_name = _("access grant")
        verbose_name_plural = _("access grants")
        ordering = ["-granted_in"]

    def __str__(self) -> str:
        return f"{self.scope} access for {self.member_id}"


class ReleaseApproval(models.Model):
    """The members' approval to release a model checkpoint, known by its manifest digest."""

    checkpoint = models.CharField(
        _("checkpoint"),
        max_length=64,
        primary_key=True,
        help_text=_("Manifest SHA-256."),
    )
    note = models.CharField(_("note"), max_length=300, blank=True)
    approved_in = models.BigIntegerField(_("approved in"))
    proposal = models.ForeignKey(
        Proposal, verbose_name=_("proposal"), on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("release approval")
        verbose_name_plural = _("release approvals")
        ordering = ["-approved_in"]

    def __str__(self) -> str:
        return f"release of {self.checkpoint[:12]}…"
