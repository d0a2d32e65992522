"""A server-rendered SVG bar chart of a cost-share report (no script, no CDN)."""

from __future__ import annotations

from decimal import Decimal

from django.utils.html import escape

COLOURS = {"compute": "#2b6cb0", "data": "#2f855a", "funds": "#b7791f", "obligation": "#1a202c"}

# Approximate advance of a 12px sans-serif character: the drawing is widened to hold the
# longest label, so no label is cut at the right edge.
CHAR_WIDTH = 7.5


def cost_share_svg(report: dict, width: int = 720) -> str:
    """Per member: stacked bars of value delivered (compute, data, funds) and a marker
    at its obligation, on one scale; labels give the figures and the status.

    The drawing has a ``viewBox`` and no fixed size, so it scales to its container (the
    stylesheet gives it ``width: 100%``) down to a phone's width; its width in drawing
    units is widened to fit the longest label."""
    members = report["members"]
    row, top, left = 34, 28, 120
    height = top + row * max(1, len(members)) + 30
    peak = max(
        [Decimal("0.01")]
        + [max(Decimal(m["delivered"]["total"]), Decimal(m["obligation"])) for m in members]
    )
    scale = Decimal(width - left - 170) / peak
    unit = escape(report["accounting_unit"])
    body = []
    x = left
    for name in ("compute", "data", "funds"):
        body.append(
            f'<rect x="{x}" y="6" width="10" height="10" fill="{COLOURS[name]}"/>'
            f'<text x="{x + 14}" y="15">{name}</text>'
        )
        x += 80
    legend = f"obligation ({report['accounting_unit']})"
    body.append(
        f'<rect x="{x}" y="4" width="2" height="14" fill="{COLOURS["obligation"]}"/>'
        f'<text x="{x + 6}" y="15">{escape(legend)}</text>'
    )
    right = x + 6 + len(legend) * CHAR_WIDTH
    for i, m in enumerate(members):
        y = top + i * row
        body.append(f'<text x="4" y="{y + 15}">{escape(m["member"])}</text>')
        x = Decimal(left)
        for name in ("compute", "data", "funds"):
            w = Decimal(m["delivered"][name]) * scale
            if w > 0:
                body.append(
                    f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="16" '
                    f'fill="{COLOURS[name]}"><title>{name}: {escape(m["delivered"][name])} '
                    f"{unit}</title></rect>"
                )
            x += w
        ob = left + Decimal(m["obligation"]) * scale
        body.append(
            f'<rect x="{ob:.1f}" y="{y}" width="2" height="24" fill="{COLOURS["obligation"]}"/>'
        )
        ratio = m["ratio"] or "-"
        label = f"{m['delivered']['total']} / {m['obligation']} ({ratio}, {m['status']})"
        at = max(x, ob) + 6
        body.append(f'<text x="{at:.1f}" y="{y + 16}">{escape(label)}</text>')
        right = max(right, float(at) + len(label) * CHAR_WIDTH)
    view = max(width, int(right) + 8)
    # Presentation attributes rather than a <style> element: the pages' Content-Security-
    # Policy allows no inline style.
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {view} {height}" '
        f'class="cost-share-chart" preserveAspectRatio="xMinYMin meet" '
        f'role="img" aria-label="Value delivered against each obligation, in {unit}">'
        f'<g font-family="sans-serif" font-size="12" fill="#1a202c">' + "".join(body) + "</g></svg>"
    )
