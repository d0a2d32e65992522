"""What every part of the figures verifier shares: who signed an entry, ids and days as the
appliers read them, and numbers as the report writes them."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from ledger.core.keyring import KeyState

SECRETARIAT = "secretariat"
VERIFY_COMMAND = "python -m consortium.audit.figures verify"
# The states in which a contribution may be disputed, and in which it counts towards a
# cost share (counted, or held: compute reported, funds pending).
DISPUTABLE = ("counted", "reported", "pending")


def secretariat(author: KeyState | None) -> bool:
    """Is ``author`` the secretariat's key (what the appliers call ``by_secretariat``)?"""
    return author is not None and (author.kind, author.owner) == ("service", SECRETARIAT)


def member_of(author: KeyState | None) -> str | None:
    """The member whose member key ``author`` is, if it is one."""
    return author.owner if author is not None and author.kind == "member" else None


def uid(value) -> str:
    """An id as the appliers store it (``uuid.UUID``): canonical, lower case."""
    return str(uuid.UUID(value))


def day(leaf: dict) -> date:
    """The day (UTC) an entry was integrated."""
    return date.fromisoformat(leaf["integrated_time"][:10])


def contribution_bucket(state: str) -> str:
    """The column of ``report/contributions.csv`` a contribution in ``state`` is counted
    in: counted; held (compute reported, funds pending); void (upheld, or rejected)."""
    return {"counted": "counted", "void": "void", "rejected": "void"}.get(state, "held")


def plain(value: Decimal) -> str:
    """A decimal as the report writes it: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"
