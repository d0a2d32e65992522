"""A proposal in words: its rule, each eligible member's weight and vote, and where the
count stands against the quorum and each majority."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consortium.governance.in_words.people import member_names, number, percent
from consortium.governance.models import Proposal
from consortium.governance.selectors import acting_for
from consortium.governance.voting import HALF, Rule, RuleError, Tally, tally
from ledger.core.envelope import parse_time


@dataclass
class Condition:
    what: str
    needed: str
    now: str
    met: bool


@dataclass
class ProposalInWords:
    rule: str
    weight: str | None
    rows: list[tuple[str, str, str, str]]  # code, name, weight, vote
    tally: Tally | None
    conditions: list[Condition]
    outcome_if_no_more: str
    total_weight: str = ""
    error: str = ""


RULE_WORDS = {
    "simple_majority": gettext_lazy(
        "Simple majority: more than half of the eligible members vote yes."
    ),
    "weighted_majority": gettext_lazy(
        "Weighted majority: the yes votes carry more than half of the eligible weight."
    ),
    "double_majority": gettext_lazy(
        "Double majority: enough members vote yes, and they carry enough of the weight."
    ),
    "unanimity": gettext_lazy(
        "Unanimity: every eligible member votes, none votes no, and at least one votes yes "
        "(an abstention does not block)."
    ),
}
CHOICE_WORDS = {
    "yes": gettext_lazy("yes"),
    "no": gettext_lazy("no"),
    "abstain": gettext_lazy("abstain"),
}


def proposal_in_words(proposal: Proposal) -> ProposalInWords:
    """The rule, each eligible member's weight and vote, and where the count stands."""
    deadline = parse_time(proposal.deadline)
    votes = {
        v.member_id: v.choice for v in proposal.votes.all() if parse_time(v.cast_at) <= deadline
    }
    names = member_names(proposal.eligible)
    try:
        rule = Rule.parse(proposal.rule)
        t = tally(rule, proposal.eligible, votes)
    except RuleError as exc:
        return ProposalInWords(
            str(proposal.rule), None, [], None, [], "", _("the votes cannot be counted: %s") % exc
        )
    rows = []
    for code, figures in sorted(proposal.eligible.items()):
        weight = number(figures.get(rule.weight, 0)) if rule.weight else "1"
        choice = votes.get(code)
        rows.append(
            (code, names.get(code, code), weight, str(CHOICE_WORDS[choice]) if choice else "")
        )
    n = t.eligible
    conditions = []
    need_votes = math.ceil(rule.quorum * n)
    conditions.append(
        Condition(
            _("Quorum: %(q)s of the eligible members vote (abstentions count)")
            % {"q": percent(rule.quorum)},
            _("%(k)s of %(n)s members") % {"k": need_votes, "n": n},
            _("%(k)s voted") % {"k": t.voted},
            t.quorum_met,
        )
    )
    if rule.kind == "simple_majority":
        conditions.append(
            Condition(
                _("Members voting yes"),
                # More than half: the smallest whole number above n / 2.
                _("%(k)s of %(n)s") % {"k": n // 2 + 1, "n": n},
                str(t.yes),
                t.rule_met,
            )
        )
    elif rule.kind == "weighted_majority":
        conditions.append(
            Condition(
                _("Weight voting yes (%(figure)s)") % {"figure": rule.weight},
                _("more than %(w)s of %(total)s")
                % {"w": number(HALF * t.total_weight), "total": number(t.total_weight)},
                _yes_weight(t),
                t.rule_met,
            )
        )
    elif rule.kind == "double_majority":
        members_needed = rule.members_threshold * n
        weight_needed = rule.weight_threshold * t.total_weight
        conditions.append(
            Condition(
                _("Members voting yes: at least %(p)s") % {"p": percent(rule.members_threshold)},
                _("%(k)s of %(n)s") % {"k": math.ceil(members_needed), "n": n},
                str(t.yes),
                t.yes > 0 and Decimal(t.yes) >= members_needed,
            )
        )
        conditions.append(
            Condition(
                _("Weight voting yes (%(figure)s): at least %(p)s")
                % {"figure": rule.weight, "p": percent(rule.weight_threshold)},
                _("%(w)s of %(total)s")
                % {"w": number(weight_needed), "total": number(t.total_weight)},
                _yes_weight(t),
                t.total_weight > 0 and t.yes_weight >= weight_needed,
            )
        )
    else:
        conditions.append(
            Condition(
                _("Every member votes, none votes no"),
                _("%(n)s votes, 0 no, at least 1 yes") % {"n": n},
                _("%(v)s votes, %(no)s no, %(yes)s yes") % {"v": t.voted, "no": t.no, "yes": t.yes},
                t.rule_met,
            )
        )
    if t.accepted:
        outcome = _("accepted (if its actions still apply at the deadline)")
    elif not t.quorum_met:
        outcome = _("expired: no quorum")
    else:
        outcome = _("rejected: the rule is not met")
    return ProposalInWords(
        str(RULE_WORDS[rule.kind]),
        rule.weight,
        rows,
        t,
        conditions,
        outcome,
        total_weight=number(t.total_weight),
    )


def _yes_weight(t: Tally) -> str:
    share = percent(t.yes_weight / t.total_weight) if t.total_weight else "-"
    return f"{number(t.yes_weight)} ({share})"


def may_vote(user, proposal: Proposal, now: datetime) -> bool:
    """Whether ``user`` is the signatory of an eligible member that has not voted, while
    the proposal is open and before its deadline."""
    member = acting_for(user)
    return (
        bool(member)
        and proposal.state == Proposal.State.OPEN
        and now < parse_time(proposal.deadline)
        and member in proposal.eligible
        and not proposal.votes.filter(member_id=member).exists()
    )
