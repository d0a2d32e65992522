"""Members and the consortium's rules, recomputed from ``consortium.founded`` and
``member.applied`` by the rules of their appliers (``consortium.governance.members``):
the founding entry counts once; the secretariat records an application, once per code.
What changes a member afterwards is an accepted proposal's action (``proposals``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from consortium.audit.figures.common import SECRETARIAT, secretariat
from ledger.core.keyring import KeyState

if TYPE_CHECKING:
    from consortium.audit.figures.governance import Governance


def record(m: dict, status: str, index: int) -> dict:
    """A member as the projection keeps it, from a member record in a payload."""
    return {
        "name": m["name"],
        "kind": m["kind"],
        "figures": m["figures"],
        "status": status,
        "registered_in": index,
        "changed_in": index,
    }


def opener_side(g: Governance, author: KeyState | None) -> tuple[str, str] | None:
    """Who may open or withdraw a proposal: the secretariat, or a member in standing."""
    if secretariat(author):
        return ("service", SECRETARIAT)
    if (
        author is not None
        and author.kind == "member"
        and (g.members.get(author.owner, {}).get("status") == "member")
    ):
        return ("member", author.owner)
    return None


def founded(g: Governance, index: int, leaf: dict, p: dict, author: KeyState | None) -> None:
    if g.rules is None:
        members = {m["code"]: record(m, "member", index) for m in p["members"]}
        g.rules = p["rules"]
        g.members.update(members)


def applied(g: Governance, index: int, leaf: dict, p: dict, author: KeyState | None) -> None:
    m = p["member"]
    if secretariat(author) and m["code"] not in g.members:
        g.members[m["code"]] = record(m, "applicant", index)
