"""Governance as far as the report rests on it: members, the consortium's rules,
proposals and their votes, valuation tables, access grants and agreements, recomputed from
the entries by the rules their appliers follow. Each entry kind is handled by one function
(``RULES``), in the part that mirrors its applier: ``members``, ``proposals``
(with the accepted actions), ``agreements``. The state they build is held here, and
compared with the report's members, agreements, signatures, decisions and access grants."""

from __future__ import annotations

import contextlib
import json

from consortium.audit.figures import agreements, members, proposals
from consortium.audit.figures.tables import compare, whole_figures
from ledger.audit import Bundle, Result
from ledger.core.keyring import KeyState

RULES = {
    "consortium.founded": members.founded,
    "member.applied": members.applied,
    "proposal.opened": proposals.opened,
    "vote.cast": proposals.vote_cast,
    "proposal.withdrawn": proposals.withdrawn,
    "proposal.decided": proposals.decided,
    "agreement.proposed": agreements.proposed,
    "agreement.signed": agreements.signed,
    "agreement.in_force": agreements.in_force,
    "agreement.withdrawn": agreements.withdrawn,
    "agreement.terminated": agreements.terminated,
    "agreement.expired": agreements.expired,
}


class Governance:
    """The governance state recomputed from the entries (see the module's description)."""

    kinds = ("consortium.founded", "member.applied", "proposal.", "vote.cast", "agreement.")

    def __init__(self):
        self.rules: dict | None = None
        self.members: dict[str, dict] = {}
        self.proposals: dict[str, dict] = {}
        self.agreements: dict[str, dict] = {}
        self.tables: list[dict] = []
        self.grants: dict[str, dict] = {}
        self.recounted = 0
        self.ignored: list[str] = []

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        envelope = leaf["entry"]
        rule = RULES.get(envelope["kind"])
        if rule is None:
            return
        # A malformed payload could not have been appended: it changes nothing.
        with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
            rule(self, index, leaf, envelope["payload"], author)

    # the report's tables, as the entries give them

    def report_tables(self) -> dict[str, list[list[str]]]:
        def row(*values) -> list[str]:
            return ["" if v is None else str(v) for v in values]

        agreements = sorted(self.agreements.items(), key=lambda kv: kv[1]["proposed_in"])
        decided = sorted(
            ((pid, p) for pid, p in self.proposals.items() if p["state"] != "open"),
            key=lambda kv: (kv[1]["closed_in"], kv[1]["opened_in"]),
        )
        return {
            "members": [
                row(code, m["name"], m["kind"], m["status"], m["registered_in"], m["changed_in"])
                for code, m in sorted(self.members.items())
            ],
            "agreements": [
                row(
                    aid,
                    a["version"],
                    a["kind"],
                    a["title"],
                    a["state"],
                    a["proposed_in"],
                    a["in_force_in"],
                    a["closed_in"],
                    a["closed_reason"],
                )
                for aid, a in agreements
            ],
            "signatures": [
                row(
                    aid,
                    a["title"],
                    code,
                    "yes" if party["required"] else "no",
                    party["signed"],
                    party["signed_at"],
                    party["withdrawn"],
                )
                for aid, a in agreements
                for code, party in sorted(a["parties"].items())
            ],
            "decisions": [
                row(
                    pid,
                    p["title"],
                    p["state"],
                    p["opened_in"],
                    p["closed_in"],
                    json.dumps(p["tally"], sort_keys=True, separators=(",", ":"))
                    if p["tally"]
                    else "",
                )
                for pid, p in decided
            ],
            "access_grants": [
                row(
                    gid,
                    g["member"],
                    g["scope"],
                    " ".join(g["checkpoints"] or []) or "all",
                    g["until"],
                    g["reason"],
                    g["granted_in"],
                    g["revoked_in"],
                )
                for gid, g in sorted(
                    self.grants.items(), key=lambda kv: (kv[1]["granted_in"], kv[0])
                )
            ],
        }

    def finish(self, bundle: Bundle, result: Result) -> None:
        if self.recounted or self.ignored:
            result.checks.append(
                f"{self.recounted} decisions recounted from the votes"
                + (
                    f"; without effect, as their votes do not give them: {', '.join(self.ignored)}"
                    if self.ignored
                    else ""
                )
            )
        if (
            whole_figures(bundle, result, "members, agreements, signatures, decisions and grants")
            is None
        ):
            return
        mine = self.report_tables()
        keys = {"members": 1, "agreements": 1, "signatures": 3, "decisions": 1, "access_grants": 1}
        if all(
            compare(bundle, result, f"report/{name}.csv", rows, keys[name])
            for name, rows in mine.items()
        ):
            result.checks.append(
                "members, agreements and who signed them, decisions and access "
                "grants recomputed from the entries: as reported"
            )
