"""The consortium's rules: its named voting rules and the default one, adopted at
founding and changed only by an accepted proposal (``rules.change``)."""

from __future__ import annotations

import re

from consortium.governance.changes import GovernanceError
from consortium.governance.models import Consortium
from consortium.governance.voting import Rule, RuleError

RULE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# Until the members adopt others: a simple majority of members, half of them voting.
DEFAULT_RULES = {
    "voting": {"default": {"kind": "simple_majority", "quorum": "0.5"}},
    "default": "default",
}


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


def current_rules() -> dict:
    """The rules as they stand."""
    consortium = Consortium.objects.first()
    if consortium is None:
        raise GovernanceError("the consortium is not founded yet", 409)
    return consortium.rules
