"""The report's page (``report/report.html``), rendered again from the CSV files and
compared byte for byte."""

from __future__ import annotations

import csv
import io
import json

from consortium.audit import report_html
from consortium.audit.figures.common import VERIFY_COMMAND
from ledger.audit import Bundle, Result
from ledger.core.keyring import KeyState


class ReportTables:
    """``report/report.html`` is exactly the page rendered from the CSV files and the
    description in ``report/figures.json`` (``consortium.audit.report_html``, pure): byte for
    byte, so nothing can be shown that was not checked, nor hidden that was."""

    kinds = ()

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        return None

    def finish(self, bundle: Bundle, result: Result) -> None:
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
