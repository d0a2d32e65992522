"""Verify a treaty audit export offline: the log (``ledger.audit``) and the report's figures.

Needs Python and PyNaCl only: no Django, no database, no network::

    python -m contributions.audit verify <bundle.zip or directory> --vkey '<verifier key>'

Besides everything ``python -m ledger.audit verify`` checks, this recomputes from the
signed entries in the bundle, and compares with ``report/downloads.csv`` and
``report/figures.json``, the number of downloads authorised per member (each
``download.authorized`` entry signed by the secretariat's key counts once), and checks
that every table of ``report/report.html`` is the CSV file of the same name, cell for cell.
Served files and denied requests come from the access log, which is not on the ledger:
they are compared between the HTML and the CSV, and cannot be recomputed.

The other checks of ``ledger.audit`` (``checkpoint``, ``inclusion``, ``consistency``)
are available here too.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser

from consortium.voting import Rule, RuleError, tally
from contributions import costshare
from ledger.audit import Bundle, BundleError, Result, run
from ledger.core.envelope import parse_time
from ledger.core.keyring import KeyState

SECRETARIAT = "secretariat"


class _Tables(HTMLParser):
    """The tables of the report: {section id: [[cell, ...], ...]} (header row first)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self._section = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "h2":
            self._section = dict(attrs).get("id")
        elif tag == "table" and self._section:
            self.tables[self._section] = []
        elif tag == "tr" and self._section in self.tables:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._section].append(self._row)
            self._row = None
        elif tag == "table":
            self._section = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _csv(bundle: Bundle, name: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(bundle.read(name).decode("utf-8"))))


class DownloadCounts:
    """Downloads authorised per member, recomputed from the entries."""

    kinds = ("download.authorized",)

    def __init__(self):
        self.counts: Counter[str] = Counter()

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        if author is None or (author.kind, author.owner) != ("service", SECRETARIAT):
            return  # the applier gives such an entry no effect
        member = leaf["entry"].get("payload", {}).get("member")
        if isinstance(member, str):
            self.counts[member] += 1

    def finish(self, bundle: Bundle, result: Result) -> None:
        name = "report/downloads.csv"
        if not bundle.has(name):
            result.fail(f"{name}: missing")
            return
        rows = _csv(bundle, name)
        if not rows or rows[0][:2] != ["member", "authorized"]:
            result.fail(f"{name}: not the downloads table")
            return
        reported: dict[str, int] = {}
        for number, row in enumerate(rows[1:], start=2):
            try:
                reported[row[0]] = int(row[1])
            except (IndexError, ValueError):
                result.fail(f"{name} line {number}: not a member and a count")
        bad = 0
        for member in sorted(set(reported) | set(self.counts)):
            if reported.get(member, 0) != self.counts.get(member, 0):
                bad += 1
                result.fail(f"{name}: {member} authorised {reported.get(member, 0)}, the entries "
                            f"say {self.counts.get(member, 0)}")  # fmt: skip
        try:
            figures = json.loads(bundle.read("report/figures.json"))
            stated = {m: v["authorized"] for m, v in figures["downloads"].items()}
        except (KeyError, FileNotFoundError, ValueError, TypeError, AttributeError):
            result.fail("report/figures.json: missing or not the report's figures")
            return
        for member in sorted(set(stated) | set(self.counts)):
            if stated.get(member, 0) != self.counts.get(member, 0):
                bad += 1
                result.fail(f"report/figures.json: {member} authorised {stated.get(member, 0)}, "
                            f"the entries say {self.counts.get(member, 0)}")  # fmt: skip
        if not bad:
            result.checks.append(f"downloads authorised per member recomputed from the entries "
                                 f"({sum(self.counts.values())} in all): as reported")  # fmt: skip


class ReportTables:
    """Every table of the HTML report is the CSV file of the same name."""

    kinds = ()

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        return None

    def finish(self, bundle: Bundle, result: Result) -> None:
        if not bundle.has("report/report.html"):
            result.fail("report/report.html: missing")
            return
        parser = _Tables()
        parser.feed(bundle.read("report/report.html").decode("utf-8"))
        names = {n[len("report/") : -len(".csv")] for n in bundle.names()
                 if n.startswith("report/") and n.endswith(".csv")}  # fmt: skip
        bad = 0
        for name in sorted(names | set(parser.tables)):
            if name not in names:
                bad += 1
                result.fail(f"report/report.html: table {name} has no CSV file")
                continue
            rows = _csv(bundle, f"report/{name}.csv")
            html = parser.tables.get(name)
            if html is None and len(rows) > 1:
                bad += 1
                result.fail(f"report/{name}.csv: not in report/report.html")
                continue
            html = html or rows[:1]
            if len(html) != len(rows):
                bad += 1
                result.fail(f"report/{name}.csv: {len(rows) - 1} rows, the report shows "
                            f"{len(html) - 1}")  # fmt: skip
                continue
            for number, (a, b) in enumerate(zip(rows, html, strict=True), start=1):
                if a != b:
                    bad += 1
                    result.fail(f"report/{name}.csv line {number} differs from the report: "
                                f"{a} against {b}")  # fmt: skip
                    break
        if not bad:
            result.checks.append(f"{len(names)} tables of the report, HTML and CSV alike")


def plain(value: Decimal) -> str:
    """A decimal as the report writes it: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


class Contributions:
    """Every contribution's state at the export's end, recomputed from the entries by the
    rules the appliers follow (``contributions/services.py``): who may record, attest,
    dispute and resolve, and what an entry that breaks a rule leaves unchanged. Compared
    with ``report/contributions.csv`` when the export holds every entry up to its end."""

    kinds = ("facility.registered", "facility.updated", "compute.imported", "compute.attested",
             "data.contributed", "funds.contributed", "contribution.disputed",
             "contribution.resolved")  # fmt: skip

    def __init__(self, governance: Governance):
        self.governance = governance  # who is a member, whatever made it one
        self.facilities: dict[str, str] = {}  # code -> operator
        self.exports: set[tuple[str, str]] = set()
        self.imports: dict[str, dict] = {}
        self.items: dict[str, dict] = {}
        self.disputes: dict[str, dict] = {}

    @staticmethod
    def _secretariat(author: KeyState | None) -> bool:
        return author is not None and (author.kind, author.owner) == ("service", SECRETARIAT)

    @staticmethod
    def _member(author: KeyState | None) -> str | None:
        return author.owner if author is not None and author.kind == "member" else None

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        envelope = leaf["entry"]
        handler = getattr(self, "_" + envelope["kind"].replace(".", "_"))
        # A malformed payload could not have been appended: it changes nothing.
        with contextlib.suppress(KeyError, TypeError, ValueError, InvalidOperation,
                                 AttributeError):  # fmt: skip
            handler(index, envelope["payload"], author)

    def _facility_registered(self, index, p, author) -> None:
        f = p["facility"]
        if self._secretariat(author) and f["code"] not in self.facilities:
            self.facilities[f["code"]] = f["operator"]

    def _facility_updated(self, index, p, author) -> None:
        code = p["facility"]
        if code not in self.facilities or author is None:
            return
        allowed = self._secretariat(author) or (author.kind, author.owner) == ("facility", code)
        if allowed and "operator_id" in p["changes"]:
            self.facilities[code] = p["changes"]["operator_id"]

    def _compute_imported(self, index, p, author) -> None:
        code = p["facility"]
        if code not in self.facilities or author is None:
            return
        by_facility = (author.kind, author.owner) == ("facility", code)
        by_operator = (author.kind, author.owner) == ("member", self.facilities[code])
        if not (by_facility or by_operator or self._secretariat(author)):
            return
        if (code, p["export_sha256"]) in self.exports or p["import"] in self.imports:
            return
        rows = p["contributions"]
        if {c["member"] for c in rows} - set(self.governance.members):
            return
        ids = [c["contribution"] for c in rows]
        if len(set(ids)) != len(ids) or any(i in self.items for i in ids):
            return
        hours = [Decimal(c["gpu_hours"]) for c in rows]
        attested = index if by_facility else None
        self.exports.add((code, p["export_sha256"]))
        self.imports[p["import"]] = {"facility": code, "export": p["export_sha256"],
                                     "attested": attested, "ids": ids}  # fmt: skip
        for c, h in zip(rows, hours, strict=True):
            self.items[c["contribution"]] = {
                "member": c["member"], "kind": "compute", "recorded_in": index,
                "state": "counted" if attested else "reported", "attested": attested,
                "gpu_hours": h, "seconds": int(c["gpu_seconds"]), "accelerator": c["accelerator"],
                "tokens": None, "amount": None, "currency": None,
            }  # fmt: skip

    def _compute_attested(self, index, p, author) -> None:
        imported = self.imports.get(p["import"])
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

    def _new(self, index, p, author, kind: str, **fields) -> None:
        member = self._member(author)
        if member is None or p["contribution"] in self.items:
            return
        self.items[p["contribution"]] = {
            "member": member, "kind": kind, "recorded_in": index, "state": "counted",
            "attested": None, "gpu_hours": None, "tokens": None, "amount": None, "currency": None,
            **fields,
        }  # fmt: skip

    def _data_contributed(self, index, p, author) -> None:
        self._new(index, p, author, "data", tokens=p["dataset"].get("tokens"))

    def _funds_contributed(self, index, p, author) -> None:
        amount = Decimal(p["amount"])
        self._new(index, p, author, "funds", amount=amount, currency=p["currency"],
                  micros=int(amount * 1_000_000))  # fmt: skip

    def _contribution_disputed(self, index, p, author) -> None:
        item = self.items.get(p["contribution"])
        if self._member(author) is None or item is None:
            return
        if item["state"] not in ("counted", "reported") or p["dispute"] in self.disputes:
            return
        self.disputes[p["dispute"]] = {"contribution": p["contribution"], "open": True}
        item["state"] = "disputed"

    def _contribution_resolved(self, index, p, author) -> None:
        dispute = self.disputes.get(p["dispute"])
        if dispute is None or not dispute["open"] or not self._secretariat(author):
            return
        dispute["open"] = False
        cid = dispute["contribution"]
        if any(d["open"] and d["contribution"] == cid for d in self.disputes.values()):
            return
        item = self.items[cid]
        if p["outcome"] == "upheld":
            state = "void"
        elif item["kind"] == "compute" and item["attested"] is None:
            state = "reported"
        else:
            state = "counted"
        if item["state"] == "disputed":
            item["state"] = state

    def table(self, first: int, end: int, member: str | None) -> list[list[str]]:
        """The rows of report/contributions.csv (without its header)."""
        sums: dict[tuple, dict] = defaultdict(lambda: {"count": 0, "counted": 0, "held": 0,
                                                       "void": 0, "gpu_hours": Decimal(0),
                                                       "tokens": 0, "funds": defaultdict(Decimal)})  # fmt: skip
        for item in self.items.values():
            if not first <= item["recorded_in"] < end or (member and item["member"] != member):
                continue
            s = sums[(item["member"], item["kind"])]
            s["count"] += 1
            state = item["state"]
            s["counted" if state == "counted" else "void" if state == "void" else "held"] += 1
            s["gpu_hours"] += item["gpu_hours"] or 0
            s["tokens"] += item["tokens"] or 0
            if item["amount"] is not None:
                s["funds"][item["currency"]] += item["amount"]
        return [[m, k, str(s["count"]), str(s["counted"]), str(s["held"]), str(s["void"]),
                 plain(s["gpu_hours"]), str(s["tokens"]),
                 "; ".join(f"{c} {plain(a)}" for c, a in sorted(s["funds"].items()))]
                for (m, k), s in sorted(sums.items())]  # fmt: skip

    def finish(self, bundle: Bundle, result: Result) -> None:
        try:
            meta = json.loads(bundle.read("export.json"))
            figures = json.loads(bundle.read("report/figures.json"))
        except (KeyError, FileNotFoundError, ValueError):
            result.fail("export.json or report/figures.json: missing or not JSON")
            return
        first, end = meta.get("first"), meta.get("end")
        if meta.get("mode") != "range" or first != 0 or figures.get("as_of") != end:
            result.skipped.append("contributions: not recomputed (only an export of every entry "
                                 "from index 0 to the report's state holds all they rest on)")  # fmt: skip
            return
        name = "report/contributions.csv"
        if not bundle.has(name):
            result.fail(f"{name}: missing")
            return
        rows = _csv(bundle, name)
        mine = self.table(first, end, figures.get("member"))
        reported = {tuple(r[:2]): r for r in rows[1:] if len(r) >= 2}
        recomputed = {tuple(r[:2]): r for r in mine}
        bad = 0
        for key in sorted(set(reported) | set(recomputed)):
            if reported.get(key) != recomputed.get(key):
                bad += 1
                result.fail(f"{name}: {' '.join(key)} reads {reported.get(key)}, the entries "
                            f"give {recomputed.get(key)}")  # fmt: skip
        if not bad:
            result.checks.append(f"contributions per member and kind recomputed from the "
                                 f"entries ({len(self.items)} contributions): as reported")  # fmt: skip


# --- governance, as far as cost shares rest on it ----------------------------------------------

OPEN_STATES = ("open", "signed")
SIGNABLE_STATES = (*OPEN_STATES, "in_force")
APPLIED_BY_KEY_ENTRIES = ("key.revoke",)


def _day(leaf: dict) -> date:
    return date.fromisoformat(leaf["integrated_time"][:10])


class Governance:
    """Members, rules, proposals and agreements recomputed from the entries by the rules
    the appliers follow (``consortium/governance.py``, ``proposals.py``,
    ``agreements.py``). Decisions are recounted from the votes with the consortium's own
    tally (``consortium.voting``, pure); one part is taken as recorded: a rejection whose
    reason is that the proposal's actions no longer apply."""

    kinds = ("consortium.founded", "member.applied", "proposal.", "vote.cast", "agreement.")

    def __init__(self):
        self.rules: dict | None = None
        self.members: dict[str, dict] = {}
        self.proposals: dict[str, dict] = {}
        self.agreements: dict[str, dict] = {}
        self.tables: list[dict] = []
        self.recounted = 0
        self.ignored: list[str] = []

    @staticmethod
    def _secretariat(author: KeyState | None) -> bool:
        return author is not None and (author.kind, author.owner) == ("service", SECRETARIAT)

    def _opener_side(self, author: KeyState | None) -> tuple[str, str] | None:
        if self._secretariat(author):
            return ("service", SECRETARIAT)
        if author is not None and author.kind == "member" and (
            self.members.get(author.owner, {}).get("status") == "member"
        ):  # fmt: skip
            return ("member", author.owner)
        return None

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        envelope = leaf["entry"]
        handler = getattr(self, "_" + envelope["kind"].replace(".", "_"), None)
        if handler is None:
            return
        with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
            handler(index, leaf, envelope["payload"], author)

    # members and rules

    def _consortium_founded(self, index, leaf, p, author) -> None:
        if self.rules is None:
            self.rules = p["rules"]
            for m in p["members"]:
                self.members[m["code"]] = {"name": m["name"], "figures": m["figures"],
                                           "status": "member"}  # fmt: skip

    def _member_applied(self, index, leaf, p, author) -> None:
        m = p["member"]
        if self._secretariat(author) and m["code"] not in self.members:
            self.members[m["code"]] = {"name": m["name"], "figures": m["figures"],
                                       "status": "applicant"}  # fmt: skip

    # proposals

    def _proposal_opened(self, index, leaf, p, author) -> None:
        if self._opener_side(author) is None or self.rules is None:
            return
        if p["rule"] not in self.rules["voting"] or p["proposal"] in self.proposals:
            return
        eligible = {c: m["figures"] for c, m in sorted(self.members.items())
                    if m["status"] == "member"}  # fmt: skip
        self.proposals[p["proposal"]] = {
            "actions": p["actions"], "deadline": p["deadline"], "state": "open",
            "opener": self._opener_side(author), "rule": self.rules["voting"][p["rule"]],
            "eligible": eligible, "votes": {},
        }  # fmt: skip

    def _vote_cast(self, index, leaf, p, author) -> None:
        proposal = self.proposals.get(p["proposal"])
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
        figures = {"eligible": t.eligible, "voted": t.voted, "yes": t.yes, "no": t.no,
                   "abstain": t.abstain, "total_weight": str(t.total_weight),
                   "yes_weight": str(t.yes_weight), "quorum_met": t.quorum_met,
                   "rule_met": t.rule_met}  # fmt: skip
        if any(recorded.get(k) != v for k, v in figures.items()):
            return False
        if t.accepted:
            return outcome == "accepted" or (
                outcome == "rejected"
                and str(recorded.get("reason", "")).startswith("its actions no longer apply")
            )
        return outcome == ("expired" if not t.quorum_met else "rejected")

    def _proposal_withdrawn(self, index, leaf, p, author) -> None:
        proposal = self.proposals.get(p["proposal"])
        side = self._opener_side(author)
        if proposal is None or proposal["state"] != "open" or side is None:
            return
        if side[0] == "member" and proposal["opener"] != side:
            return
        proposal["state"] = "withdrawn"

    def _proposal_decided(self, index, leaf, p, author) -> None:
        proposal = self.proposals.get(p["proposal"])
        if proposal is None or proposal["state"] != "open" or not self._secretariat(author):
            return
        if parse_time(leaf["integrated_time"]) < parse_time(proposal["deadline"]):
            return
        if not self._counts(proposal, p["outcome"], p["tally"]):
            self.ignored.append(f"proposal.decided at index {index}")
            return  # the applier ignores it too: on the record, without effect
        self.recounted += 1
        proposal["state"] = p["outcome"]
        if p["outcome"] != "accepted":
            return
        for action in proposal["actions"]:
            if action["type"] not in APPLIED_BY_KEY_ENTRIES:
                self._action(action, index)
        if any(a["type"] == "rules.change" for a in proposal["actions"]):
            for other in self.proposals.values():
                if other["state"] == "open":
                    other["state"] = "dropped"

    def _action(self, action: dict, index: int) -> None:
        kind = action["type"]
        if kind == "valuation.adopt":
            t = action["table"]
            self.tables.append({"version": t["version"], "unit": t["unit"],
                                "weights": t["weights"], "unit_price": t.get("unit_price"),
                                "data_price": t.get("data_price"), "adopted_in": index})  # fmt: skip
        elif kind == "agreement.terminate":
            self._close(action["agreement"], "terminated")
        elif kind == "member.admit":
            m = action["member"]
            self.members[m["code"]] = {"name": m["name"], "figures": m["figures"],
                                       "status": "member"}  # fmt: skip
        elif kind == "rules.change":
            self.rules = action["rules"]
        elif kind in ("member.suspend", "member.reinstate", "member.withdraw", "member.figures"):
            member = self.members.get(action["code"])
            if member is None:
                return
            if kind == "member.figures":
                member["figures"] = action.get("figures")
            else:
                member["status"] = {"member.suspend": "suspended", "member.reinstate": "member",
                                    "member.withdraw": "withdrawn"}[kind]  # fmt: skip

    # agreements

    def _member_of(self, author: KeyState | None) -> str | None:
        return author.owner if author is not None and author.kind == "member" else None

    def _agreement_proposed(self, index, leaf, p, author) -> None:
        terms = p["terms"]
        if not (self._secretariat(author) or self._member_of(author) in terms["parties"]):
            return
        required = set(terms.get("required", terms["parties"]))
        self.agreements[p["agreement"]] = {
            "terms": terms, "terms_sha256": p["terms_sha256"],
            "document_sha256": p["document"]["sha256"], "supersedes": p["supersedes"],
            "state": "open", "proposed_in": index,
            "parties": {c: {"required": c in required, "signed": None, "withdrawn": None}
                        for c in terms["parties"]},
        }  # fmt: skip

    def _all_required_signed(self, a: dict) -> bool:
        return all(not party["required"] or (party["signed"] is not None
                                             and party["withdrawn"] is None)
                   for party in a["parties"].values())  # fmt: skip

    @staticmethod
    def bound(a: dict) -> set[str]:
        return {c for c, party in a["parties"].items()
                if party["signed"] is not None and party["withdrawn"] is None}  # fmt: skip

    def _agreement_signed(self, index, leaf, p, author) -> None:
        member = self._member_of(author)
        a = self.agreements.get(p["agreement"])
        if member is None or a is None or a["state"] not in SIGNABLE_STATES:
            return
        if (p["terms_sha256"], p["document_sha256"]) != (a["terms_sha256"], a["document_sha256"]):
            return
        party = a["parties"].get(member)
        if party is None or party["signed"] is not None or party["withdrawn"] is not None:
            return
        party["signed"] = index
        if a["state"] == "open" and self._all_required_signed(a):
            a["state"] = "signed"

    def _agreement_in_force(self, index, leaf, p, author) -> None:
        a = self.agreements.get(p["agreement"])
        if a is None or not self._secretariat(author) or a["state"] != "signed":
            return
        day = _day(leaf)
        effective = a["terms"]["effective"]
        if day < date.fromisoformat(effective["from"]):
            return
        if effective["until"] and day > date.fromisoformat(effective["until"]):
            return
        old = self.agreements.get(a["supersedes"]) if a["supersedes"] else None
        if a["supersedes"] and (old is None or old["state"] != "in_force"
                                or not self.bound(old) <= self.bound(a)):  # fmt: skip
            return
        a["state"] = "in_force"
        if old is not None and old["state"] == "in_force":
            old["state"] = "superseded"

    def _agreement_withdrawn(self, index, leaf, p, author) -> None:
        member = self._member_of(author)
        a = self.agreements.get(p["agreement"])
        if member is None or a is None or a["state"] not in SIGNABLE_STATES:
            return
        party = a["parties"].get(member)
        if party is None or party["withdrawn"] is not None:
            return
        party["withdrawn"] = index
        if a["state"] == "signed" and not self._all_required_signed(a):
            a["state"] = "open"

    def _close(self, agreement: str, state: str) -> None:
        a = self.agreements.get(agreement)
        if a is not None and a["state"] in SIGNABLE_STATES:
            a["state"] = state
        for other in self.agreements.values():
            if other["supersedes"] == agreement and other["state"] in OPEN_STATES:
                other["state"] = "terminated"

    def _agreement_terminated(self, index, leaf, p, author) -> None:
        a = self.agreements.get(p["agreement"])
        if self._secretariat(author) and a is not None and a["state"] in OPEN_STATES:
            a["state"] = "terminated"

    def _agreement_expired(self, index, leaf, p, author) -> None:
        a = self.agreements.get(p["agreement"])
        if a is None or not self._secretariat(author):
            return
        until = a["terms"]["effective"]["until"]
        if until and _day(leaf) > date.fromisoformat(until):
            self._close(p["agreement"], "expired")

    def finish(self, bundle: Bundle, result: Result) -> None:
        if self.recounted or self.ignored:
            result.checks.append(f"{self.recounted} decisions recounted from the votes"
                                 + (f"; without effect, as their votes do not give them: "
                                    f"{', '.join(self.ignored)}" if self.ignored else ""))  # fmt: skip


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
            lines = {c: costshare.Line(c, g.members.get(c, {}).get("name", ""),
                                       shares.get(c, costshare.ZERO)) for c in codes}  # fmt: skip
            items = [i for i in self.contributions.items.values()
                     if i["member"] in lines and i["state"] in ("counted", "reported", "disputed")]  # fmt: skip
            used: set = set()
            for lo, hi, table in costshare.windows(terms.get("valuation"), g.tables):
                window = [i for i in items if i["recorded_in"] >= lo and (hi is None or
                                                                          i["recorded_in"] < hi)]  # fmt: skip
                costshare.value_compute(_group(window, "compute", ("member", "accelerator", "state"),
                                               seconds=lambda i: i["seconds"]),
                                        table, terms, lines, notes, used)  # fmt: skip
                data = _group(window, "data", ("member", "state"),
                              token_sum=lambda i: i["tokens"] or 0,
                              untokened=lambda i: 1 if i["tokens"] is None else 0)  # fmt: skip
                costshare.value_data(data, table, terms, lines, notes, used)
            funds = _group(items, "funds", ("member", "currency", "state"),
                           micros=lambda i: i["micros"])  # fmt: skip
            costshare.value_funds(funds, terms, lines, notes)
            costshare.settle(terms, lines)
            for ln in lines.values():
                out.append([agreement_id, *costshare.csv_row(ln.as_dict())])
        return out

    def finish(self, bundle: Bundle, result: Result) -> None:
        try:
            meta = json.loads(bundle.read("export.json"))
            figures = json.loads(bundle.read("report/figures.json"))
        except (KeyError, FileNotFoundError, ValueError):
            return  # reported by Contributions
        if (
            meta.get("mode") != "range"
            or meta.get("first") != 0
            or figures.get("as_of") != meta.get("end")
        ):
            result.skipped.append("cost shares: not recomputed (only an export of every entry "
                                 "from index 0 to the report's state holds all they rest on)")  # fmt: skip
            return
        name = "report/cost_shares.csv"
        if not bundle.has(name):
            result.fail(f"{name}: missing")
            return
        reported = _csv(bundle, name)
        header = ["agreement", "member", *costshare.CSV_COLUMNS[2:]]
        if not reported or reported[0] != header:
            result.fail(f"{name}: not the cost-share table")
            return
        mine = {(r[0], r[1]): [r[0], r[1], *r[3:]] for r in self.rows()}
        theirs = {(r[0], r[1]): r for r in reported[1:] if len(r) >= 2}
        bad = 0
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                bad += 1
                result.fail(f"{name}: {key[1]} under agreement {key[0]} reads {theirs.get(key)}, "
                            f"the entries give {mine.get(key)}")  # fmt: skip
        if not bad:
            result.checks.append(f"cost shares and balances of {len(mine)} parties recomputed from "
                                 f"the entries: as reported")  # fmt: skip


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


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv, extensions=extensions(), prog="python -m contributions.audit")
    except BundleError as exc:
        print(f"FAIL {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
