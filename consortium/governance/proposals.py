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
    ``{"proposal": uuid, "outcome": "accepted" | "rejected" | "expired", "tally": {...}}``;
    an accepted proposal's actions are applied by this entry's applier, all at once; a
    proposal without a quorum by its deadline expires.
``proposal.withdrawn`` (the opener's side)
    ``{"proposal": uuid}``

A change of the rules drops every other open proposal: they are not decided under
rules they were not opened under.

Actions: ``member.admit`` {member}, ``member.suspend`` / ``member.reinstate`` /
``member.withdraw`` {code}, ``member.figures`` {code, figures}, ``rules.change``
{rules}, ``valuation.adopt`` {table}, ``access.grant`` {member, scope, checkpoints?,
until?, reason}, ``access.revoke`` {grant, reason}, ``checkpoint.release``
{checkpoint, note?}, ``agreement.terminate`` {agreement, reason}, ``key.revoke``
{fingerprint, reason} (a lost member key: the log key revokes it and registers a fresh
hosted key for the member, in the decision's transaction).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta

from django.db import transaction
from django.db.models import Max

from consortium.governance.agreements import close_agreement
from consortium.governance.members import (
    SECRETARIAT_OWNER,
    GovernanceError,
    acting_signer,
    idempotent_entry_id,
    keyed_uuid,
    member_record,
    replay_of,
    secretariat_signer,
)
from consortium.governance.models import (
    AccessGrant,
    Agreement,
    Consortium,
    Member,
    Proposal,
    ReleaseApproval,
    Seat,
    ValuationTable,
    Vote,
)
from consortium.governance.terms import ACCESS_SCOPES, check_valuation, parse_date
from consortium.governance.voting import CHOICES, Rule, RuleError, tally
from ledger import services as ledger
from ledger import submissions
from ledger.core.envelope import format_time, parse_time
from ledger.log import Appended, applier
from ledger.models import Key
from ledger.replay import projection

for model in (Proposal, Vote, ValuationTable, AccessGrant, ReleaseApproval):
    projection(model)

MAX_OPEN_DAYS = 366
SHA256_RE = re.compile(r"[0-9a-f]{64}")
RULE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


# --- rules and actions ---------------------------------------------------------------------


def check_rules(rules) -> dict:
    """The consortium's rules: ``{"voting": {name: rule}, "default": name}``."""
    if not isinstance(rules, dict) or set(rules) - {"voting", "default"}:
        raise GovernanceError("rules are {voting: {name: rule}, default: name}")
    voting = rules.get("voting")
    if not isinstance(voting, dict) or not voting:
        raise GovernanceError("rules.voting names at least one voting rule")
    for name, spec in voting.items():
        if not RULE_NAME_RE.fullmatch(name):
            raise GovernanceError(
                f"voting rule name {name[:70]!r}: 1-64 lowercase letters, digits, _ and -"
            )
        try:
            Rule.parse(spec)
        except RuleError as exc:
            raise GovernanceError(f"voting rule {name}: {exc}") from exc
    if not isinstance(rules.get("default"), str) or rules["default"] not in voting:
        raise GovernanceError("rules.default names one of the voting rules")
    return rules


def check_weights(rules: dict, figures: dict[str, dict]) -> None:
    """Every member must carry every figure a voting rule weighs votes by."""
    for name, spec in rules["voting"].items():
        weight = spec.get("weight")
        if not weight:
            continue
        missing = sorted(code for code, f in figures.items() if weight not in f)
        if missing:
            raise GovernanceError(
                f"voting rule {name} weighs votes by {weight}, which {', '.join(missing)} lack"
            )


def _rules() -> dict:
    consortium = Consortium.objects.first()
    if consortium is None:
        raise GovernanceError("the consortium is not founded yet", 409)
    return consortium.rules


def check_actions(actions, today: date | None = None) -> None:
    """Are ``actions`` well formed, and do they apply, one after the other, to the members
    and rules as they stand now? (Two admissions of one member, say, do not.)"""
    if not isinstance(actions, list) or not actions:
        raise GovernanceError("a proposal carries at least one action")
    members = {
        m.code: {
            "status": m.status,
            "kind": m.kind,
            "name": m.name,
            "country": m.country,
            "figures": m.figures,
        }
        for m in Member.objects.all()
    }
    rules = _rules()
    seen = set()
    try:
        for action in actions:
            rules = _check_action(action, members, rules, today or datetime.now(UTC).date())
            if action["type"] in ONCE_PER_PROPOSAL:
                field = ONCE_PER_PROPOSAL[action["type"]]
                mark = (action["type"], action[field] if field else None)
                if mark in seen:
                    raise GovernanceError(
                        f"{action['type']} twice for the same {field or 'proposal'}"
                    )
                seen.add(mark)
    except (TypeError, AttributeError) as exc:
        raise GovernanceError(f"malformed action: {exc}") from exc


def _check_action(action, members: dict, rules: dict, today: date) -> dict:
    """Check one action against the simulated state, update it, return the rules."""
    if not isinstance(action, dict) or not isinstance(action.get("type"), str):
        raise GovernanceError("an action is an object with a type")
    kind = action["type"]
    live = {c: m["figures"] for c, m in members.items() if m["status"] != Member.Status.WITHDRAWN}
    if kind == "member.admit":
        if set(action) != {"type", "member"} or not isinstance(action["member"], dict):
            raise GovernanceError("member.admit is {type, member}")
        fields = {"code", "kind", "name", "country", "figures"}
        if set(action["member"]) != fields:
            raise GovernanceError(
                f"member.admit takes a complete member record: {', '.join(sorted(fields))}"
            )
        record = member_record(**action["member"])
        if record != action["member"]:
            raise GovernanceError("member.admit takes a complete member record")
        known = members.get(record["code"])
        if known is not None and known["status"] != Member.Status.APPLICANT:
            raise GovernanceError(f"{record['code']} is already {known['status']}")
        check_weights(rules, {record["code"]: record["figures"]})
        members[record["code"]] = {**record, "status": Member.Status.MEMBER}
        return rules
    if kind in ("member.suspend", "member.reinstate", "member.withdraw", "member.figures"):
        fields = {"type", "code", "figures"} if kind == "member.figures" else {"type", "code"}
        if set(action) != fields:
            raise GovernanceError(f"{kind} is {{{', '.join(sorted(fields))}}}")
        code = action["code"]
        member = members.get(code) if isinstance(code, str) else None
        if member is None:
            raise GovernanceError(f"no member {code!r}")
        needs = {
            "member.suspend": Member.Status.MEMBER,
            "member.reinstate": Member.Status.SUSPENDED,
        }.get(kind)
        if needs and member["status"] != needs:
            raise GovernanceError(f"{code} is {member['status']}")
        if kind == "member.withdraw":
            if member["status"] == Member.Status.WITHDRAWN:
                raise GovernanceError(f"{code} has already withdrawn")
            member["status"] = Member.Status.WITHDRAWN
        elif kind == "member.figures":
            checked = member_record(
                code=code,
                kind=member["kind"],
                name=member["name"],
                country=member["country"],
                figures=action["figures"],
            )
            if checked["figures"] != action["figures"]:
                raise GovernanceError("figures are integers or decimal strings")
            check_weights(rules, {code: checked["figures"]})
            member["figures"] = checked["figures"]
        else:
            member["status"] = (
                Member.Status.SUSPENDED if kind == "member.suspend" else Member.Status.MEMBER
            )
        return rules
    if kind == "rules.change":
        if set(action) != {"type", "rules"}:
            raise GovernanceError("rules.change is {type, rules}")
        new = check_rules(action["rules"])
        check_weights(new, live)
        return new
    if kind in OTHER_ACTIONS:
        OTHER_ACTIONS[kind](action, members, today)
        return rules
    raise GovernanceError(f"unknown action type {kind!r}")


def _exact(action: dict, *fields: str, optional: tuple[str, ...] = ()) -> None:
    allowed = {"type", *fields, *optional}
    if not {"type", *fields} <= set(action) <= allowed:
        listed = ", ".join([*fields, *(f"{o}?" for o in optional)])
        raise GovernanceError(f"{action['type']} is {{type, {listed}}}")


def _reason(action: dict) -> None:
    reason = action["reason"]
    if not isinstance(reason, str) or not 0 < len(reason) <= 300:
        raise GovernanceError(f"{action['type']}: give a reason of at most 300 characters")


def _check_valuation_adopt(action: dict, members: dict, today: date) -> None:
    _exact(action, "table")
    table = check_valuation(action["table"], "valuation.adopt: table")
    latest = ValuationTable.objects.aggregate(v=Max("version"))["v"] or 0
    if table["version"] <= latest:
        raise GovernanceError(
            f"valuation.adopt: version {table['version']} is taken (latest {latest})"
        )


def _check_access_grant(action: dict, members: dict, today: date) -> None:
    _exact(action, "member", "scope", "reason", optional=("checkpoints", "until"))
    member = members.get(action["member"]) if isinstance(action["member"], str) else None
    if member is None or member["status"] == Member.Status.WITHDRAWN:
        raise GovernanceError(f"access.grant: no member {action['member']!r}")
    if action["scope"] not in ACCESS_SCOPES:
        raise GovernanceError(f"access.grant: scope is one of {', '.join(ACCESS_SCOPES)}")
    digests = action.get("checkpoints")
    if digests is not None and (
        not isinstance(digests, list)
        or not digests
        or not all(isinstance(d, str) and SHA256_RE.fullmatch(d) for d in digests)
    ):
        raise GovernanceError(
            "access.grant: checkpoints lists manifest SHA-256 digests (or is left out for all)"
        )
    if action.get("until") is not None:
        until = parse_date(action["until"], "access.grant: until")
        if until < today:
            raise GovernanceError("access.grant: until has passed")
    _reason(action)


def _check_access_revoke(action: dict, members: dict, today: date) -> None:
    _exact(action, "grant", "reason")
    grant = (
        AccessGrant.objects.filter(id=action["grant"]).first()
        if isinstance(action["grant"], str)
        else None
    )
    if grant is None or grant.revoked_in is not None:
        raise GovernanceError(f"access.revoke: no standing grant {action['grant']!r}")
    _reason(action)


def _check_checkpoint_release(action: dict, members: dict, today: date) -> None:
    _exact(action, "checkpoint", optional=("note",))
    digest = action["checkpoint"]
    if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
        raise GovernanceError("checkpoint.release: checkpoint is its manifest's SHA-256 (hex)")
    if ReleaseApproval.objects.filter(checkpoint=digest).exists():
        raise GovernanceError("checkpoint.release: that checkpoint's release is approved already")
    note = action.get("note", "")
    if not isinstance(note, str) or len(note) > 300:
        raise GovernanceError("checkpoint.release: note is at most 300 characters")


def _check_agreement_terminate(action: dict, members: dict, today: date) -> None:
    _exact(action, "agreement", "reason")
    agreement = None
    if isinstance(action["agreement"], str):
        try:
            agreement = Agreement.objects.filter(id=uuid.UUID(action["agreement"])).first()
        except ValueError:
            agreement = None
    if agreement is None:
        raise GovernanceError(f"agreement.terminate: no agreement {action['agreement']!r}")
    if agreement.state != Agreement.State.IN_FORCE:
        raise GovernanceError(f"agreement.terminate: the agreement is {agreement.state}")
    _reason(action)


def _check_key_revoke(action: dict, members: dict, today: date) -> None:
    _exact(action, "fingerprint", "reason")
    key = (
        Key.objects.filter(fingerprint=action["fingerprint"], kind="member").first()
        if (isinstance(action["fingerprint"], str))
        else None
    )
    if key is None:
        raise GovernanceError("key.revoke: no member key with that fingerprint")
    if key.revoked_at is not None:
        raise GovernanceError("key.revoke: that key is revoked already")
    if key.owner not in members:
        raise GovernanceError(f"key.revoke: {key.owner} is not a member")
    _reason(action)


# Actions whose effect is a key registry change: the key.revoked (and key.registered)
# entries the decision's service appends in the same transaction make it, through the
# key registry's own projection; the decision's applier has nothing to write for them.
APPLIED_BY_KEY_ENTRIES = frozenset({"key.revoke"})
# Actions a proposal may carry once (per value of the field named).
ONCE_PER_PROPOSAL = {
    "valuation.adopt": None,
    "checkpoint.release": "checkpoint",
    "agreement.terminate": "agreement",
    "key.revoke": "fingerprint",
    "access.revoke": "grant",
}
# Actions beyond members and rules: {type: check(action, simulated members)}.
OTHER_ACTIONS = {
    "valuation.adopt": _check_valuation_adopt,
    "access.grant": _check_access_grant,
    "access.revoke": _check_access_revoke,
    "checkpoint.release": _check_checkpoint_release,
    "agreement.terminate": _check_agreement_terminate,
    "key.revoke": _check_key_revoke,
}


def _apply_action(action: dict, index: int, proposal: Proposal, n: int) -> None:
    kind = action["type"]
    if kind == "valuation.adopt":
        t = action["table"]
        ValuationTable.objects.create(
            version=t["version"],
            unit=t["unit"],
            weights=t["weights"],
            unit_price=t.get("unit_price"),
            data_price=t.get("data_price"),
            adopted_in=index,
            proposal=proposal,
        )
    elif kind == "access.grant":
        AccessGrant.objects.create(
            id=f"{proposal.id}:{n}",
            member_id=action["member"],
            scope=action["scope"],
            checkpoints=action.get("checkpoints"),
            until=action.get("until"),
            reason=action["reason"],
            granted_in=index,
        )
    elif kind == "access.revoke":
        AccessGrant.objects.filter(id=action["grant"], revoked_in__isnull=True).update(
            revoked_in=index
        )
    elif kind == "checkpoint.release":
        ReleaseApproval.objects.create(
            checkpoint=action["checkpoint"],
            note=action.get("note", ""),
            approved_in=index,
            proposal=proposal,
        )
    elif kind == "agreement.terminate":
        close_agreement(
            uuid.UUID(action["agreement"]), Agreement.State.TERMINATED, index, action["reason"]
        )
    elif kind == "member.admit":
        m = action["member"]
        fields = {
            "kind": m["kind"],
            "name": m["name"],
            "country": m["country"],
            "figures": m["figures"],
            "status": Member.Status.MEMBER,
            "changed_in": index,
        }
        # An applicant becomes a member; a member admitted directly is registered here.
        if not Member.objects.filter(code=m["code"]).update(**fields):
            Member.objects.create(code=m["code"], registered_in=index, **fields)
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
        if kind == "member.withdraw":
            # A member that has left holds no seats: its delegates (and their tokens)
            # read and act no more.
            Seat.objects.filter(member_id=action["code"], vacated_in__isnull=True).update(
                vacated_in=index
            )


# --- appliers --------------------------------------------------------------------------------


def _by_secretariat(author: str) -> bool:
    return Key.objects.filter(fingerprint=author, kind="service", owner=SECRETARIAT_OWNER).exists()


def _opener_side(author: str) -> tuple[str, str] | None:
    """(kind, owner) of a key that may open and withdraw proposals: the secretariat's, or
    a member key of a member in good standing."""
    key = Key.objects.filter(fingerprint=author).first()
    if key is None:
        return None
    if key.kind == "service" and key.owner == SECRETARIAT_OWNER:
        return ("service", key.owner)
    if (
        key.kind == "member"
        and Member.objects.filter(code=key.owner, status=Member.Status.MEMBER).exists()
    ):
        return ("member", key.owner)
    return None


@applier("proposal.opened")
def apply_opened(entry: Appended) -> None:
    p = entry.payload
    if _opener_side(entry.author) is None:
        return
    rules = _rules()
    if p["rule"] not in rules["voting"]:
        return
    eligible = {
        m.code: m.figures
        for m in Member.objects.filter(status=Member.Status.MEMBER).order_by("code")
    }
    Proposal.objects.create(
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


@applier("vote.cast")
def apply_vote(entry: Appended) -> None:
    p = entry.payload
    key = Key.objects.get(fingerprint=entry.author)
    member = key.owner
    proposal = Proposal.objects.filter(id=uuid.UUID(p["proposal"])).first()
    # A vote that reaches the log after the deadline, on a closed proposal, by a key
    # other than a member's, or from a member not eligible changes nothing (it stays
    # on the record, uncounted).
    if (
        proposal is None
        or key.kind != "member"
        or proposal.state != Proposal.State.OPEN
        or parse_time(entry.integrated_time) > parse_time(proposal.deadline)
        or member not in proposal.eligible
    ):
        return
    Vote.objects.update_or_create(
        id=f"{proposal.id}:{member}",
        defaults={
            "proposal_id": proposal.id,
            "member_id": member,
            "choice": p["choice"],
            "cast_in": entry.index,
            "cast_at": entry.integrated_time,
        },
    )


@applier("proposal.decided")
def apply_decided(entry: Appended) -> None:
    p = entry.payload
    proposal = Proposal.objects.filter(id=uuid.UUID(p["proposal"])).first()
    if proposal is None or proposal.state != Proposal.State.OPEN:
        return  # decided, withdrawn or dropped already: this entry changes nothing
    # Only the secretariat decides, only after the deadline, and only what the votes
    # give: an entry that says otherwise stays on the record and changes nothing.
    if not _by_secretariat(entry.author):
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
    if p["outcome"] != Proposal.State.ACCEPTED:
        return
    for n, action in enumerate(proposal.actions):
        if action["type"] not in APPLIED_BY_KEY_ENTRIES:
            _apply_action(action, entry.index, proposal, n)
    if any(a["type"] == "rules.change" for a in proposal.actions):
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
    proposal_id = uuid.uuid4()
    entry_id = None
    if idempotency_key:
        entry_id = idempotent_entry_id(actor, idempotency_key)
        proposal_id = keyed_uuid(entry_id)
        done = Proposal.objects.filter(id=proposal_id).first()
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
    rules = _rules()
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
            entry_id=entry_id,
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


def vote_cast(
    *, actor, proposal: Proposal, choice: str, idempotency_key: str | None = None
) -> Vote:
    """Cast (or change) the actor's member's vote. With ``idempotency_key``, a retry
    returns the vote the first request cast (from its entry: a later vote may have
    replaced it since)."""
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    if entry_id is not None:
        from ledger.models import Entry

        done = Entry.objects.filter(entry_id=entry_id).first()
        if done is not None:
            if done.payload != {"proposal": str(proposal.id), "choice": choice}:
                raise GovernanceError("this Idempotency-Key was used for another vote", 409)
            member = Key.objects.get(fingerprint=done.author).owner
            return Vote(
                id=f"{proposal.id}:{member}",
                proposal=proposal,
                member_id=member,
                choice=choice,
                cast_in=done.index,
                cast_at=done.integrated_time,
            )
    if choice not in CHOICES:
        raise GovernanceError(f"a vote is {', '.join(CHOICES)}")
    signer, member = acting_signer(actor)
    if member is None:
        raise GovernanceError("the secretariat does not vote; members do", 403)
    proposal.refresh_from_db()
    if proposal.state != Proposal.State.OPEN:
        raise GovernanceError(f"the proposal is {proposal.state}", 409)
    if datetime.now(UTC) >= parse_time(proposal.deadline):
        raise GovernanceError("the deadline has passed", 409)
    if member not in proposal.eligible:
        raise GovernanceError(f"{member} may not vote on this proposal", 403)
    with transaction.atomic(durable=True):
        entry = ledger.entry_append(
            signer=signer,
            entry_id=entry_id,
            kind="vote.cast",
            payload={"proposal": str(proposal.id), "choice": choice},
        )
        vote = Vote.objects.filter(id=f"{proposal.id}:{member}").first()
        if vote is None or vote.cast_in != entry.index:
            # Integrated after the deadline (or after the proposal closed): the vote
            # would not count, so it is not written at all.
            raise GovernanceError("the deadline has passed", 409)
    return vote


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


def proposal_decide(*, proposal: Proposal) -> Proposal:
    """Decide a proposal whose deadline has passed (the secretariat's key signs).

    A member admitted by an accepted proposal gets its first (hosted) key in the same
    transaction, so that its signatory can act.
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
            from ledger.keys import log_signer

            for action in proposal.actions:
                if action["type"] == "member.admit":
                    code = action["member"]["code"]
                    ledger.key_register(
                        signer=log_signer(), kind="member", owner=code, name=f"member-{code}"
                    )
                elif action["type"] == "key.revoke":
                    # A lost key: the log key revokes it and gives its member a fresh
                    # hosted key, which the member may later rotate to one of its own.
                    key = Key.objects.get(fingerprint=action["fingerprint"])
                    ledger.key_revoke(
                        signer=log_signer(),
                        fingerprint=key.fingerprint,
                        reason=f"proposal {proposal.id}: {action['reason']}",
                    )
                    ledger.key_register(
                        signer=log_signer(),
                        kind="member",
                        owner=key.owner,
                        name=f"member-{key.owner}",
                    )
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
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    if replay_of(entry_id, "proposal.withdrawn", {"proposal": str(proposal.id)}):
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
            entry_id=entry_id,
            payload={"proposal": str(proposal.id)},
        )
    proposal.refresh_from_db()
    return proposal


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
        canonical = str(uuid.UUID(str(payload["proposal"])))
    except ValueError:
        canonical = None
    if canonical != payload["proposal"]:
        raise submissions.Refused(
            "proposal must be a UUID in its canonical form (lowercase, hyphens)"
        )
    proposal = Proposal.objects.filter(id=canonical).first()
    if proposal is None:
        raise submissions.Refused("no such proposal", 404)
    if proposal.state != Proposal.State.OPEN:
        raise submissions.Refused(f"the proposal is {proposal.state}", 409)
    if datetime.now(UTC) >= parse_time(proposal.deadline):
        raise submissions.Refused("the deadline has passed", 409)
    if member.code not in proposal.eligible:
        raise submissions.Refused(f"{member.code} may not vote on this proposal", 403)
