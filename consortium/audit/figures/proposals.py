"""Proposals and votes, recomputed from ``proposal.opened``, ``vote.cast``,
``proposal.withdrawn`` and ``proposal.decided`` by the rules of their appliers
(``consortium.governance.proposals``): who may open and withdraw, who may vote and until
when, and what an accepted decision's actions change.

Every decision is recounted from the votes with the consortium's own tally
(``consortium.governance.voting``, pure); a decision its votes do not give is without
effect, as the applier leaves it. One part is taken as recorded: a rejection whose reason
is that the proposal's actions no longer apply (that check rests on the whole state,
which is not recomputed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from consortium.audit.figures import agreements, members
from consortium.audit.figures.common import secretariat, uid
from consortium.governance.effects import (
    EFFECTS,
    STANDING_AFTER,
    access_grant,
    admitted,
    grant_id,
    valuation_table,
)
from consortium.governance.voting import Rule, RuleError, tally
from ledger.core.envelope import parse_time
from ledger.core.keyring import KeyState

if TYPE_CHECKING:
    from consortium.audit.figures.governance import Governance


def opened(g: Governance, index: int, leaf: dict, p: dict, author: KeyState | None) -> None:
    pid = uid(p["proposal"])
    if members.opener_side(g, author) is None or g.rules is None:
        return
    if p["rule"] not in g.rules["voting"] or pid in g.proposals:
        return
    eligible = {c: m["figures"] for c, m in sorted(g.members.items()) if m["status"] == "member"}
    g.proposals[pid] = {
        "title": p["title"],
        "actions": p["actions"],
        "deadline": p["deadline"],
        "state": "open",
        "opener": members.opener_side(g, author),
        "rule": g.rules["voting"][p["rule"]],
        "eligible": eligible,
        "votes": {},
        "opened_in": index,
        "closed_in": None,
        "tally": None,
    }


def vote_cast(g: Governance, index: int, leaf: dict, p: dict, author: KeyState | None) -> None:
    proposal = g.proposals.get(uid(p["proposal"]))
    if proposal is None or author is None or author.kind != "member":
        return
    if proposal["state"] != "open" or author.owner not in proposal["eligible"]:
        return
    if parse_time(leaf["integrated_time"]) > parse_time(proposal["deadline"]):
        return
    proposal["votes"][author.owner] = p["choice"]


def withdrawn(g: Governance, index: int, leaf: dict, p: dict, author: KeyState | None) -> None:
    proposal = g.proposals.get(uid(p["proposal"]))
    side = members.opener_side(g, author)
    if proposal is None or proposal["state"] != "open" or side is None:
        return
    if side[0] == "member" and proposal["opener"] != side:
        return
    proposal["state"], proposal["closed_in"] = "withdrawn", index


def decided(g: Governance, index: int, leaf: dict, p: dict, author: KeyState | None) -> None:
    pid = uid(p["proposal"])
    proposal = g.proposals.get(pid)
    if proposal is None or proposal["state"] != "open" or not secretariat(author):
        return
    if parse_time(leaf["integrated_time"]) < parse_time(proposal["deadline"]):
        return
    if not counts(proposal, p["outcome"], p["tally"]):
        g.ignored.append(f"proposal.decided at index {index}")
        return  # the applier ignores it too: on the record, without effect
    g.recounted += 1
    proposal.update(state=p["outcome"], tally=p["tally"], closed_in=index)
    if p["outcome"] != "accepted":
        return
    # Which actions the decision applies, and which drop the other open proposals: the
    # applier's own table (consortium.governance.effects).
    effects = [EFFECTS.get(a["type"]) for a in proposal["actions"]]
    for n, (action, effect) in enumerate(zip(proposal["actions"], effects, strict=True)):
        if effect is not None and not effect.applied_by_key_entries:
            apply_action(g, action, index, pid, n)
    if any(effect is not None and effect.drops_open_proposals for effect in effects):
        for other in g.proposals.values():
            if other["state"] == "open":
                other["state"], other["closed_in"] = "dropped", index


def counts(proposal: dict, outcome: str, recorded: dict) -> bool:
    """Do the votes give the recorded outcome and figures? An accepted decision must
    have the votes; a rejection whose reason is that its actions no longer apply is
    taken as recorded (that check rests on the whole state, which is not recomputed)."""
    try:
        t = tally(Rule.parse(proposal["rule"]), proposal["eligible"], proposal["votes"])
    except RuleError:
        return outcome == "rejected"
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
    }
    if any(recorded.get(k) != v for k, v in figures.items()):
        return False
    if t.accepted:
        return outcome == "accepted" or (
            outcome == "rejected"
            and str(recorded.get("reason", "")).startswith("its actions no longer apply")
        )
    return outcome == ("expired" if not t.quorum_met else "rejected")


# --- what an accepted decision's actions change, one function per action type -----------------


def apply_action(g: Governance, action: dict, index: int, pid: str, n: int) -> None:
    """Apply action ``n`` of accepted proposal ``pid`` (types the figures do not rest on,
    such as seats or keys, change nothing here)."""
    change = ACTIONS.get(action["type"])
    if change is not None:
        change(g, action, index, grant_id(pid, n))


def _valuation_adopt(g: Governance, action: dict, index: int, ref: str) -> None:
    g.tables.append(valuation_table(action, index))


def _access_grant(g: Governance, action: dict, index: int, ref: str) -> None:
    g.grants[ref] = {**access_grant(action, index), "revoked_in": None}


def _access_revoke(g: Governance, action: dict, index: int, ref: str) -> None:
    grant = g.grants.get(action["grant"])
    if grant is not None and grant["revoked_in"] is None:
        grant["revoked_in"] = index


def _agreement_terminate(g: Governance, action: dict, index: int, ref: str) -> None:
    agreements.close(g, uid(action["agreement"]), "terminated", index, action["reason"])


def _member_admit(g: Governance, action: dict, index: int, ref: str) -> None:
    code = action["member"]["code"]
    known = g.members.get(code)
    g.members[code] = {
        **admitted(action, index),
        "registered_in": known["registered_in"] if known else index,
    }


def _rules_change(g: Governance, action: dict, index: int, ref: str) -> None:
    g.rules = action["rules"]


def _member_change(g: Governance, action: dict, index: int, ref: str) -> None:
    member = g.members.get(action["code"])
    if member is None:
        return
    member["changed_in"] = index
    kind = action["type"]
    if kind == "member.figures":
        member["figures"] = action.get("figures")
    else:
        member["status"] = STANDING_AFTER[kind]


ACTIONS = {
    "valuation.adopt": _valuation_adopt,
    "access.grant": _access_grant,
    "access.revoke": _access_revoke,
    "agreement.terminate": _agreement_terminate,
    "member.admit": _member_admit,
    "rules.change": _rules_change,
    "member.suspend": _member_change,
    "member.reinstate": _member_change,
    "member.withdraw": _member_change,
    "member.figures": _member_change,
}
