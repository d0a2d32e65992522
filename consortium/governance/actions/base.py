"""The registry of proposal action types: what every type says, and the checks that run
them one after the other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import ClassVar

from consortium.governance.changes import GovernanceError
from consortium.governance.effects import EFFECTS, Effect
from consortium.governance.models import Member, Proposal
from consortium.governance.rules import current_rules
from consortium.governance.validators import is_reason


@dataclass
class Simulation:
    """The members (code: their record and status) and the rules as the actions checked
    so far would leave them, and the day the actions are checked on."""

    members: dict[str, dict]
    rules: dict
    today: date

    def live_figures(self) -> dict[str, dict]:
        """The figures of the members that have not withdrawn."""
        return {
            c: m["figures"]
            for c, m in self.members.items()
            if m["status"] != Member.Status.WITHDRAWN
        }


class Action:
    """One type of proposal action."""

    type: ClassVar[str]

    # How the decision applies it (once per proposal or per value, through key entries,
    # dropping other open proposals): plain data in ``consortium.governance.effects``,
    # which the offline verifier reads too.
    @property
    def effect(self) -> Effect:
        return EFFECTS[self.type]

    @property
    def once_per(self) -> str | None:
        return self.effect.once_per

    @property
    def applied_by_key_entries(self) -> bool:
        return self.effect.applied_by_key_entries

    @property
    def drops_open_proposals(self) -> bool:
        return self.effect.drops_open_proposals

    def check(self, action: dict, state: Simulation) -> None:
        """Refuse (``GovernanceError``) an action that is malformed or does not apply to
        ``state``; otherwise update ``state`` as the action would."""
        raise NotImplementedError

    def apply(self, action: dict, *, proposal: Proposal, index: int, n: int) -> None:
        """Write the ``n``-th action of ``proposal``, accepted by the entry at ``index``."""
        raise NotImplementedError

    def sign_with_decision(self, action: dict, proposal: Proposal) -> None:
        """Append the entries the decision's service signs with it (none, mostly)."""

    def describe(self, action: dict) -> str:
        """The action in words."""
        raise NotImplementedError


ACTIONS: dict[str, Action] = {}


def registered(cls: type[Action]) -> type[Action]:
    if cls.type not in EFFECTS:
        raise RuntimeError(f"{cls.type}: say in consortium.governance.effects what it does")
    ACTIONS[cls.type] = cls()
    return cls


def action_type(action) -> Action:
    """The registered type of ``action``."""
    if not isinstance(action, dict) or not isinstance(action.get("type"), str):
        raise GovernanceError("an action is an object with a type")
    kind = ACTIONS.get(action["type"])
    if kind is None:
        raise GovernanceError(f"unknown action type {action['type']!r}")
    return kind


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
    state = Simulation(members, current_rules(), today or datetime.now(UTC).date())
    seen = set()
    try:
        for action in actions:
            kind = action_type(action)
            kind.check(action, state)
            if kind.once_per is not None:
                field = kind.once_per
                mark = (kind.type, None if field == "proposal" else action[field])
                if mark in seen:
                    raise GovernanceError(f"{kind.type} twice for the same {field}")
                seen.add(mark)
    except (TypeError, AttributeError) as exc:
        raise GovernanceError(f"malformed action: {exc}") from exc


def describe(action) -> str:
    """An action in words (an action of no known type, as it is written)."""
    kind = None
    if isinstance(action, dict) and isinstance(action.get("type"), str):
        kind = ACTIONS.get(action["type"])
    if kind is None:
        return repr(action)
    try:
        return kind.describe(action)
    except (KeyError, TypeError, AttributeError, ValueError):
        return repr(action)


def exact_fields(action: dict, *fields: str, optional: tuple[str, ...] = ()) -> None:
    allowed = {"type", *fields, *optional}
    if not {"type", *fields} <= set(action) <= allowed:
        listed = ", ".join([*fields, *(f"{o}?" for o in optional)])
        raise GovernanceError(f"{action['type']} is {{type, {listed}}}")


def require_reason(action: dict) -> None:
    if not is_reason(action["reason"]):
        raise GovernanceError(f"{action['type']}: give a reason of at most 300 characters")


def figures_in_words(figures: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in figures.items()) or "none"
