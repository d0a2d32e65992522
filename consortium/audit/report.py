"""The report inside an audit export: its tables, read from the projections as of the
report's state, and its files (a CSV file per table, the HTML page and its PDF, and
``report/figures.json``, which ``python -m consortium.audit.figures verify`` checks)."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal

from consortium.access.models import DownloadAuthorization, DownloadEvent
from consortium.audit import report_html
from consortium.audit.figures.common import VERIFY_COMMAND, contribution_bucket, plain
from consortium.audit.models import AuditExport
from consortium.governance.models import AccessGrant, Agreement, AgreementParty, Member, Proposal
from contributions.models import Contribution
from contributions.report import ReportError, cost_share_report
from ledger.core.envelope import parse_time
from ledger.services import Entry


def report_tables(*, member: str | None, first: int, end: int, period: tuple | None) -> dict:
    """The report's tables as {name: {"title", "columns", "rows"}}, read from the
    projections (the caller holds a snapshot whose tree size is ``end``); a member's
    report holds what concerns that member."""
    agreements = Agreement.objects.order_by("proposed_in")
    if member:
        agreements = agreements.filter(parties__member_id=member).distinct()
    return {
        "members": _members(),
        "agreements": _agreements(agreements),
        "signatures": _signatures(member, agreements),
        "decisions": _decisions(),
        "contributions": _contributions(member, first, end),
        "cost_shares": _cost_shares(member),
        "access_grants": _access_grants(member),
        "downloads": _downloads(member, first, end, period),
    }


def _table(title: str, columns, rows) -> dict:
    """A table of the report, its cells written as the CSV files and the page hold them."""
    return {
        "title": title,
        "columns": list(columns),
        "rows": [[report_html.cell("" if v is None else str(v)) for v in row] for row in rows],
    }


def _members() -> dict:
    return _table(
        "Members and their status",
        ("member", "name", "kind", "status", "registered_in", "changed_in"),
        [
            (m.code, m.name, m.kind, m.status, m.registered_in, m.changed_in)
            for m in Member.objects.order_by("code")
        ],
    )


def _agreements(agreements) -> dict:
    return _table(
        "Agreements",
        (
            "agreement",
            "version",
            "kind",
            "title",
            "state",
            "proposed_in",
            "in_force_in",
            "closed_in",
            "closed_reason",
        ),
        [
            (
                a.id,
                a.version,
                a.kind,
                a.title,
                a.state,
                a.proposed_in,
                a.in_force_in,
                a.closed_in,
                a.closed_reason,
            )
            for a in agreements
        ],
    )


def _signatures(member: str | None, agreements) -> dict:
    parties = AgreementParty.objects.select_related("agreement").order_by(
        "agreement__proposed_in", "member_id"
    )
    if member:
        parties = parties.filter(agreement__in=agreements)
    return _table(
        "Who signed which agreement",
        ("agreement", "title", "member", "required", "signed_in", "signed_at", "withdrawn_in"),
        [
            (
                p.agreement_id,
                p.agreement.title,
                p.member_id,
                "yes" if p.required else "no",
                p.signed_in,
                p.signed_at,
                p.withdrawn_in,
            )
            for p in parties
        ],
    )


def _decisions() -> dict:
    return _table(
        "Governance decisions",
        ("proposal", "title", "state", "opened_in", "closed_in", "tally"),
        [
            (
                p.id,
                p.title,
                p.state,
                p.opened_in,
                p.closed_in,
                json.dumps(p.tally, sort_keys=True, separators=(",", ":")) if p.tally else "",
            )
            for p in Proposal.objects.exclude(state="open").order_by("closed_in", "opened_in")
        ],
    )


def _contributions(member: str | None, first: int, end: int) -> dict:
    contributions = Contribution.objects.filter(recorded_in__gte=first, recorded_in__lt=end)
    if member:
        contributions = contributions.filter(member_id=member)
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
    for c in contributions.order_by("recorded_in"):
        s = sums[(c.member_id, c.kind)]
        s["count"] += 1
        s[contribution_bucket(c.state)] += 1
        s["disputed"] += 1 if c.disputed else 0
        s["gpu_hours"] += c.gpu_hours or 0
        s["tokens"] += c.tokens or 0
        if c.amount is not None:
            s["funds"][c.currency] += c.amount
    return _table(
        "Contributions recorded in the export's range, by their state as of the report's state",
        (
            "member",
            "kind",
            "count",
            "counted",
            "held",
            "void",
            "disputed",
            "gpu_hours",
            "tokens",
            "funds",
        ),
        [
            (
                m,
                k,
                s["count"],
                s["counted"],
                s["held"],
                s["void"],
                s["disputed"],
                plain(s["gpu_hours"]),
                s["tokens"],
                "; ".join(f"{cur} {plain(amt)}" for cur, amt in sorted(s["funds"].items())),
            )
            for (m, k), s in sorted(sums.items())
        ],
    )


def _cost_shares(member: str | None) -> dict:
    rows = []
    for a in Agreement.objects.filter(state=Agreement.State.IN_FORCE).order_by("proposed_in"):
        if "cost_sharing" not in a.terms:
            continue
        try:
            report = cost_share_report(a)
        except ReportError:
            continue
        for line in report.as_dict()["members"]:
            if member and line["member"] != member:
                continue
            d = line["delivered"]
            rows.append(
                (
                    a.id,
                    line["member"],
                    line["share"],
                    line["obligation"],
                    d["compute"],
                    d["data"],
                    d["funds"],
                    d["total"],
                    line["balance"],
                    line["ratio"] or "",
                    line["status"],
                    line["held"],
                    line["disputed"],
                )
            )
    return _table(
        "Cost shares and balances (agreements in force, as of the report's state)",
        (
            "agreement",
            "member",
            "share",
            "obligation",
            "compute",
            "data",
            "funds",
            "delivered",
            "balance",
            "ratio",
            "status",
            "held",
            "disputed",
        ),
        rows,
    )


def _access_grants(member: str | None) -> dict:
    grants = AccessGrant.objects.order_by("granted_in", "id")
    if member:
        grants = grants.filter(member_id=member)
    return _table(
        "Access grants and revocations",
        ("grant", "member", "scope", "checkpoints", "until", "reason", "granted_in", "revoked_in"),
        [
            (
                g.id,
                g.member_id,
                g.scope,
                " ".join(g.checkpoints or []) or "all",
                g.until,
                g.reason,
                g.granted_in,
                g.revoked_in,
            )
            for g in grants
        ],
    )


def _downloads(member: str | None, first: int, end: int, period: tuple) -> dict:
    authorized = Counter(
        DownloadAuthorization.objects.filter(
            authorized_in__gte=first, authorized_in__lt=end
        ).values_list("member_id", flat=True)
    )
    events = DownloadEvent.objects.all()
    if period[0] is not None:
        events = events.filter(at__gte=period[0])
    if period[1] is not None:
        events = events.filter(at__lt=period[1])
    served = Counter(events.filter(outcome="served").values_list("member", flat=True))
    denied = Counter(events.filter(outcome="denied").values_list("member", flat=True))
    codes = sorted(set(authorized) | set(served) | set(denied) - {""})
    if member:
        codes = [c for c in codes if c == member]
    return _table(
        "Downloads per member: authorised (ledger), files served and requests denied (access log)",
        ("member", "authorized", "served", "denied"),
        [(c, authorized[c], served[c], denied[c]) for c in codes],
    )


def _csv(t: dict) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(t["columns"])
    w.writerows(t["rows"])
    return out.getvalue().encode()


def access_log_window(first: int, end: int, size: int) -> tuple[datetime | None, datetime | None]:
    """The times the range covers, for the access log (which is not on the ledger): from
    the integration of its first entry to that of the first entry after it."""
    lo = parse_time(Entry.objects.get(index=first).integrated_time) if first > 0 else None
    hi = parse_time(Entry.objects.get(index=end).integrated_time) if end < size else None
    return lo, hi


def report_files(
    export: AuditExport, tables: dict, *, first: int, end: int, as_of: int, meta: dict
) -> list[tuple[str, bytes]]:
    """The report's files, rendered from its tables (outside the snapshot)."""
    figures = {
        "first": first,
        "end": end,
        "as_of": as_of,
        "member": export.member_id,
        "downloads": {row[0]: {"authorized": int(row[1])} for row in tables["downloads"]["rows"]},
        # What the report page is rendered from, besides the CSV files: the verifier
        # renders it again and compares.
        "report": {"meta": meta, "tables": [[name, t["title"]] for name, t in tables.items()]},
    }
    html = report_html.render(
        meta,
        [(name, t["title"], t["columns"], t["rows"]) for name, t in tables.items()],
        VERIFY_COMMAND,
    ).encode()
    files = [(f"report/{name}.csv", _csv(t)) for name, t in tables.items()]
    files.append(("report/report.html", html))
    files.append(("report/report.pdf", _pdf(html)))
    files.append(
        ("report/figures.json", json.dumps(figures, indent=2, sort_keys=True).encode() + b"\n")
    )
    return files


def _pdf(html: bytes) -> bytes:
    import weasyprint

    # WeasyPrint sets its own logger's level when imported; its warnings about font
    # subsetting without HarfBuzz are noise here.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)

    # The report is self-contained: no stylesheet, image or font is fetched.
    def refuse(url, *args, **kwargs):
        raise ValueError(f"the report fetches nothing ({url})")

    return weasyprint.HTML(string=html.decode(), url_fetcher=refuse).write_pdf()
