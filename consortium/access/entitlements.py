"""Entitlements: may a member download a checkpoint, in which scope, and why.

A decision follows from, in order:

1. the checkpoint: published and not blocked;
2. the release gate of the agreement the model is under (``terms.release``): an accepted
   proposal approving the release, and an evaluation attestation, where required;
3. the member's standing: a member in good standing;
4. an explicit grant the members decided (``access.grant``, not revoked, not expired,
   for this checkpoint or for all): it allows its scope;
5. the access rules of the model's agreement (``terms.access``), for a party bound by it:
   a rule for the scope allows it at once when the member's delivered/obligation ratio
   reaches its ``min_balance_ratio``, otherwise (or without a minimum) after its
   ``embargo_days`` from publication.

Every decision names the rule that decided it and the figures behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import Q

from consortium.access.models import ModelCheckpoint
from consortium.governance.models import AccessGrant, Agreement, Member, ReleaseApproval
from consortium.governance.terms import ACCESS_SCOPES
from contributions.balances import balance_report
from contributions.report import ReportError
from ledger.core.envelope import parse_time
from ledger.services import Entry


@dataclass
class Decision:
    allow: bool
    scope: str
    rule: str
    figures: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "allow": self.allow,
            "scope": self.scope,
            "rule": self.rule,
            "figures": self.figures,
        }


def _deny(scope: str, rule: str, **figures) -> Decision:
    return Decision(False, scope, rule, figures)


def balance_ratio(agreement: Agreement, member: str, cache: dict | None = None) -> Decimal | None:
    """The member's delivered/obligation ratio under ``agreement`` (or, if that shares no
    cost, under a treaty in force that binds it): ``None`` if none can be computed. It is
    the cost-share report's figure over all time, read from the tallies the appliers keep
    (``contributions.balances``): a few queries whatever the number of contributions. With
    ``cache``, a page deciding many checkpoints computes each ratio once."""
    if cache is not None:
        key = (agreement.id, member)
        if key not in cache:
            cache[key] = balance_ratio(agreement, member)
        return cache[key]
    ratio = _ratio_under(agreement, member)
    if ratio is not None:
        return ratio
    # Only when the model's agreement gives none: the treaties in force binding the member.
    treaties = (
        Agreement.objects.filter(
            kind=Agreement.Kind.TREATY,
            state=Agreement.State.IN_FORCE,
            parties__member_id=member,
            parties__signed_in__isnull=False,
            parties__withdrawn_in__isnull=True,
        )
        .exclude(id=agreement.id)
        .order_by("proposed_in")
    )
    for candidate in treaties:
        ratio = _ratio_under(candidate, member)
        if ratio is not None:
            return ratio
    return None


def _ratio_under(agreement: Agreement, member: str) -> Decimal | None:
    try:
        report = balance_report(agreement)
    except ReportError:
        return None
    line = next((ln for ln in report.lines if ln.member == member), None)
    return line.ratio if line is not None else None


def entitlement(
    member: str,
    checkpoint: ModelCheckpoint,
    scope: str = "full_weights",
    today: date | None = None,
    ratios: dict | None = None,
) -> Decision:
    """Whether ``member`` may download ``checkpoint`` in ``scope`` (see the module);
    ``ratios``: a cache of balance ratios shared by the decisions of one page."""
    today = today or datetime.now(UTC).date()
    if scope not in ACCESS_SCOPES:
        raise ValueError(f"scope is one of {', '.join(ACCESS_SCOPES)}")
    if checkpoint.state != ModelCheckpoint.State.PUBLISHED:
        return _deny(
            scope,
            "the checkpoint is blocked: a stored file no longer matches",
            blocked_in=checkpoint.blocked_in,
        )
    agreement = checkpoint.model.agreement
    release = agreement.terms.get("release", {})
    if (
        release.get("requires_proposal")
        and not ReleaseApproval.objects.filter(checkpoint=checkpoint.digest).exists()
    ):
        return _deny(
            scope,
            "its release awaits an accepted proposal (checkpoint.release)",
            agreement=str(agreement.id),
        )
    if release.get("requires_evaluation"):
        latest = checkpoint.evaluations.order_by("-id").first()
        if latest is None:
            return _deny(
                scope,
                "its release awaits an accredited evaluator's attestation",
                agreement=str(agreement.id),
            )
        if latest.verdict != "pass":
            return _deny(
                scope,
                f"the latest evaluation ({latest.evaluator}) did not pass",
                evaluation=latest.id,
                report_sha256=latest.report_sha256,
            )
    standing = Member.objects.filter(code=member).values_list("status", flat=True).first()
    if standing != Member.Status.MEMBER:
        return _deny(scope, f"{member} is not a member in good standing", status=standing)
    grant = (
        AccessGrant.objects.filter(member_id=member, scope=scope, revoked_in__isnull=True)
        .filter(Q(until__isnull=True) | Q(until__gte=today))
        .order_by("granted_in")
    )
    for g in grant:
        if g.checkpoints is None or checkpoint.digest in g.checkpoints:
            return Decision(
                True,
                scope,
                f"access grant {g.id} decided by the members",
                {"granted_in": g.granted_in, "until": g.until.isoformat() if g.until else None},
            )
    if agreement.state != Agreement.State.IN_FORCE:
        return _deny(
            scope,
            f"the model's agreement is {agreement.get_state_display()}",
            agreement=str(agreement.id),
        )
    party = agreement.parties.filter(member_id=member).first()
    if party is None or party.signed_in is None or party.withdrawn_in is not None:
        return _deny(
            scope, f"{member} is not bound by the model's agreement", agreement=str(agreement.id)
        )
    rules = [r for r in agreement.terms.get("access", []) if r["scope"] == scope]
    if not rules:
        return _deny(
            scope, f"the model's agreement grants no {scope} access", agreement=str(agreement.id)
        )
    published = parse_time(Entry.objects.get(index=checkpoint.published_in).integrated_time).date()
    best = None
    for r in rules:
        figures = {
            "agreement": str(agreement.id),
            "tier": r["tier"],
            "published_on": published.isoformat(),
        }
        embargo = r.get("embargo_days", 0)
        open_on = published + timedelta(days=embargo)
        if "min_balance_ratio" in r:
            minimum = Decimal(r["min_balance_ratio"])
            ratio = balance_ratio(agreement, member, ratios)
            figures.update(
                min_balance_ratio=str(minimum),
                balance_ratio=None if ratio is None else str(ratio.quantize(Decimal("0.001"))),
            )
            if ratio is not None and ratio >= minimum:
                return Decision(
                    True, scope, f"{r['tier']}: balance ratio at or above {minimum}", figures
                )
            if embargo and today >= open_on:
                figures["embargo_until"] = open_on.isoformat()
                return Decision(
                    True,
                    scope,
                    f"{r['tier']}: balance ratio under {minimum}, embargo of {embargo} days over",
                    figures,
                )
            reason = f"{r['tier']}: balance ratio under {minimum}" + (
                f"; embargoed until {open_on.isoformat()}" if embargo else ""
            )
            if embargo:
                figures["embargo_until"] = open_on.isoformat()
            best = best or _deny(scope, reason, **figures)
            continue
        if today >= open_on:
            return Decision(
                True,
                scope,
                f"{r['tier']}: "
                + (f"embargo of {embargo} days over" if embargo else "open to parties"),
                figures,
            )
        figures["embargo_until"] = open_on.isoformat()
        best = best or _deny(
            scope, f"{r['tier']}: embargoed until {open_on.isoformat()}", **figures
        )
    return best
