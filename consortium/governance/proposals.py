"""Proposals on the ledger, decided by the members' weighted votes (``votes``).

Entry kinds, each with one applier:

``proposal.opened`` (the secretariat key, or a member's key for its signatory)
    ``{"proposal": uuid, "title", "actions": [...], "rule": name, "deadline": RFC 3339}``
    The applier snapshots the rule and the eligible members (members in good standing,
    with their figures) as they stand at that index.
``proposal.decided`` (the secretariat key, after the deadline)
    ``{"proposal": uuid, "outcome": "accepted" | "rejected" | "expired", "tally": {...}}``;
    an accepted proposal's actions are applied by this entry's applier, all at once; a
    proposal without a quorum by its deadline expires.
``proposal.withdrawn`` (the opener's side)
    ``{"proposal": uuid}``

What the actions are, and how each is checked, applied and described, is the registry
in ``actions``. A change of the rules drops every other open proposal: they are not
decided under rules they were not opened under. ``vote_cast``, imported as itself, is
re-exported for the tests that still cast votes through this module.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from django.db import transaction

from consortium.governance import notifications
from consortium.governance.actions import ACTIONS, check_actions
from consortium.governance.changes import (
    SECRETARIAT_OWNER,
    GovernanceError,
    acting_signer,
    by_secretariat,
    idempotency,
    is_secretariat,
    secretariat_signer,
)
from consortium.governance.models import (
    AccessGrant,
    Member,
    Proposal,
    ReleaseApproval,
    ValuationTable,
)
from consortium.governance.rules import current_rules
from consortium.governance.selectors import in_good_standing
from consortium.governance.voting import Rule, RuleError, tally
from ledger import services as ledger
from ledger.core.envelope import format_time, parse_time
from ledger.services import Appended, Key, applier, projection

for model in (Proposal, ValuationTable, AccessGrant, ReleaseApproval):
    projection(model)

MAX_OPEN_DAYS = 366


# --- appliers --------------------------------------------------------------------------------


def _opener_side(author: str) -> tuple[str, str] | None:
    """(kind, owner) of a key that may open and withdraw proposals: the secretariat's, or
    a member key of a member in good standing."""
    key = Key.objects.filter(fingerprint=author).first()
    if key is None:
        return None
    if is_secretariat(key):
        return ("service", SECRETARIAT_OWNER)
    if key.kind == "member" and in_good_standing(key.owner):
        return ("member", key.owner)
    return None


@applier("proposal.opened")
def apply_opened(entry: Appended) -> None:
    p = entry.payload
    if _opener_side(entry.author) is None:
        return
    rules = current_rules()
    if p["rule"] not in rules["voting"]:
        return
    eligible = {
        m.code: m.figures
        for m in Member.objects.filter(status=Member.Status.MEMBER).order_by("code")
    }
    proposal = Proposal.objects.create(
        id=uuid.UUID(p["proposal"]),
        title=p["title"],
        actions=p["actions"],
        rule_name=p["rule"],
        rule=rules["voting"][p["rule"]],
        eligible=eligible,
        deadline=p["deadline"],
        opened_by=entry.author,
        opened_in=entry.index,
    )
    notifications.on_proposal_opened(proposal)


@applier("proposal.decided")
def apply_decided(entry: Appended) -> None:
    p = entry.payload
    proposal = Proposal.objects.filter(id=uuid.UUID(p["proposal"])).first()
    if proposal is None or proposal.state != Proposal.State.OPEN:
        return  # decided, withdrawn or dropped already: this entry changes nothing
    # Only the secretariat decides, only after the deadline, and only what the votes
    # give: an entry that says otherwise stays on the record and changes nothing.
    if not by_secretariat(entry.author):
        return
    if parse_time(entry.integrated_time) < parse_time(proposal.deadline):
        return
    # Counted as of the decision's own day, never the clock of whoever replays it.
    if (p["outcome"], p["tally"]) != decision(proposal, parse_time(entry.integrated_time).date()):
        return
    proposal.state = p["outcome"]
    proposal.tally = p["tally"]
    proposal.closed_in = entry.index
    proposal.save(update_fields=["state", "tally", "closed_in"])
    notifications.on_proposal_decided(proposal)
    if p["outcome"] != Proposal.State.ACCEPTED:
        return
    kinds = [ACTIONS[action["type"]] for action in proposal.actions]
    for n, (kind, action) in enumerate(zip(kinds, proposal.actions, strict=True)):
        if not kind.applied_by_key_entries:
            kind.apply(action, proposal=proposal, index=entry.index, n=n)
    if any(kind.drops_open_proposals for kind in kinds):
        Proposal.objects.filter(state=Proposal.State.OPEN).update(
            state=Proposal.State.DROPPED, closed_in=entry.index
        )


@applier("proposal.withdrawn")
def apply_withdrawn(entry: Appended) -> None:
    proposal = Proposal.objects.filter(
        id=uuid.UUID(entry.payload["proposal"]), state=Proposal.State.OPEN
    ).first()
    side = _opener_side(entry.author)
    if proposal is None or side is None:
        return
    if side[0] == "member" and _opener_side(proposal.opened_by) != side:
        return  # a member withdraws only what its own side opened
    Proposal.objects.filter(id=proposal.id).update(
        state=Proposal.State.WITHDRAWN, closed_in=entry.index
    )


# --- counting ----------------------------------------------------------------------------------


def proposal_tally(proposal: Proposal):
    """The tally of the votes integrated by the deadline."""
    deadline = parse_time(proposal.deadline)
    votes = {
        v.member_id: v.choice for v in proposal.votes.all() if parse_time(v.cast_at) <= deadline
    }
    return tally(Rule.parse(proposal.rule), proposal.eligible, votes)


def decision(proposal: Proposal, today: date) -> tuple[str, dict]:
    """The outcome and tally figures a proposal's votes give, as the state stands: what
    ``proposal.decided`` must record. The service computes it to write the entry; the
    applier computes it again and ignores an entry that records anything else."""
    try:
        t = proposal_tally(proposal)
    except RuleError as exc:
        reason = f"the votes could not be counted: {exc}"
        return Proposal.State.REJECTED, {"reason": reason}
    if t.accepted:
        outcome, reason = Proposal.State.ACCEPTED, ""
        try:
            check_actions(proposal.actions, today)
        except GovernanceError as exc:
            outcome, reason = Proposal.State.REJECTED, f"its actions no longer apply: {exc}"
    elif not t.quorum_met:
        # Too few members took part: the proposal lapses rather than being rejected.
        outcome, reason = Proposal.State.EXPIRED, "no quorum by the deadline"
    else:
        outcome, reason = Proposal.State.REJECTED, "the rule was not met"
    figures = {
        "eligible": t.eligible,
        "voted": t.voted,
        "yes": t.yes,
        "no": t.no,
        "abstain": t.abstain,
        "total_weight": str(t.total_weight),
        "yes_weight": str(t.yes_weight),
        "quorum_met": t.quorum_met,
        "rule_met": t.rule_met,
        "reason": reason,
    }
    return outcome, figures


# --- services ----------------------------------------------------------------------------------


def proposal_open(
    *,
    actor,
    title: str,
    actions: list,
    deadline: datetime,
    rule: str | None = None,
    idempotency_key: str | None = None,
) -> Proposal:
    """Open a proposal. With ``idempotency_key``, a retry returns the same proposal."""
    idem = idempotency(actor, idempotency_key)
    proposal_id = idem.new_id()
    done = Proposal.objects.filter(id=proposal_id).first() if idem.entry_id else None
    if done is not None:
        same = (done.title, done.actions, done.deadline) == (
            title,
            actions,
            format_time(deadline),
        ) and rule in (None, done.rule_name)
        if not same:
            raise GovernanceError("this Idempotency-Key was used for another proposal", 409)
        return done
    if not isinstance(title, str) or not title or len(title) > 300:
        raise GovernanceError("a proposal needs a title of at most 300 characters")
    check_actions(actions)
    rules = current_rules()
    rule = rule or rules["default"]
    if rule not in rules["voting"]:
        raise GovernanceError(
            f"no voting rule {rule!r}; the rules name {', '.join(rules['voting'])}"
        )
    now = datetime.now(UTC)
    if not now < deadline <= now + timedelta(days=MAX_OPEN_DAYS):
        raise GovernanceError(f"the deadline is in the future, within {MAX_OPEN_DAYS} days")
    signer, _ = acting_signer(actor)
    with transaction.atomic(durable=True):
        ledger.entry_append(
            signer=signer,
            entry_id=idem.entry_id,
            kind="proposal.opened",
            payload={
                "proposal": str(proposal_id),
                "title": title,
                "actions": actions,
                "rule": rule,
                "deadline": format_time(deadline),
            },
        )
        if not Proposal.objects.filter(id=proposal_id).exists():
            # The rules changed between the check and the append: write nothing.
            raise GovernanceError(f"the voting rule {rule!r} no longer exists", 409)
    return Proposal.objects.get(id=proposal_id)


def proposal_decide(*, proposal: Proposal) -> Proposal:
    """Decide a proposal whose deadline has passed (the secretariat's key signs).

    The entries an accepted proposal's actions need beside the decision (a first hosted
    key for a member it admits, say) are appended in the same transaction.
    """
    with transaction.atomic(durable=True):
        # Under the row lock, two deciders (or a decider and a withdrawal) cannot both act.
        proposal = Proposal.objects.select_for_update().get(id=proposal.id)
        if proposal.state != Proposal.State.OPEN:
            raise GovernanceError(f"the proposal is {proposal.state}", 409)
        if datetime.now(UTC) < parse_time(proposal.deadline):
            raise GovernanceError("the deadline has not passed yet", 409)
        outcome, figures = decision(proposal, datetime.now(UTC).date())
        ledger.entry_append(
            signer=secretariat_signer(),
            kind="proposal.decided",
            payload={"proposal": str(proposal.id), "outcome": outcome, "tally": figures},
        )
        proposal.refresh_from_db()
        if proposal.state != outcome:
            # The state moved between the count and the append: write nothing; the next
            # attempt counts again.
            raise GovernanceError("the proposal changed while it was decided: try again", 409)
        if outcome == Proposal.State.ACCEPTED:
            for action in proposal.actions:
                ACTIONS[action["type"]].sign_with_decision(action, proposal)
    proposal.refresh_from_db()
    return proposal


def proposals_due(now: datetime | None = None) -> list[Proposal]:
    """Open proposals past their deadline, in the order their deadlines came."""
    now = now or datetime.now(UTC)
    due = [
        p
        for p in Proposal.objects.filter(state=Proposal.State.OPEN)
        if parse_time(p.deadline) <= now
    ]
    return sorted(due, key=lambda p: (parse_time(p.deadline), p.opened_in))


def proposal_withdraw(*, actor, proposal: Proposal, idempotency_key: str | None = None) -> Proposal:
    """The secretariat, or a signatory of the member that opened it, withdraws it."""
    signer, member = acting_signer(actor)
    idem = idempotency(actor, idempotency_key)
    if idem.earlier("proposal.withdrawn", {"proposal": str(proposal.id)}):
        proposal.refresh_from_db()
        return proposal
    opener = Key.objects.get(fingerprint=proposal.opened_by)
    if member is not None and (opener.kind, opener.owner) != ("member", member):
        raise GovernanceError(
            "only the secretariat or the opening member withdraws a proposal", 403
        )
    with transaction.atomic(durable=True):
        # Under the row lock: a withdrawal and a decision cannot both act.
        locked = Proposal.objects.select_for_update().get(id=proposal.id)
        if locked.state != Proposal.State.OPEN:
            raise GovernanceError(f"the proposal is {locked.state}", 409)
        ledger.entry_append(
            signer=signer,
            kind="proposal.withdrawn",
            entry_id=idem.entry_id,
            payload={"proposal": str(proposal.id)},
        )
    proposal.refresh_from_db()
    return proposal
