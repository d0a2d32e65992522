"""Verify a treaty audit export offline: the log (``ledger.audit``) and the report's figures.

Needs Python and PyNaCl only: no Django, no database, no network::

    python -m consortium.audit.figures verify <bundle.zip or directory> --vkey '<verifier key>'

Besides everything ``python -m ledger.audit verify`` checks, this recomputes from the
signed entries in the bundle, by the rules the appliers follow, the state the report
rests on, and compares it with the report's CSV files:

- downloads authorised per member (``download.authorized`` entries signed by the
  secretariat's key), with ``report/downloads.csv`` and ``report/figures.json``;
- for an export of everything up to the report's state: every contribution's state
  (``contributions.csv``); members, agreements and their signatures, decisions (every
  one recounted from the votes) and access grants; and each party's cost share and
  balance (``cost_shares.csv``, with ``contributions.costshare``);
- ``report/report.html`` is rendered again from the CSV files and compared byte for byte.

Served files and denied requests come from the access log, which is not on the ledger:
they cannot be recomputed. Checks a bundle does not allow (a selection, a later range)
are listed as SKIP, and the exit status is then 3, not 0.

The other checks of ``ledger.audit`` (``checkpoint``, ``inclusion``, ``consistency``)
are available here too.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
import uuid
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation

from consortium.audit.report_html import cell
from consortium.governance.voting import Rule, RuleError, tally
from contributions import costshare
from ledger.audit import Bundle, BundleError, Result, run
from ledger.core.envelope import parse_time
from ledger.core.keyring import KeyState

SECRETARIAT = "secretariat"
VERIFY_COMMAND = "python -m consortium.audit.figures verify"


def _secretariat(author: KeyState | None) -> bool:
    """Is ``author`` the secretariat's key (what the appliers call ``_by_secretariat``)?"""
    return author is not None and (author.kind, author.owner) == ("service", SECRETARIAT)


def _member_of(author: KeyState | None) -> str | None:
    """The member whose member key ``author`` is, if it is one."""
    return author.owner if author is not None and author.kind == "member" else None


def _uid(value) -> str:
    """An id as the appliers store it (``uuid.UUID``): canonical, lower case."""
    return str(uuid.UUID(value))


class DownloadCounts:
    """Downloads authorised per member, recomputed from the entries."""

    kinds = ("download.authorized",)

    def __init__(self):
        self.counts: Counter[str] = Counter()

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        if not _secretariat(author):
            return  # the applier gives such an entry no effect
        member = leaf["entry"].get("payload", {}).get("member")
        if isinstance(member, str):
            self.counts[member] += 1

    def finish(self, bundle: Bundle, result: Result) -> None:
        name = "report/downloads.csv"
        rows = _rows(bundle, result, name, 1)
        if rows is None:
            return
        if rows.pop(())[:2] != ["member", "authorized"]:
            result.fail(f"{name}: not the downloads table")
            return
        bad = 0
        try:
            reported = {m[0]: int(r[1]) for m, r in rows.items()}
        except ValueError:
            result.fail(f"{name}: a count that is not a number")
            return
        for member in sorted(set(reported) | set(self.counts)):
            if reported.get(member, 0) != self.counts.get(member, 0):
                bad += 1
                result.fail(
                    f"{name}: {member} authorised {reported.get(member, 0)}, the entries "
                    f"say {self.counts.get(member, 0)}"
                )
        figures = json.loads(bundle.read("report/figures.json"))
        stated = {m: v["authorized"] for m, v in figures["downloads"].items()}
        for member in sorted(set(stated) | set(self.counts)):
            if stated.get(member, 0) != self.counts.get(member, 0):
                bad += 1
                result.fail(
                    f"report/figures.json: {member} authorised {stated.get(member, 0)}, "
                    f"the entries say {self.counts.get(member, 0)}"
                )
        if not bad:
            result.checks.append(
                f"downloads authorised per member recomputed from the entries "
                f"({sum(self.counts.values())} in all): as reported"
            )


class ReportTables:
    """``report/report.html`` is exactly the page rendered from the CSV files and the
    description in ``report/figures.json`` (``consortium.audit.report_html``, pure): byte for
    byte, so nothing can be shown that was not checked, nor hidden that was."""

    kinds = ()

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        return None

    def finish(self, bundle: Bundle, result: Result) -> None:
        from consortium.audit import report_html

        name = "report/report.html"
        if not bundle.has(name):
            result.fail(f"{name}: missing")
            return
        meta = json.loads(bundle.read("export.json"))
        report = json.loads(bundle.read("report/figures.json"))["report"]
        described = report["meta"]
        if (
            described.get("export"),
            described.get("origin"),
            described.get("first"),
            described.get("end"),
        ) != (meta.get("export"), meta.get("origin"), meta.get("first"), meta.get("end")):
            result.fail(f"{name}: describes another export or range than export.json")
        listed = [t[0] for t in report["tables"]]
        present = sorted(
            n[len("report/") : -len(".csv")]
            for n in bundle.names()
            if n.startswith("report/") and n.endswith(".csv")
        )
        if sorted(listed) != present or len(set(listed)) != len(listed):
            result.fail(f"{name}: its tables {listed} are not the CSV files {present}")
            return
        tables = []
        for table, title in report["tables"]:
            text = bundle.read(f"report/{table}.csv").decode("utf-8")
            rows = list(csv.reader(io.StringIO(text)))
            if not rows:
                result.fail(f"report/{table}.csv: empty, not even a header")
                return
            tables.append((table, title, rows[0], rows[1:]))
        page = report_html.render(described, tables, VERIFY_COMMAND).encode()
        if page != bundle.read(name):
            result.fail(
                f"{name} is not the page the CSV files and report/figures.json give: "
                f"it shows something they do not say"
            )
            return
        result.checks.append(
            f"{name}: exactly the rendering of the {len(tables)} CSV tables "
            f"(report/report.pdf is printed from it and not compared)"
        )


DISPUTABLE = ("counted", "reported", "pending")


def contribution_bucket(state: str) -> str:
    """The column of ``report/contributions.csv`` a contribution in ``state`` is counted
    in: counted; held (compute reported, funds pending); void (upheld, or rejected)."""
    return {"counted": "counted", "void": "void", "rejected": "void"}.get(state, "held")


def plain(value: Decimal) -> str:
    """A decimal as the report writes it: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


class Contributions:
    """Every contribution's state at the export's end, recomputed from the entries by the
    rules the appliers follow (``contributions/services.py``): who may record, attest,
    confirm funds, dispute and resolve, and what an entry that breaks a rule leaves
    unchanged. Compared with ``report/contributions.csv`` when the export holds every
    entry up to its end."""

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
        if _secretariat(author) and f["code"] not in self.facilities:
            self.facilities[f["code"]] = f["operator"]

    def _facility_updated(self, index, p, author) -> None:
        code = p["facility"]
        if code not in self.facilities or author is None:
            return
        allowed = _secretariat(author) or (author.kind, author.owner) == ("facility", code)
        if allowed and "operator_id" in p["changes"]:
            self.facilities[code] = p["changes"]["operator_id"]

    def _compute_imported(self, index, p, author) -> None:
        code = p["facility"]
        if code not in self.facilities or author is None:
            return
        by_facility = (author.kind, author.owner) == ("facility", code)
        by_operator = (author.kind, author.owner) == ("member", self.facilities[code])
        if not (by_facility or by_operator or _secretariat(author)):
            return
        imported = _uid(p["import"])
        if (code, p["export_sha256"]) in self.exports or imported in self.imports:
            return
        rows = p["contributions"]
        if {c["member"] for c in rows} - set(self.governance.members):
            return
        ids = [_uid(c["contribution"]) for c in rows]
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
        imported = self.imports.get(_uid(p["import"]))
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
        member = _member_of(author)
        cid = _uid(p["contribution"])
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
        treasurer = self.governance.treasurer(member)
        if treasurer == SECRETARIAT:
            return _secretariat(author)
        return author is not None and (author.kind, author.owner) == ("member", treasurer)

    def _settled(self, p, author) -> dict | None:
        item = self.items.get(_uid(p["contribution"]))
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
        cid, did = _uid(p["contribution"]), _uid(p["dispute"])
        item, member = self.items.get(cid), _member_of(author)
        if member is None or item is None:
            return
        if item["state"] not in DISPUTABLE or did in self.disputes or item["disputed"]:
            return
        if not self.governance.bound_together(member, item["member"]):
            return
        self.disputes[did] = {"contribution": cid, "open": True}
        item["disputed"] = True

    def _contribution_resolved(self, index, p, author) -> None:
        dispute = self.disputes.get(_uid(p["dispute"]))
        if dispute is None or not dispute["open"] or not _secretariat(author):
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
        figures = _whole(bundle, result, "contributions")
        if figures is None:
            return
        mine = self.table(0, figures["end"], figures.get("member"))
        if _compare(bundle, result, "report/contributions.csv", mine, 2):
            result.checks.append(
                f"contributions per member and kind recomputed from the "
                f"entries ({len(self.items)} contributions): as reported"
            )


# --- governance, as far as cost shares rest on it ----------------------------------------------

OPEN_STATES = ("open", "signed")
SIGNABLE_STATES = (*OPEN_STATES, "in_force")
APPLIED_BY_KEY_ENTRIES = ("key.revoke",)


def _day(leaf: dict) -> date:
    return date.fromisoformat(leaf["integrated_time"][:10])


class Governance:
    """Members, rules, proposals, access grants and agreements recomputed from the
    entries by the rules the appliers follow (``consortium/governance.py``,
    ``proposals.py``, ``agreements.py``). Decisions are recounted from the votes with the
    consortium's own tally (``consortium.governance.voting``, pure); one part is taken as recorded: a
    rejection whose reason is that the proposal's actions no longer apply."""

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

    def _opener_side(self, author: KeyState | None) -> tuple[str, str] | None:
        if _secretariat(author):
            return ("service", SECRETARIAT)
        if (
            author is not None
            and author.kind == "member"
            and (self.members.get(author.owner, {}).get("status") == "member")
        ):
            return ("member", author.owner)
        return None

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        envelope = leaf["entry"]
        handler = getattr(self, "_" + envelope["kind"].replace(".", "_"), None)
        if handler is None:
            return
        # A malformed payload could not have been appended: it changes nothing.
        with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
            handler(index, leaf, envelope["payload"], author)

    # members and rules

    def _member(self, m: dict, status: str, index: int) -> dict:
        return {
            "name": m["name"],
            "kind": m["kind"],
            "figures": m["figures"],
            "status": status,
            "registered_in": index,
            "changed_in": index,
        }

    def _consortium_founded(self, index, leaf, p, author) -> None:
        if self.rules is None:
            members = {m["code"]: self._member(m, "member", index) for m in p["members"]}
            self.rules = p["rules"]
            self.members.update(members)

    def _member_applied(self, index, leaf, p, author) -> None:
        m = p["member"]
        if _secretariat(author) and m["code"] not in self.members:
            self.members[m["code"]] = self._member(m, "applicant", index)

    # proposals

    def _proposal_opened(self, index, leaf, p, author) -> None:
        pid = _uid(p["proposal"])
        if self._opener_side(author) is None or self.rules is None:
            return
        if p["rule"] not in self.rules["voting"] or pid in self.proposals:
            return
        eligible = {
            c: m["figures"] for c, m in sorted(self.members.items()) if m["status"] == "member"
        }
        self.proposals[pid] = {
            "title": p["title"],
            "actions": p["actions"],
            "deadline": p["deadline"],
            "state": "open",
            "opener": self._opener_side(author),
            "rule": self.rules["voting"][p["rule"]],
            "eligible": eligible,
            "votes": {},
            "opened_in": index,
            "closed_in": None,
            "tally": None,
        }

    def _vote_cast(self, index, leaf, p, author) -> None:
        proposal = self.proposals.get(_uid(p["proposal"]))
        if proposal is None or author is None or author.kind != "member":
            return
        if proposal["state"] != "open" or author.owner not in proposal["eligible"]:
            return
        if parse_time(leaf["integrated_time"]) > parse_time(proposal["deadline"]):
            return
        proposal["votes"][author.owner] = p["choice"]

    def _counts(self, proposal: dict, outcome: str, recorded: dict) -> bool:
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

    def _proposal_withdrawn(self, index, leaf, p, author) -> None:
        proposal = self.proposals.get(_uid(p["proposal"]))
        side = self._opener_side(author)
        if proposal is None or proposal["state"] != "open" or side is None:
            return
        if side[0] == "member" and proposal["opener"] != side:
            return
        proposal["state"], proposal["closed_in"] = "withdrawn", index

    def _proposal_decided(self, index, leaf, p, author) -> None:
        pid = _uid(p["proposal"])
        proposal = self.proposals.get(pid)
        if proposal is None or proposal["state"] != "open" or not _secretariat(author):
            return
        if parse_time(leaf["integrated_time"]) < parse_time(proposal["deadline"]):
            return
        if not self._counts(proposal, p["outcome"], p["tally"]):
            self.ignored.append(f"proposal.decided at index {index}")
            return  # the applier ignores it too: on the record, without effect
        self.recounted += 1
        proposal.update(state=p["outcome"], tally=p["tally"], closed_in=index)
        if p["outcome"] != "accepted":
            return
        for n, action in enumerate(proposal["actions"]):
            if action["type"] not in APPLIED_BY_KEY_ENTRIES:
                self._action(action, index, pid, n)
        if any(a["type"] == "rules.change" for a in proposal["actions"]):
            for other in self.proposals.values():
                if other["state"] == "open":
                    other["state"], other["closed_in"] = "dropped", index

    def _action(self, action: dict, index: int, pid: str, n: int) -> None:
        kind = action["type"]
        if kind == "valuation.adopt":
            t = action["table"]
            self.tables.append(
                {
                    "version": t["version"],
                    "unit": t["unit"],
                    "weights": t["weights"],
                    "unit_price": t.get("unit_price"),
                    "data_price": t.get("data_price"),
                    "adopted_in": index,
                }
            )
        elif kind == "access.grant":
            self.grants[f"{pid}:{n}"] = {
                "member": action["member"],
                "scope": action["scope"],
                "checkpoints": action.get("checkpoints"),
                "until": action.get("until"),
                "reason": action["reason"],
                "granted_in": index,
                "revoked_in": None,
            }
        elif kind == "access.revoke":
            grant = self.grants.get(action["grant"])
            if grant is not None and grant["revoked_in"] is None:
                grant["revoked_in"] = index
        elif kind == "agreement.terminate":
            self._close(_uid(action["agreement"]), "terminated", index, action["reason"])
        elif kind == "member.admit":
            m = action["member"]
            known = self.members.get(m["code"])
            self.members[m["code"]] = {
                **self._member(m, "member", index),
                "registered_in": known["registered_in"] if known else index,
            }
        elif kind == "rules.change":
            self.rules = action["rules"]
        elif kind in ("member.suspend", "member.reinstate", "member.withdraw", "member.figures"):
            member = self.members.get(action["code"])
            if member is None:
                return
            member["changed_in"] = index
            if kind == "member.figures":
                member["figures"] = action.get("figures")
            else:
                member["status"] = {
                    "member.suspend": "suspended",
                    "member.reinstate": "member",
                    "member.withdraw": "withdrawn",
                }[kind]

    # agreements

    def _agreement_proposed(self, index, leaf, p, author) -> None:
        terms = p["terms"]
        if not (_secretariat(author) or _member_of(author) in terms["parties"]):
            return
        required = set(terms.get("required", terms["parties"]))
        self.agreements[_uid(p["agreement"])] = {
            "version": p["version"],
            "kind": p["kind"],
            "title": p["title"],
            "terms": terms,
            "terms_sha256": p["terms_sha256"],
            "document_sha256": p["document"]["sha256"],
            "supersedes": _uid(p["supersedes"]) if p["supersedes"] else None,
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

    def _all_required_signed(self, a: dict) -> bool:
        return all(
            not party["required"] or (party["signed"] is not None and party["withdrawn"] is None)
            for party in a["parties"].values()
        )

    @staticmethod
    def bound(a: dict) -> set[str]:
        return {
            c
            for c, party in a["parties"].items()
            if party["signed"] is not None and party["withdrawn"] is None
        }

    def bound_together(self, member: str, other: str) -> bool:
        """Both bound by one agreement in force that shares cost (who may dispute whose
        contributions: ``contributions.services.bound_together``)."""
        return any(
            a["state"] == "in_force"
            and "cost_sharing" in a["terms"]
            and {member, other} <= self.bound(a)
            for a in self.agreements.values()
        )

    def treasurer(self, member: str) -> str:
        """Who confirms ``member``'s payments (``contributions.services.treasurer_of``)."""
        treaties = [
            a
            for a in self.agreements.values()
            if a["kind"] == "treaty" and a["state"] == "in_force" and member in self.bound(a)
        ]
        latest = max(treaties, key=lambda a: a["in_force_in"], default=None)
        named = (latest["terms"].get("treasurer") if latest else None) or SECRETARIAT
        return SECRETARIAT if named == member else named

    def _agreement_signed(self, index, leaf, p, author) -> None:
        member = _member_of(author)
        a = self.agreements.get(_uid(p["agreement"]))
        if member is None or a is None or a["state"] not in SIGNABLE_STATES:
            return
        if (p["terms_sha256"], p["document_sha256"]) != (a["terms_sha256"], a["document_sha256"]):
            return
        party = a["parties"].get(member)
        if party is None or party["signed"] is not None or party["withdrawn"] is not None:
            return
        party["signed"], party["signed_at"] = index, leaf["integrated_time"]
        if a["state"] == "open" and self._all_required_signed(a):
            a["state"] = "signed"

    def _agreement_in_force(self, index, leaf, p, author) -> None:
        a = self.agreements.get(_uid(p["agreement"]))
        if a is None or not _secretariat(author) or a["state"] != "signed":
            return
        day = _day(leaf)
        effective = a["terms"]["effective"]
        if day < date.fromisoformat(effective["from"]):
            return
        if effective["until"] and day > date.fromisoformat(effective["until"]):
            return
        old = self.agreements.get(a["supersedes"]) if a["supersedes"] else None
        if a["supersedes"] and (
            old is None or old["state"] != "in_force" or not self.bound(old) <= self.bound(a)
        ):
            return
        a["state"], a["in_force_in"] = "in_force", index
        if old is not None and old["state"] == "in_force":
            old.update(
                state="superseded",
                closed_in=index,
                closed_reason=f"superseded by version {a['version']}",
            )

    def _agreement_withdrawn(self, index, leaf, p, author) -> None:
        member = _member_of(author)
        a = self.agreements.get(_uid(p["agreement"]))
        if member is None or a is None or a["state"] not in SIGNABLE_STATES:
            return
        party = a["parties"].get(member)
        if party is None or party["withdrawn"] is not None:
            return
        party["withdrawn"] = index
        if a["state"] == "signed" and not self._all_required_signed(a):
            a["state"] = "open"

    def _close(self, agreement: str, state: str, index: int, reason: str) -> None:
        a = self.agreements.get(agreement)
        if a is not None and a["state"] in SIGNABLE_STATES:
            a.update(state=state, closed_in=index, closed_reason=reason[:300])
        for other in self.agreements.values():
            if other["supersedes"] == agreement and other["state"] in OPEN_STATES:
                other.update(
                    state="terminated",
                    closed_in=index,
                    closed_reason="the version it amends has ended",
                )

    def _agreement_terminated(self, index, leaf, p, author) -> None:
        a = self.agreements.get(_uid(p["agreement"]))
        if _secretariat(author) and a is not None and a["state"] in OPEN_STATES:
            a.update(state="terminated", closed_in=index, closed_reason=p["reason"][:300])

    def _agreement_expired(self, index, leaf, p, author) -> None:
        agreement = _uid(p["agreement"])
        a = self.agreements.get(agreement)
        if a is None or not _secretariat(author):
            return
        until = a["terms"]["effective"]["until"]
        if until and _day(leaf) > date.fromisoformat(until):
            self._close(agreement, "expired", index, "effective period ended")

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
        if _whole(bundle, result, "members, agreements, signatures, decisions and grants") is None:
            return
        mine = self.report_tables()
        keys = {"members": 1, "agreements": 1, "signatures": 3, "decisions": 1, "access_grants": 1}
        if all(
            _compare(bundle, result, f"report/{name}.csv", rows, keys[name])
            for name, rows in mine.items()
        ):
            result.checks.append(
                "members, agreements and who signed them, decisions and access "
                "grants recomputed from the entries: as reported"
            )


def _whole(bundle: Bundle, result: Result, what: str) -> dict | None:
    """``report/figures.json`` if the export holds every entry the report's state rests
    on (from index 0 to that state); otherwise the check of ``what`` is skipped, saying
    why. Figures that contradict ``export.json`` fail."""
    meta = json.loads(bundle.read("export.json"))
    figures = json.loads(bundle.read("report/figures.json"))
    if not isinstance(figures, dict):
        raise ValueError("report/figures.json is not an object")
    scope = meta.get("scope") or {}
    stated = (figures.get("first"), figures.get("end"), figures.get("member"))
    if stated != (meta.get("first"), meta.get("end"), scope.get("member")):
        result.fail(
            f"report/figures.json: first, end and member {stated} are not the "
            f"export's {(meta.get('first'), meta.get('end'), scope.get('member'))}"
        )
        return None
    if meta.get("mode") != "range" or meta.get("first") != 0:
        result.skipped.append(
            f"{what}: not recomputed (the export does not hold every entry from index 0)"
        )
        return None
    if figures.get("as_of") != meta.get("end"):
        result.skipped.append(
            f"{what}: not recomputed (the report's state is as of tree size "
            f"{figures.get('as_of')}, the entries end at {meta.get('end')})"
        )
        return None
    return figures


def _rows(bundle: Bundle, result: Result, name: str, key: int) -> dict[tuple, list[str]] | None:
    """A CSV file's rows by their first ``key`` cells; its header under ``()``. A repeated
    key or a short row fails (a second row must not hide the first)."""
    if not bundle.has(name):
        result.fail(f"{name}: missing")
        return None
    rows = list(csv.reader(io.StringIO(bundle.read(name).decode("utf-8"))))
    if not rows:
        result.fail(f"{name}: empty, not even a header")
        return None
    width = len(rows[0])
    out: dict[tuple, list[str]] = {(): rows[0]}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            result.fail(f"{name} line {number}: {len(row)} cells, the header has {width}")
            return None
        k = tuple(row[:key])
        if k in out:
            result.fail(f"{name} line {number}: {' '.join(k)} appears twice")
            return None
        out[k] = row
    return out


def _compare(bundle: Bundle, result: Result, name: str, mine: list[list[str]], key: int) -> bool:
    """Compare a CSV file with the rows recomputed from the entries, row by row."""
    reported = _rows(bundle, result, name, key)
    if reported is None:
        return False
    header = reported.pop(())
    mine = [[cell(v) for v in r] for r in mine]  # as the server writes the cells
    recomputed = {tuple(r[:key]): r for r in mine}
    bad = 0
    for k in sorted(set(reported) | set(recomputed)):
        if reported.get(k) != recomputed.get(k):
            bad += 1
            result.fail(
                f"{name}: {' '.join(k)} reads {reported.get(k)}, the entries give "
                f"{recomputed.get(k)}",
                name,
            )
    if mine and len(mine[0]) != len(header):
        result.fail(f"{name}: the header has {len(header)} columns, not {len(mine[0])}")
        return False
    return not bad


class CostShares:
    """Each bound party's cost share and balance, for every agreement in force with
    cost sharing, recomputed with ``contributions.costshare`` from the state
    ``Governance`` and ``Contributions`` recomputed; compared with
    ``report/cost_shares.csv``."""

    kinds = ()

    def __init__(self, governance: Governance, contributions: Contributions):
        self.governance, self.contributions = governance, contributions

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        return None

    def rows(self) -> list[list[str]]:
        g = self.governance
        out = []
        for agreement_id, a in sorted(g.agreements.items(), key=lambda kv: kv[1]["proposed_in"]):
            terms = a["terms"]
            if a["state"] != "in_force" or "cost_sharing" not in terms:
                continue
            codes = sorted(g.bound(a))
            notes: list[str] = []
            figures = {c: g.members.get(c, {}).get("figures") or {} for c in codes}
            shares = costshare.shares_of(terms, codes, figures, notes)
            lines = {
                c: costshare.Line(
                    c, g.members.get(c, {}).get("name", ""), shares.get(c, costshare.ZERO)
                )
                for c in codes
            }
            items = [
                i
                for i in self.contributions.items.values()
                if i["member"] in lines and i["state"] in DISPUTABLE
            ]
            used: set = set()
            for lo, hi, table in costshare.windows(terms.get("valuation"), g.tables):
                window = [
                    i
                    for i in items
                    if i["recorded_in"] >= lo and (hi is None or i["recorded_in"] < hi)
                ]
                costshare.value_compute(
                    _group(
                        window,
                        "compute",
                        ("member", "accelerator", "state", "disputed"),
                        seconds=lambda i: i["seconds"],
                    ),
                    table,
                    terms,
                    lines,
                    notes,
                    used,
                )
                data = _group(
                    window,
                    "data",
                    ("member", "state", "disputed"),
                    token_sum=lambda i: i["tokens"] or 0,
                    untokened=lambda i: 1 if i["tokens"] is None else 0,
                )
                costshare.value_data(data, table, terms, lines, notes, used)
            funds = _group(
                items,
                "funds",
                ("member", "currency", "state", "disputed"),
                micros=lambda i: i["micros"],
            )
            costshare.value_funds(funds, terms, lines, notes)
            costshare.settle(terms, lines)
            for ln in lines.values():
                out.append([agreement_id, *costshare.csv_row(ln.as_dict())])
        return out

    def finish(self, bundle: Bundle, result: Result) -> None:
        if _whole(bundle, result, "cost shares") is None:
            return
        mine = [[r[0], r[1], *r[3:]] for r in self.rows()]
        name = "report/cost_shares.csv"
        header = _rows(bundle, result, name, 2)
        if header is None:
            return
        if header[()] != ["agreement", "member", *costshare.CSV_COLUMNS[2:]]:
            result.fail(f"{name}: not the cost-share table")
            return
        if _compare(bundle, result, name, mine, 2):
            result.checks.append(
                f"cost shares and balances of {len(mine)} parties recomputed "
                f"from the entries: as reported"
            )


def _group(items: list[dict], kind: str, by: tuple[str, ...], **sums) -> list[dict]:
    """Rows as the database's GROUP BY gives them: ``by`` fields and the ``sums``."""
    out: dict[tuple, dict] = {}
    for i in items:
        if i["kind"] != kind:
            continue
        key = tuple(i[f] for f in by)
        row = out.setdefault(key, {**dict(zip(by, key, strict=True)), **dict.fromkeys(sums, 0)})
        for name, fn in sums.items():
            row[name] += fn(i)
    return list(out.values())


def extensions() -> list:
    governance = Governance()
    contributions = Contributions(governance)
    return [
        DownloadCounts(),
        contributions,
        governance,
        CostShares(governance, contributions),
        ReportTables(),
    ]


def main(argv: list[str] | None = None, prog: str = "python -m consortium.audit.figures") -> int:
    try:
        return run(
            argv,
            extensions=extensions(),
            prog=prog,
            what=" with its report's figures recomputed from the entries",
        )
    except BundleError as exc:
        print(f"FAIL {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
