"""The audit report as HTML: a pure function of its tables and its description.

Pure Python (no Django), so that the offline verifier renders the report again from the
CSV files and ``report/figures.json`` and compares it byte for byte with
``report/report.html``: what an auditor reads is exactly what was checked, with no room
for a hidden table, a style that hides a row, or a figure that is not in the CSV.
"""

from __future__ import annotations

import re
from html import escape

_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def cell(value: str) -> str:
    """A table cell as the CSV files hold it: text a spreadsheet would run as a formula
    (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, other than a
    number) gets a leading apostrophe, which spreadsheets show as text."""
    if value and value[0] in "=+-@\t\r" and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


STYLE = """\
@page { size: A4 landscape; margin: 14mm; @bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 8pt; } }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 9pt; color: #111; margin: 1.5em; }
h1 { font-size: 16pt; margin-bottom: 0.2em; }
h2 { font-size: 12pt; margin-top: 1.6em; border-bottom: 1px solid #999; page-break-after: avoid; }
table { border-collapse: collapse; width: 100%; margin-top: 0.4em; }
th, td { border: 1px solid #bbb; padding: 2px 4px; text-align: left; vertical-align: top; word-break: break-word; }
th { background: #eee; }
tr { page-break-inside: avoid; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dt { font-weight: bold; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; }
.empty { color: #666; font-style: italic; }
"""


def _e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def render(
    meta: dict, tables: list[tuple[str, str, list[str], list[list[str]]]], verify: str
) -> str:
    """The report: ``meta`` describes the export; ``tables`` are (name, title, columns,
    rows) in order; ``verify`` is the command that checks the bundle."""
    period = meta.get("period") or {}
    scope = f"what concerns member {_e(meta['member'])}" if meta.get("member") else "everything"
    span = f"indexes {_e(meta['first'])} to {_e(meta['end'])} (exclusive)"
    if period.get("from") or period.get("to"):
        span += (
            f", the period {_e(period.get('from') or 'start')} to {_e(period.get('to') or 'now')}"
        )
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>Audit report {_e(meta['export'])}</title>",
        f"<style>\n{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>Audit report{': ' + _e(meta['consortium']) if meta.get('consortium') else ''}</h1>",
        "<dl>",
        f"<dt>Export</dt><dd><code>{_e(meta['export'])}</code></dd>",
        f"<dt>Log</dt><dd><code>{_e(meta['origin'])}</code></dd>",
        f"<dt>Verifier key</dt><dd><code>{_e(meta['verifier_key'])}</code></dd>",
        f"<dt>Scope</dt><dd>{scope}</dd>",
        f"<dt>Entries</dt><dd>{span}</dd>",
        f"<dt>State as of</dt><dd>tree size {_e(meta['as_of'])}: members, agreements, cost "
        f"shares and grants are as the entries before it leave them</dd>",
        f"<dt>Requested by</dt><dd>{_e(meta['requested_by'])}, {_e(meta['created'])}</dd>",
        "</dl>",
        "<p>Everything in this report can be checked offline against the signed entries in "
        "the same bundle, with Python and PyNaCl only: "
        f"<code>{_e(verify)} &lt;bundle.zip&gt; --vkey &#x27;{_e(meta['verifier_key'])}&#x27;</code>. "
        "The verifier renders this page again from the CSV files and compares it byte for "
        "byte. Served files and denied requests come from the access log, which is not on "
        "the ledger.</p>",
    ]
    for name, title, columns, rows in tables:
        out.append(f'<h2 id="{_e(name)}">{_e(title)}</h2>')
        if rows:
            out.append("<table>")
            out.append(
                "<thead><tr>" + "".join(f"<th>{_e(c)}</th>" for c in columns) + "</tr></thead>"
            )
            out.append("<tbody>")
            for row in rows:
                out.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>")
            out.append("</tbody>")
            out.append("</table>")
        else:
            out.append('<p class="empty">None.</p>')
        out.append(f'<p class="empty">Also in <code>report/{_e(name)}.csv</code>.</p>')
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
