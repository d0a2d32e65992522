"""Figures for people in templates: amounts with thousands separators.

Only for display: an amount in a form, a URL or the API keeps its plain digits.
"""

from __future__ import annotations

from django import template

from contributions.chart import amount as _amount
from contributions.chart import balance_status as _balance_status

register = template.Library()


@register.filter
def amount(value) -> str:
    """``1234567.89`` as ``1,234,567.89`` (its decimals as recorded; ``1 234 567,89`` in
    French); other text as is."""
    if value is None or value == "":
        return ""
    return _amount(value)


@register.filter
def balance_status(value) -> str:
    """A cost-share report's status ("on track", "behind", "critically behind") in the
    person's language; anything else as it is."""
    return _balance_status(value)
