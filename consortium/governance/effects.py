"""What each type of proposal action does once its proposal is accepted, as plain data.

Pure Python (the standard library only): the ``proposal.decided`` applier
(``consortium.governance.actions``, which writes these rows to the projections) and the
offline figures verifier (``consortium.audit.figures``, which keeps them in dictionaries)
apply an accepted proposal by these same rules, so the two cannot drift apart. Checking
an action (its shape, and whether it applies) and describing it in words stay with the
registry in ``consortium.governance.actions``: they read the database.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Effect:
    """How the decision applies an action type."""

    # A type a proposal may carry only once: "proposal" (once at all), or the field whose
    # value it may name only once.
    once_per: str | None = None
    # Its effect is a key registry change: the key entries the decision's service appends
    # in the same transaction make it, through the registry's own projection; the
    # decision's applier (and the verifier) has nothing to write for it.
    applied_by_key_entries: bool = False
    # Accepting it drops every other open proposal: they are not decided under rules they
    # were not opened under.
    drops_open_proposals: bool = False


EFFECTS: dict[str, Effect] = {
    "member.admit": Effect(),
    "member.suspend": Effect(),
    "member.reinstate": Effect(),
    "member.withdraw": Effect(),
    "member.figures": Effect(),
    "rules.change": Effect(drops_open_proposals=True),
    "valuation.adopt": Effect(once_per="proposal"),
    "access.grant": Effect(),
    "access.revoke": Effect(once_per="grant"),
    "checkpoint.release": Effect(once_per="checkpoint"),
    "agreement.terminate": Effect(once_per="agreement"),
    "key.revoke": Effect(once_per="fingerprint", applied_by_key_entries=True),
    "witness.policy": Effect(once_per="proposal"),
}

# A change of standing: the standing the member must have (none: any), and the one it gets.
STANDING_NEEDED = {"member.suspend": "member", "member.reinstate": "suspended"}
STANDING_AFTER = {
    "member.suspend": "suspended",
    "member.reinstate": "member",
    "member.withdraw": "withdrawn",
}


def admitted(action: dict, index: int) -> dict:
    """What ``member.admit`` writes of the member (its code aside): a member from then on,
    changed at ``index`` (and registered there, if it was not an applicant before)."""
    m = action["member"]
    return {
        "kind": m["kind"],
        "name": m["name"],
        "country": m["country"],
        "figures": m["figures"],
        "status": "member",
        "changed_in": index,
    }


def valuation_table(action: dict, index: int) -> dict:
    """The valuation table ``valuation.adopt`` adopts at ``index``."""
    t = action["table"]
    return {
        "version": t["version"],
        "unit": t["unit"],
        "weights": t["weights"],
        "unit_price": t.get("unit_price"),
        "data_price": t.get("data_price"),
        "adopted_in": index,
    }


def grant_id(proposal: str, n: int) -> str:
    """An access grant is known by its proposal and its place among the actions."""
    return f"{proposal}:{n}"


def access_grant(action: dict, index: int) -> dict:
    """The grant ``access.grant`` makes at ``index`` (standing until revoked)."""
    return {
        "member": action["member"],
        "scope": action["scope"],
        "checkpoints": action.get("checkpoints"),
        "until": action.get("until"),
        "reason": action["reason"],
        "granted_in": index,
    }
