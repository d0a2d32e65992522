"""How figures and times are shown to people: ``5 Dec 2026, 14:03 UTC`` and
``1,234,567.80`` (whatever the language, digits stay ASCII)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def thousands(value) -> str:
    """A number (or its decimal string) with thousands separators, its decimals kept."""
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    text = str(value)
    places = len(text.split(".", 1)[1]) if "." in text else 0
    return f"{number:,.{places}f}"


@register.filter
def utc(value) -> str:
    """A time as ``5 Dec 2026, 14:03 UTC`` (no seconds, no microseconds)."""
    if not isinstance(value, datetime):
        return ""
    return f"{value.day} {value:%b %Y, %H:%M} UTC"
