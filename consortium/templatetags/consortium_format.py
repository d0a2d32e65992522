"""How figures and times are shown to people: ``5 Dec 2026, 14:03 UTC`` and
``1,234,567.80`` (whatever the language, digits stay ASCII)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django import template
from django.utils.formats import date_format, number_format

register = template.Library()


@register.filter
def thousands(value) -> str:
    """A number (or its decimal string) with thousands separators, its decimals kept, in
    the separators of the person's language (1,234.5; 1 234,5 in French)."""
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    text = str(value)
    places = len(text.split(".", 1)[1]) if "." in text else 0
    return number_format(number, decimal_pos=places, force_grouping=True)


@register.filter
def utc(value) -> str:
    """A time as ``5 Dec 2026, 14:03 UTC`` (no seconds, no microseconds), in the
    DATETIME_FORMAT of the person's language ("5 déc. 2026, 14:03 UTC" in French)."""
    if not isinstance(value, datetime):
        return ""
    return date_format(value.astimezone(UTC), "DATETIME_FORMAT")
