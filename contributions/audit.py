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

import csv
import io
import json
import sys
from collections import Counter
from html.parser import HTMLParser

from ledger.audit import Bundle, BundleError, Result, run
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

    def take(self, index: int, envelope: dict, author: KeyState | None) -> None:
        if author is None or (author.kind, author.owner) != ("service", SECRETARIAT):
            return  # the applier gives such an entry no effect
        member = envelope.get("payload", {}).get("member")
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

    def take(self, index: int, envelope: dict, author: KeyState | None) -> None:
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


def extensions() -> list:
    return [DownloadCounts(), ReportTables()]


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv, extensions=extensions(), prog="python -m contributions.audit")
    except BundleError as exc:
        print(f"FAIL {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
