"""Voting rules and tallies: pure functions, exact decimals, no database.

A rule is a JSON object from the consortium's rules::

    {"kind": "simple_majority" | "weighted_majority" | "double_majority" | "unanimity",
     "quorum": "0.5",              # share of eligible members who must vote (any vote)
     "weight": "population",       # the member figure that weighs a vote (weighted rules)
     "members_threshold": "0.55",  # double majority: share of members voting yes
     "weight_threshold": "0.65"}   # double majority: share of the weight voting yes

Every threshold is a share of *all eligible members* (or of their total weight), not of
those who voted: an abstention, like silence, is not a yes. So:

- simple majority: more than half of the eligible members vote yes;
- weighted majority: the yes votes carry more than half of the eligible weight;
- double majority: at least ``members_threshold`` of the members vote yes, and they
  carry at least ``weight_threshold`` of the weight;
- unanimity: no member votes no, every eligible member votes (an explicit abstention
  does not block, as in a constructive abstention), and at least one votes yes.

The quorum counts every cast vote, abstentions included. One vote counts per member:
a member that votes again before the deadline replaces its vote. A proposal is decided
at its deadline (votes may change until then).

Adding a yes vote never turns an accepted proposal into a rejected one: every rule
and the quorum only ever ask for more yes votes or more votes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

KINDS = ("simple_majority", "weighted_majority", "double_majority", "unanimity")
CHOICES = ("yes", "no", "abstain")
HALF = Decimal("0.5")


class RuleError(ValueError):
    """A voting rule is malformed."""


def _share(spec: Mapping, name: str, default: str | None = None) -> Decimal:
    raw = spec.get(name, default)
    if not isinstance(raw, str) or not raw.isascii():
        raise RuleError(f'{name} must be a decimal string of the digits 0-9, like "0.5"')
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise RuleError(f'{name} must be a decimal string, like "0.5"') from exc
    if not Decimal(0) <= value <= Decimal(1):
        raise RuleError(f"{name} must be between 0 and 1")
    return value


@dataclass(frozen=True)
class Rule:
    kind: str
    quorum: Decimal
    weight: str | None = None
    members_threshold: Decimal | None = None
    weight_threshold: Decimal | None = None

    @classmethod
    def parse(cls, spec) -> Rule:
        if not isinstance(spec, Mapping):
            raise RuleError("a voting rule is an object")
        kind = spec.get("kind")
        if kind not in KINDS:
            raise RuleError(f"rule kind must be one of {', '.join(KINDS)}")
        allowed = {"kind", "quorum"}
        weight = members = weights = None
        if kind in ("weighted_majority", "double_majority"):
            allowed.add("weight")
            weight = spec.get("weight")
            if not isinstance(weight, str) or not weight:
                raise RuleError(f"{kind} needs the member figure that weighs a vote (weight)")
        if kind == "double_majority":
            allowed |= {"members_threshold", "weight_threshold"}
            members = _share(spec, "members_threshold")
            weights = _share(spec, "weight_threshold")
        extra = set(spec) - allowed
        if extra:
            raise RuleError(f"unknown rule fields for {kind}: {', '.join(sorted(extra))}")
        return cls(kind, _share(spec, "quorum", "0"), weight, members, weights)


@dataclass(frozen=True)
class Tally:
    """The figures behind a decision, so that every outcome can be explained."""

    eligible: int
    voted: int
    yes: int
    no: int
    abstain: int
    total_weight: Decimal
    yes_weight: Decimal
    quorum_met: bool
    rule_met: bool

    @property
    def accepted(self) -> bool:
        return self.quorum_met and self.rule_met


def tally(rule: Rule, eligible: Mapping[str, Mapping], votes: Mapping[str, str]) -> Tally:
    """Count ``votes`` (member code → yes/no/abstain) of ``eligible`` members (code → figures).

    Votes of members that are not eligible are ignored (they were not members, or not in
    good standing, when the vote opened).
    """
    counted = {code: choice for code, choice in votes.items() if code in eligible}
    for code, choice in counted.items():
        if choice not in CHOICES:
            raise RuleError(f"a vote is yes, no or abstain; {code} voted {choice!r}")
    n = len(eligible)
    yes = [c for c, v in counted.items() if v == "yes"]
    no = sum(1 for v in counted.values() if v == "no")
    abstain = sum(1 for v in counted.values() if v == "abstain")
    weights = {c: _weight(rule, c, figures) for c, figures in eligible.items()}
    total = sum(weights.values(), Decimal(0))
    yes_weight = sum((weights[c] for c in yes), Decimal(0))
    quorum_met = n > 0 and Decimal(len(counted)) >= rule.quorum * n
    if n == 0:
        rule_met = False
    elif rule.kind == "simple_majority":
        rule_met = Decimal(len(yes)) > HALF * n
    elif rule.kind == "weighted_majority":
        rule_met = total > 0 and yes_weight > HALF * total
    elif rule.kind == "double_majority":
        rule_met = (
            total > 0
            and Decimal(len(yes)) >= rule.members_threshold * n
            and yes_weight >= rule.weight_threshold * total
            and len(yes) > 0
        )
    else:  # unanimity
        rule_met = no == 0 and len(counted) == n and len(yes) > 0
    return Tally(n, len(counted), len(yes), no, abstain, total, yes_weight, quorum_met, rule_met)


def _weight(rule: Rule, code: str, figures: Mapping) -> Decimal:
    if rule.weight is None:
        return Decimal(1)
    raw = figures.get(rule.weight)
    if raw is None or isinstance(raw, bool):
        raise RuleError(f"{code} has no {rule.weight} figure, which this rule weighs votes by")
    try:
        value = Decimal(str(raw))
    except InvalidOperation as exc:
        raise RuleError(f"{code}'s {rule.weight} is not a number") from exc
    if value < 0:
        raise RuleError(f"{code}'s {rule.weight} is negative")
    return value
