"""A server-rendered SVG bar chart of a cost-share report (no script, no CDN)."""

from __future__ import annotations

from decimal import Decimal

from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.translation import gettext, gettext_lazy

COLOURS = {"compute": "#2b6cb0", "data": "#2f855a", "funds": "#b7791f", "obligation": "#1a202c"}


# The chart is drawn on this many user units per character of its 12 px labels (an
# over-estimate for sans-serif digits), so that the longest label fits inside the viewBox.
CHAR = 7.2


def cost_share_svg(report: dict, bars: int = 440) -> str:
    """Per member: stacked bars of value delivered (compute, data, funds) and a marker
    at its obligation, on one scale; labels give the figures and the status.

    The SVG scales to its container (viewBox, width 100 % in site.css): the drawing is
    ``bars`` units of bars plus room for the longest label, so no label is clipped at any
    width."""
    members = report["members"]
    row, top, left = 34, 28, 120
    height = top + row * max(1, len(members)) + 30
    peak = max(
        [Decimal("0.01")]
        + [max(Decimal(m["delivered"]["total"]), Decimal(m["obligation"])) for m in members]
    )
    scale = Decimal(bars) / peak
    unit = escape(report["accounting_unit"])
    labels = [
        f"{amount(m['delivered']['total'])} / {amount(m['obligation'])} "
        f"({m['ratio'] or '-'}, {balance_status(m['status'])})"
        for m in members
    ]
    names = {"compute": gettext("compute"), "data": gettext("data"), "funds": gettext("funds")}
    obligation = gettext("obligation (%(unit)s)") % {"unit": report["accounting_unit"]}
    described = gettext("Value delivered against each obligation, in %(unit)s") % {
        "unit": report["accounting_unit"]
    }
    legend = 3 * 80 + 6 + len(obligation) * CHAR
    room = max([legend - bars] + [len(label) * CHAR + 12 for label in labels])
    width = int(left + bars + room) + 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart cost-share-chart" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMinYMin meet" role="img" '
        f'aria-label="{escape(described)}">',
    ]
    x = left
    for name in ("compute", "data", "funds"):
        parts.append(
            f'<rect x="{x}" y="6" width="10" height="10" fill="{COLOURS[name]}"/>'
            f'<text x="{x + 14}" y="15">{escape(names[name])}</text>'
        )
        x += 80
    parts.append(
        f'<rect x="{x}" y="4" width="2" height="14" fill="{COLOURS["obligation"]}"/>'
        f'<text x="{x + 6}" y="15">{escape(obligation)}</text>'
    )
    for i, (m, label) in enumerate(zip(members, labels, strict=True)):
        y = top + i * row
        parts.append(f'<text x="4" y="{y + 15}">{escape(m["member"])}</text>')
        x = Decimal(left)
        for name in ("compute", "data", "funds"):
            w = Decimal(m["delivered"][name]) * scale
            if w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="16" '
                    f'fill="{COLOURS[name]}"><title>{escape(names[name])}: '
                    f"{escape(amount(m['delivered'][name]))} {unit}</title></rect>"
                )
            x += w
        ob = left + Decimal(m["obligation"]) * scale
        parts.append(
            f'<rect x="{ob:.1f}" y="{y}" width="2" height="24" fill="{COLOURS["obligation"]}"/>'
        )
        parts.append(f'<text x="{max(x, ob) + 6:.1f}" y="{y + 16}">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def amount(value) -> str:
    """A decimal amount for people: thousands separated, its decimals kept (1,234,567.89;
    1 234 567,89 in French)."""
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    if not number.is_finite():
        return str(value)
    places = max(0, -number.as_tuple().exponent)
    return number_format(number, decimal_pos=places, force_grouping=True)


# A member's standing against its share, as the report writes it (the API and the CSV keep
# these English words), for people in their language.
BALANCE_STATUS = {
    "on track": gettext_lazy("on track"),
    "behind": gettext_lazy("behind"),
    "critically behind": gettext_lazy("critically behind"),
}


def balance_status(value) -> str:
    """A report's status ("on track", "behind", "critically behind") in the person's
    language; anything else as it is."""
    return str(BALANCE_STATUS.get(value, value))
