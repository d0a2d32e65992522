"""Proposals and weighted votes on the ledger.

Entry kinds, each with one applier:

``proposal.opened`` (the secretariat key, or a member's key for its signatory)
    ``{"proposal": uuid, "title", "actions": [...], "rule": name, "deadline": RFC 3339}``
    The applier snapshots the rule and the eligible members (members in good standing,
    with their figures) as they stand at that index.
``vote.cast`` (a member's key)
    ``{"proposal": uuid, "choice": "yes" | "no" | "abstain"}``; a later vote by the
    same member replaces its earlier one. Votes integrated after the deadline are not
    counted.
``proposal.decided`` (the secretariat key, after the deadline)
    ``{"proposal": uuid, "outcome": "accepted" | "rejected", "tally": {...}}``; an
    accepted proposal's actions are applied by this entry's applier, all at once.
``proposal.withdrawn`` (the opener's side)
    ``{"proposal": uuid}``

A change of the rules drops every other open proposal: they are not decided under
rules they were not opened under.

Actions: ``member.admit`` {member}, ``member.suspend`` / ``member.reinstate`` /
``member.withdraw`` {code}, ``member.figures`` {code, figures}, ``rules.change``
{rules}.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from django.db import transaction

from consortium.governance import GovernanceError, member_record, seat_of, secretariat_signer
from consortium.models import Consortium, Member, Proposal, Seat, Vote
from consortium.voting import CHOICES, Rule, RuleError, tally
from ledger import services as ledger
from ledger import submissions
from ledger.core.envelope import format_time, parse_time
from ledger.keys import hosted_signer
from ledger.log import Appended, applier
from ledger.models import Key
from ledger.replay import projection

for model in (Proposal, Vote):
    projection(model)

MAX_OPEN_DAYS = 366


# --- rules and actions ---------------------------------------------------------------------


def check_rules(rules) -> dict:
    """The consortium's rules: ``{"voting": {name: rule}, "default": name}``."""
    if not isinstance(rules, dict) or set(rules) - {"voting", "default"}:
        raise GovernanceError("rules are {voting: {name: rule}, default: name}")
    voting = rules.get("voting")
    if not isinstance(voting, dict) or not voting:
        raise GovernanceError("rules.voting names at least one voting rule")
    for name, spec in voting.items():
        try:
            Rule.parse(spec)
        except RuleError as exc:
            raise GovernanceError(f"voting rule {name}: {exc}") from exc
    if rules.get("default") not in voting:
        raise GovernanceError("rules.default names one of the voting rules")
    return rules


def _rules() -> dict:
    consortium = Consortium.objects.first()
    if consortium is None:
        raise GovernanceError("the consortium is not founded yet", 409)
    return consortium.rules


def check_action(action) -> None:
    """Is ``action`` well formed, and does it apply to the members as they stand now?"""
    if not isinstance(action, dict) or "type" not in action:
        raise GovernanceError("an action is an object with a type")
    kind = action["type"]
    members = {m.code: m for m in Member.objects.all()}
    if kind == "member.admit":
        if set(action) != {"type", "member"} or not isinstance(action["member"], dict):
            raise GovernanceError("member.admit is {type, member}")
        record = member_record(**action["member"])
        if record != action["member"]:
            raise GovernanceError("member.admit takes a complete member record")
        if record["code"] in members:
            raise GovernanceError(f"{record['code']} is already known")
        return
    if kind in ("member.suspend", "member.reinstate", "member.withdraw", "member.figures"):
        fields = {"type", "code", "figures"} if kind == "member.figures" else {"type", "code"}
        if set(action) != fields:
            raise GovernanceError(f"{kind} is {{{', '.join(sorted(fields))}}}")
        member = members.get(action["code"])
        if member is None:
            raise GovernanceError(f"no member {action['code']!r}")
        needs = {
            "member.suspend": Member.Status.MEMBER,
            "member.reinstate": Member.Status.SUSPENDED,
        }.get(kind)
        if needs and member.status != needs:
            raise GovernanceError(f"{member.code} is {member.status}")
        if kind == "member.withdraw" and member.status == Member.Status.WITHDRAWN:
            raise GovernanceError(f"{member.code} has already withdrawn")
        if kind == "member.figures":
            checked = member_record(code=member.code, kind=member.kind, name=member.name,
                                    country=member.country, figures=action["figures"])  # fmt: skip
            if checked["figures"] != action["figures"]:
                raise GovernanceError("figures are integers or decimal strings")
        return
    if kind == "rules.change":
        if set(action) != {"type", "rules"}:
            raise GovernanceError("rules.change is {type, rules}")
        check_rules(action["rules"])
        return
    raise GovernanceError(f"unknown action type {kind!r}")


def _apply_action(action: dict, index: int) -> None:
    kind = action["type"]
    if kind == "member.admit":
        m = action["member"]
        Member.objects.create(
            code=m["code"], kind=m["kind"], name=m["name"], country=m["country"],
            figures=m["figures"], status=Member.Status.MEMBER, registered_in=index, changed_in=index,
        )  # fmt: skip
    elif kind == "rules.change":
        Consortium.objects.filter(id=1).update(rules=action["rules"])
    else:
        changes = {
            "member.suspend": {"status": Member.Status.SUSPENDED},
            "member.reinstate": {"status": Member.Status.MEMBER},
            "member.withdraw": {"status": Member.Status.WITHDRAWN},
            "member.figures": {"figures": action.get("figures")},
        }[kind]
        Member.objects.filter(code=action["code"]).update(changed_in=index, **changes)


# --- appliers --------------------------------------------------------------------------------


@applier("proposal.opened")
def apply_opened(entry: Appended) -> None:
    p = entry.payload
    rules = _rules()
    eligible = {
        m.code: m.figures
        for m in Member.objects.filter(status=Member.Status.MEMBER).order_by("code")
    }
    Proposal.objects.create(
        id=uuid.UUID(p["proposal"]), title=p["title"], actions=p["actions"], rule_name=p["rule"],
        rule=rules["voting"][p["rule"]], eligible=eligible, deadline=p["deadline"],
        opened_by=entry.author, opened_in=entry.index,
    )  # fmt: skip


@applier("vote.cast")
def apply_vote(entry: Appended) -> None:
    p = entry.payload
    member = Key.objects.get(fingerprint=entry.author).owner
    Vote.objects.update_or_create(
        id=f"{p['proposal']}:{member}",
        defaults={
            "proposal_id": uuid.UUID(p["proposal"]), "member_id": member, "choice": p["choice"],
            "cast_in": entry.index, "cast_at": entry.integrated_time,
        },
    )  # fmt: skip


@applier("proposal.decided")
def apply_decided(entry: Appended) -> None:
    p = entry.payload
    proposal = Proposal.objects.get(id=uuid.UUID(p["proposal"]))
    proposal.state = p["outcome"]
    proposal.tally = p["tally"]
    proposal.closed_in = entry.index
    proposal.save(update_fields=["state", "tally", "closed_in"])
    if p["outcome"] != Proposal.State.ACCEPTED:
        return
    for action in proposal.actions:
        _apply_action(action, entry.index)
    if any(a["type"] == "rules.change" for a in proposal.actions):
        Proposal.objects.filter(state=Proposal.State.OPEN).update(
            state=Proposal.State.DROPPED, closed_in=entry.index
        )


@applier("proposal.withdrawn")
def apply_withdrawn(entry: Appended) -> None:
    Proposal.objects.filter(id=uuid.UUID(entry.payload["proposal"])).update(
        state=Proposal.State.WITHDRAWN, closed_in=entry.index
    )


# --- services ----------------------------------------------------------------------------------


def _signer_for(actor):
    """The secretariat key for the secretariat; a member's hosted key for its signatory."""
    seat = seat_of(actor)
    if seat is not None and seat.member_id is None and seat.role == Seat.Role.SECRETARIAT:
        return secretariat_signer(), None
    if seat is None or seat.role != Seat.Role.SIGNATORY:
        raise GovernanceError("only the secretariat or a member's signatory may do this", 403)
    if seat.member.status != Member.Status.MEMBER:
        raise GovernanceError(f"{seat.member_id} is {seat.member.status}: it cannot act", 403)
    key = (
        Key.objects.filter(
            kind="member", owner=seat.member_id, custody="hosted", revoked_at__isnull=True
        )
        .order_by("-registered_in")
        .first()
    )
    if key is None:
        raise GovernanceError(
            f"{seat.member_id} has no hosted key: sign with its own key instead", 403
        )
    return hosted_signer(key.fingerprint), seat.member_id


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
    if not title or len(title) > 300:
        raise GovernanceError("a proposal needs a title of at most 300 characters")
    if not isinstance(actions, list) or not actions:
        raise GovernanceError("a proposal carries at least one action")
    for action in actions:
        check_action(action)
    rules = _rules()
    rule = rule or rules["default"]
    if rule not in rules["voting"]:
        raise GovernanceError(
            f"no voting rule {rule!r}; the rules name {', '.join(rules['voting'])}"
        )
    now = datetime.now(UTC)
    if not now < deadline <= now + timedelta(days=MAX_OPEN_DAYS):
        raise GovernanceError(f"the deadline is in the future, within {MAX_OPEN_DAYS} days")
    signer, _ = _signer_for(actor)
    entry_id = None
    proposal_id = uuid.uuid4()
    if idempotency_key:
        entry_id = _entry_id(actor, idempotency_key)
        proposal_id = uuid.uuid5(uuid.NAMESPACE_URL, f"consortium-ledger:{entry_id}")
        if Proposal.objects.filter(id=proposal_id).exists():
            return Proposal.objects.get(id=proposal_id)
    with transaction.atomic(durable=True):
        ledger.entry_append(
            signer=signer,
            entry_id=entry_id,
            kind="proposal.opened",
            payload={"proposal": str(proposal_id), "title": title, "actions": actions,
                     "rule": rule, "deadline": format_time(deadline)},
        )  # fmt: skip
    return Proposal.objects.get(id=proposal_id)


def _entry_id(actor, key: str) -> str:
    """An entry id from a client's Idempotency-Key, scoped to the client."""
    if not key or len(key) > 64 or not all(c.isalnum() or c in "._:-" for c in key):
        raise GovernanceError("Idempotency-Key is 1-64 letters, digits and . _ : -")
    return f"idem-{actor.pk}-{key}"


def vote_cast(
    *, actor, proposal: Proposal, choice: str, idempotency_key: str | None = None
) -> Vote:
    """Cast (or change) the actor's member's vote. With ``idempotency_key``, a retry
    returns the same vote."""
    if choice not in CHOICES:
        raise GovernanceError(f"a vote is {', '.join(CHOICES)}")
    signer, member = _signer_for(actor)
    if member is None:
        raise GovernanceError("the secretariat does not vote; members do", 403)
    proposal.refresh_from_db()
    if proposal.state != Proposal.State.OPEN:
        raise GovernanceError(f"the proposal is {proposal.state}", 409)
    if datetime.now(UTC) >= parse_time(proposal.deadline):
        raise GovernanceError("the deadline has passed", 409)
    if member not in proposal.eligible:
        raise GovernanceError(f"{member} may not vote on this proposal", 403)
    entry_id = _entry_id(actor, idempotency_key) if idempotency_key else None
    with transaction.atomic(durable=True):
        ledger.entry_append(
            signer=signer,
            entry_id=entry_id,
            kind="vote.cast",
            payload={"proposal": str(proposal.id), "choice": choice},
        )
    return Vote.objects.get(id=f"{proposal.id}:{member}")


def proposal_tally(proposal: Proposal):
    """The tally of the votes integrated by the deadline."""
    deadline = parse_time(proposal.deadline)
    votes = {
        v.member_id: v.choice for v in proposal.votes.all() if parse_time(v.cast_at) <= deadline
    }
    return tally(Rule.parse(proposal.rule), proposal.eligible, votes)


def proposal_decide(*, proposal: Proposal, now: datetime | None = None) -> Proposal:
    """Decide a proposal whose deadline has passed (the secretariat's key signs)."""
    now = now or datetime.now(UTC)
    proposal.refresh_from_db()
    if proposal.state != Proposal.State.OPEN:
        raise GovernanceError(f"the proposal is {proposal.state}", 409)
    if now < parse_time(proposal.deadline):
        raise GovernanceError("the deadline has not passed yet", 409)
    t = proposal_tally(proposal)
    outcome = Proposal.State.ACCEPTED if t.accepted else Proposal.State.REJECTED
    reason = "" if t.accepted else ("no quorum" if not t.quorum_met else "the rule was not met")
    if t.accepted:
        try:
            for action in proposal.actions:
                check_action(action)
        except GovernanceError as exc:
            outcome, reason = Proposal.State.REJECTED, f"its actions no longer apply: {exc}"
    figures = {
        "eligible": t.eligible, "voted": t.voted, "yes": t.yes, "no": t.no, "abstain": t.abstain,
        "total_weight": str(t.total_weight), "yes_weight": str(t.yes_weight),
        "quorum_met": t.quorum_met, "rule_met": t.rule_met, "reason": reason,
    }  # fmt: skip
    with transaction.atomic(durable=True):
        ledger.entry_append(
            signer=secretariat_signer(),
            kind="proposal.decided",
            payload={"proposal": str(proposal.id), "outcome": outcome, "tally": figures},
        )
    proposal.refresh_from_db()
    return proposal


def proposals_due(now: datetime | None = None) -> list[Proposal]:
    now = now or datetime.now(UTC)
    return [
        p
        for p in Proposal.objects.filter(state=Proposal.State.OPEN)
        if parse_time(p.deadline) <= now
    ]


def proposal_withdraw(*, actor, proposal: Proposal) -> None:
    """The secretariat, or a signatory of the member that opened it, withdraws it."""
    signer, member = _signer_for(actor)
    proposal.refresh_from_db()
    if proposal.state != Proposal.State.OPEN:
        raise GovernanceError(f"the proposal is {proposal.state}", 409)
    opener = Key.objects.get(fingerprint=proposal.opened_by)
    if member is not None and (opener.kind, opener.owner) != ("member", member):
        raise GovernanceError(
            "only the secretariat or the opening member withdraws a proposal", 403
        )
    with transaction.atomic(durable=True):
        ledger.entry_append(
            signer=signer, kind="proposal.withdrawn", payload={"proposal": str(proposal.id)}
        )


# --- votes members sign with their own keys (POST /api/v1/ledger/entries) ------------------


@submissions.accepts("vote.cast")
def _submitted_vote(signed, key, submitter) -> None:
    payload = signed.envelope["payload"]
    if set(payload) != {"proposal", "choice"} or payload["choice"] not in CHOICES:
        raise submissions.Refused("vote.cast payload is {proposal, choice: yes | no | abstain}")
    if key.kind != "member" or not submissions.may_act_for(submitter, key.owner):
        raise submissions.Refused(f"you may not vote for {key.owner}", 403)
    member = Member.objects.filter(code=key.owner).first()
    if member is None or member.status != Member.Status.MEMBER:
        raise submissions.Refused(f"{key.owner} is not a member in good standing", 403)
    try:
        proposal = Proposal.objects.filter(id=uuid.UUID(str(payload["proposal"]))).first()
    except ValueError:
        proposal = None
    if proposal is None:
        raise submissions.Refused("no such proposal", 404)
    if proposal.state != Proposal.State.OPEN:
        raise submissions.Refused(f"the proposal is {proposal.state}", 409)
    if datetime.now(UTC) >= parse_time(proposal.deadline):
        raise submissions.Refused("the deadline has passed", 409)
    if member.code not in proposal.eligible:
        raise submissions.Refused(f"{member.code} may not vote on this proposal", 403)
