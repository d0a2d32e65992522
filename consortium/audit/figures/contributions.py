"""Contributions, recomputed from their entries by the rules of their appliers in
``contributions``, one method per entry kind:

- ``facility.registered``, ``facility.updated``: ``contributions.facilities`` (who operates
  a facility, and so whose key may report its imports);
- ``compute.imported``, ``compute.attested``: ``contributions.compute`` (the facility's
  key attests, its operator's or the secretariat's reports; an export counts once);
- ``data.contributed``: ``contributions.data``; ``funds.contributed``,
  ``funds.confirmed``, ``funds.rejected``: ``contributions.funds`` (the treasurer, as
  ``contributions.selectors.treasurer_of`` names it, confirms or rejects a pending payment);
- ``contribution.disputed``, ``contribution.resolved``: ``contributions.disputes`` (a
  member bound with the contribution's member by a cost-sharing agreement in force
  disputes, as ``contributions.selectors.bound_together`` says; the secretariat resolves).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation

from consortium.audit.figures import agreements
from consortium.audit.figures.common import (
    DISPUTABLE,
    SECRETARIAT,
    contribution_bucket,
    member_of,
    plain,
    secretariat,
    uid,
)
from consortium.audit.figures.governance import Governance
from consortium.audit.figures.tables import compare, whole_figures
from ledger.audit import Bundle, Result
from ledger.core.keyring import KeyState


class Contributions:
    """Every contribution's state at the export's end, recomputed from the entries by the
    rules the appliers follow: who may record, attest, confirm funds, dispute and
    resolve, and what an entry that breaks a rule leaves unchanged. Compared with
    ``report/contributions.csv`` when the export holds every entry up to its end."""

    kinds = (
        "facility.registered",
        "facility.updated",
        "compute.imported",
        "compute.attested",
        "data.contributed",
        "funds.contributed",
        "funds.confirmed",
        "funds.rejected",
        "contribution.disputed",
        "contribution.resolved",
    )

    def __init__(self, governance: Governance):
        self.governance = governance  # who is a member, whatever made it one
        self.facilities: dict[str, str] = {}  # code -> operator
        self.exports: set[tuple[str, str]] = set()
        self.imports: dict[str, dict] = {}
        self.items: dict[str, dict] = {}
        self.disputes: dict[str, dict] = {}

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        envelope = leaf["entry"]
        handler = getattr(self, "_" + envelope["kind"].replace(".", "_"))
        # A malformed payload could not have been appended: it changes nothing.
        with contextlib.suppress(KeyError, TypeError, ValueError, InvalidOperation, AttributeError):
            handler(index, envelope["payload"], author)

    def _facility_registered(self, index, p, author) -> None:
        f = p["facility"]
        if secretariat(author) and f["code"] not in self.facilities:
            self.facilities[f["code"]] = f["operator"]

    def _facility_updated(self, index, p, author) -> None:
        code = p["facility"]
        if code not in self.facilities or author is None:
            return
        allowed = secretariat(author) or (author.kind, author.owner) == ("facility", code)
        if allowed and "operator_id" in p["changes"]:
            self.facilities[code] = p["changes"]["operator_id"]

    def _compute_imported(self, index, p, author) -> None:
        code = p["facility"]
        if code not in self.facilities or author is None:
            return
        by_facility = (author.kind, author.owner) == ("facility", code)
        by_operator = (author.kind, author.owner) == ("member", self.facilities[code])
        if not (by_facility or by_operator or secretariat(author)):
            return
        imported = uid(p["import"])
        if (code, p["export_sha256"]) in self.exports or imported in self.imports:
            return
        rows = p["contributions"]
        if {c["member"] for c in rows} - set(self.governance.members):
            return
        ids = [uid(c["contribution"]) for c in rows]
        if len(set(ids)) != len(ids) or any(i in self.items for i in ids):
            return
        hours = [Decimal(c["gpu_hours"]) for c in rows]
        attested = index if by_facility else None
        self.exports.add((code, p["export_sha256"]))
        self.imports[imported] = {
            "facility": code,
            "export": p["export_sha256"],
            "attested": attested,
            "ids": ids,
        }
        for cid, c, h in zip(ids, rows, hours, strict=True):
            self.items[cid] = {
                "member": c["member"],
                "kind": "compute",
                "recorded_in": index,
                "state": "counted" if attested else "reported",
                "attested": attested,
                "disputed": False,
                "gpu_hours": h,
                "seconds": int(c["gpu_seconds"]),
                "accelerator": c["accelerator"],
                "tokens": None,
                "amount": None,
                "currency": None,
            }

    def _compute_attested(self, index, p, author) -> None:
        imported = self.imports.get(uid(p["import"]))
        if imported is None or imported["attested"] is not None or author is None:
            return
        if (author.kind, author.owner) != ("facility", imported["facility"]):
            return
        if p["export_sha256"] != imported["export"]:
            return
        imported["attested"] = index
        for i in imported["ids"]:
            self.items[i]["attested"] = index
            if self.items[i]["state"] == "reported":
                self.items[i]["state"] = "counted"

    def _new(self, index, p, author, kind: str, state: str = "counted", **fields) -> None:
        member = member_of(author)
        cid = uid(p["contribution"])
        if member is None or cid in self.items:
            return
        self.items[cid] = {
            "member": member,
            "kind": kind,
            "recorded_in": index,
            "state": state,
            "attested": None,
            "disputed": False,
            "gpu_hours": None,
            "tokens": None,
            "amount": None,
            "currency": None,
            **fields,
        }

    def _data_contributed(self, index, p, author) -> None:
        self._new(index, p, author, "data", tokens=p["dataset"].get("tokens"))

    def _funds_contributed(self, index, p, author) -> None:
        amount = Decimal(p["amount"])
        self._new(
            index,
            p,
            author,
            "funds",
            "pending",
            amount=amount,
            currency=p["currency"],
            micros=int(amount * 1_000_000),
        )

    def _by_treasurer(self, author: KeyState | None, member: str) -> bool:
        treasurer = agreements.treasurer(self.governance, member)
        if treasurer == SECRETARIAT:
            return secretariat(author)
        return author is not None and (author.kind, author.owner) == ("member", treasurer)

    def _settled(self, p, author) -> dict | None:
        item = self.items.get(uid(p["contribution"]))
        if item is None or item["kind"] != "funds" or item["state"] != "pending":
            return None
        return item if self._by_treasurer(author, item["member"]) else None

    def _funds_confirmed(self, index, p, author) -> None:
        item = self._settled(p, author)
        if item is not None:
            amount = Decimal(p["amount"])
            date.fromisoformat(p["date"])  # as the applier reads it
            item.update(
                state="counted",
                amount=amount,
                currency=p["currency"],
                micros=int(amount * 1_000_000),
            )

    def _funds_rejected(self, index, p, author) -> None:
        item = self._settled(p, author)
        if item is not None:
            item["state"] = "rejected"

    def _contribution_disputed(self, index, p, author) -> None:
        cid, did = uid(p["contribution"]), uid(p["dispute"])
        item, member = self.items.get(cid), member_of(author)
        if member is None or item is None:
            return
        if item["state"] not in DISPUTABLE or did in self.disputes or item["disputed"]:
            return
        if not agreements.bound_together(self.governance, member, item["member"]):
            return
        self.disputes[did] = {"contribution": cid, "open": True}
        item["disputed"] = True

    def _contribution_resolved(self, index, p, author) -> None:
        dispute = self.disputes.get(uid(p["dispute"]))
        if dispute is None or not dispute["open"] or not secretariat(author):
            return
        dispute["open"] = False
        item = self.items[dispute["contribution"]]
        item["disputed"] = False
        if p["outcome"] == "upheld":
            item["state"] = "void"

    def table(self, first: int, end: int, member: str | None) -> list[list[str]]:
        """The rows of report/contributions.csv (without its header)."""
        sums: dict[tuple, dict] = defaultdict(
            lambda: {
                "count": 0,
                "counted": 0,
                "held": 0,
                "void": 0,
                "disputed": 0,
                "gpu_hours": Decimal(0),
                "tokens": 0,
                "funds": defaultdict(Decimal),
            }
        )
        for item in self.items.values():
            if not first <= item["recorded_in"] < end or (member and item["member"] != member):
                continue
            s = sums[(item["member"], item["kind"])]
            s["count"] += 1
            s[contribution_bucket(item["state"])] += 1
            s["disputed"] += 1 if item["disputed"] else 0
            s["gpu_hours"] += item["gpu_hours"] or 0
            s["tokens"] += item["tokens"] or 0
            if item["amount"] is not None:
                s["funds"][item["currency"]] += item["amount"]
        return [
            [
                m,
                k,
                str(s["count"]),
                str(s["counted"]),
                str(s["held"]),
                str(s["void"]),
                str(s["disputed"]),
                plain(s["gpu_hours"]),
                str(s["tokens"]),
                "; ".join(f"{c} {plain(a)}" for c, a in sorted(s["funds"].items())),
            ]
            for (m, k), s in sorted(sums.items())
        ]

    def finish(self, bundle: Bundle, result: Result) -> None:
        figures = whole_figures(bundle, result, "contributions")
        if figures is None:
            return
        mine = self.table(0, figures["end"], figures.get("member"))
        if compare(bundle, result, "report/contributions.csv", mine, 2):
            result.checks.append(
                f"contributions per member and kind recomputed from the "
                f"entries ({len(self.items)} contributions): as reported"
            )
