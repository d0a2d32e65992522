"""The report's files in a bundle, read as the verifier compares them: whether the export
holds everything the report rests on, a CSV file's rows by their key, and a CSV file
against the rows recomputed from the entries (each cell written as the server writes it:
``consortium.audit.report_html.cell``)."""

from __future__ import annotations

import csv
import io
import json

from consortium.audit.report_html import cell
from ledger.audit import Bundle, Result


def whole_figures(bundle: Bundle, result: Result, what: str) -> dict | None:
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


def csv_rows(bundle: Bundle, result: Result, name: str, key: int) -> dict[tuple, list[str]] | None:
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


def compare(bundle: Bundle, result: Result, name: str, mine: list[list[str]], key: int) -> bool:
    """Compare a CSV file with the rows recomputed from the entries, row by row."""
    reported = csv_rows(bundle, result, name, key)
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
