"""Times for people in the admin: "5 Dec 2026, 14:03 UTC", never microseconds.

The ledger keeps times as RFC 3339 text (``2026-12-05T14:03:07.123456Z``), and some
projections copy that text; the API returns it as it is. The admin shows it through
``when``, in UTC, in the DATETIME_FORMAT of the person's language.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib import admin
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format


def when(value) -> str:
    """An RFC 3339 time (text or datetime) as people read it, in UTC; "-" for none, and
    text that is not a time as it is."""
    if value in (None, ""):
        return "-"
    moment = value if isinstance(value, datetime) else None
    if moment is None:
        try:
            moment = parse_datetime(str(value))
        except ValueError:
            moment = None
    if moment is None:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return date_format(moment.astimezone(UTC), "DATETIME_FORMAT")


def time_column(field: str, description):
    """An admin column (list_display, readonly_fields) showing the RFC 3339 text of
    ``field`` with ``when``, ordered by the field."""

    @admin.display(description=description, ordering=field)
    def column(self, obj):
        return when(getattr(obj, field))

    column.__name__ = f"{field}_shown"
    return column
