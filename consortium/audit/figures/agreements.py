"""Agreements and who is bound by them, recomputed from the ``agreement.*`` entries by the
rules of their appliers (``consortium.governance.agreements``): a party signs or withdraws
the text proposed; the secretariat brings a fully signed agreement into force within its
effective period (an amendment only when it binds everyone the version it supersedes
binds), terminates it or records its expiry; an ended version ends the amendments of it
still open. Also the reads the other parts need: who is bound, and who is a member's
treasurer (``contributions.selectors.bound_together`` and ``treasurer_of``)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from consortium.audit.figures.common import SECRETARIAT, day, member_of, secretariat, uid
from ledger.core.keyring import KeyState

if TYPE_CHECKING:
    from consortium.audit.figures.governance import Governance

OPEN_STATES = ("open", "signed")
SIGNABLE_STATES = (*OPEN_STATES, "in_force")


# --- reads --------------------------------------------------------------------------------------


def bound(a: dict) -> set[str]:
    """The parties bound by agreement ``a``: signed, not withdrawn."""
    return {
        c
        for c, party in a["parties"].items()
        if party["signed"] is not None and party["withdrawn"] is None
    }


def all_required_signed(a: dict) -> bool:
    return all(
        not party["required"] or (party["signed"] is not None and party["withdrawn"] is None)
        for party in a["parties"].values()
    )


def bound_together(g: Governance, member: str, other: str) -> bool:
    """Both bound by one agreement in force that shares cost (who may dispute whose
    contributions)."""
    return any(
        a["state"] == "in_force" and "cost_sharing" in a["terms"] and {member, other} <= bound(a)
        for a in g.agreements.values()
    )


def treasurer(g: Governance, member: str) -> str:
    """Who confirms ``member``'s payments: the treasurer the latest treaty in force that
    binds it names (the secretariat by default, and for the treasurer's own payments)."""
    treaties = [
        a
        for a in g.agreements.values()
        if a["kind"] == "treaty" and a["state"] == "in_force" and member in bound(a)
    ]
    latest = max(treaties, key=lambda a: a["in_force_in"], default=None)
    named = (latest["terms"].get("treasurer") if latest else None) or SECRETARIAT
    return SECRETARIAT if named == member else named


# --- the entries --------------------------------------------------------------------------------


def proposed(g: Governance, index: int, leaf: dict, p: dict, author: KeyState | None) -> None:
    terms = p["terms"]
    if not (secretariat(author) or member_of(author) in terms["parties"]):
        return
    required = set(terms.get("required", terms["parties"]))
    g.agreements[uid(p["agreement"])] = {
        "version": p["version"],
        "kind": p["kind"],
        "title": p["title"],
        "terms": terms,
        "terms_sha256": p["terms_sha256"],
        "document_sha256": p["document"]["sha256"],
        "supersedes": uid(p["supersedes"]) if p["supersedes"] else None,
        "state": "open",
        "proposed_in": index,
        "in_force_in": None,
        "closed_in": None,
        "closed_reason": "",
        "parties": {
            c: {"required": c in required, "signed": None, "signed_at": "", "withdrawn": None}
            for c in terms["parties"]
        },
    }


def signed(g: Governance, index: int, leaf: dict, p: dict, author: KeyState | None) -> None:
    member = member_of(author)
    a = g.agreements.get(uid(p["agreement"]))
    if member is None or a is None or a["state"] not in SIGNABLE_STATES:
        return
    if (p["terms_sha256"], p["document_sha256"]) != (a["terms_sha256"], a["document_sha256"]):
        return
    party = a["parties"].get(member)
    if party is None or party["signed"] is not None or party["withdrawn"] is not None:
        return
    party["signed"], party["signed_at"] = index, leaf["integrated_time"]
    if a["state"] == "open" and all_required_signed(a):
        a["state"] = "signed"


def in_force(g: Governance, index: int, leaf: dict, p: dict, author: KeyState | None) -> None:
    a = g.agreements.get(uid(p["agreement"]))
    if a is None or not secretariat(author) or a["state"] != "signed":
        return
    today = day(leaf)
    effective = a["terms"]["effective"]
    if today < date.fromisoformat(effective["from"]):
        return
    if effective["until"] and today > date.fromisoformat(effective["until"]):
        return
    old = g.agreements.get(a["supersedes"]) if a["supersedes"] else None
    if a["supersedes"] and (
        old is None or old["state"] != "in_force" or not bound(old) <= bound(a)
    ):
        return
    a["state"], a["in_force_in"] = "in_force", index
    if old is not None and old["state"] == "in_force":
        old.update(
            state="superseded",
            closed_in=index,
            closed_reason=f"superseded by version {a['version']}",
        )


def withdrawn(g: Governance, index: int, leaf: dict, p: dict, author: KeyState | None) -> None:
    member = member_of(author)
    a = g.agreements.get(uid(p["agreement"]))
    if member is None or a is None or a["state"] not in SIGNABLE_STATES:
        return
    party = a["parties"].get(member)
    if party is None or party["withdrawn"] is not None:
        return
    party["withdrawn"] = index
    if a["state"] == "signed" and not all_required_signed(a):
        a["state"] = "open"


def close(g: Governance, agreement: str, state: str, index: int, reason: str) -> None:
    """End an agreement (terminated by a decision, or expired), and the amendments of it
    still open."""
    a = g.agreements.get(agreement)
    if a is not None and a["state"] in SIGNABLE_STATES:
        a.update(state=state, closed_in=index, closed_reason=reason[:300])
    for other in g.agreements.values():
        if other["supersedes"] == agreement and other["state"] in OPEN_STATES:
            other.update(
                state="terminated",
                closed_in=index,
                closed_reason="the version it amends has ended",
            )


def terminated(g: Governance, index: int, leaf: dict, p: dict, author: KeyState | None) -> None:
    a = g.agreements.get(uid(p["agreement"]))
    if secretariat(author) and a is not None and a["state"] in OPEN_STATES:
        a.update(state="terminated", closed_in=index, closed_reason=p["reason"][:300])


def expired(g: Governance, index: int, leaf: dict, p: dict, author: KeyState | None) -> None:
    agreement = uid(p["agreement"])
    a = g.agreements.get(agreement)
    if a is None or not secretariat(author):
        return
    until = a["terms"]["effective"]["until"]
    if until and day(leaf) > date.fromisoformat(until):
        close(g, agreement, "expired", index, "effective period ended")
