"""Moments, days, shares and figures written for people ("5 Dec 2026, 14:03 UTC", "30%",
"1,234,567"), and keys and ledger entries as people read them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from consortium.governance.models import Member
from ledger.core.envelope import parse_time
from ledger.services import Entry, Key


def when(value) -> str:
    """A moment for people: "5 Dec 2026, 14:03 UTC" (no seconds, no microseconds), in the
    DATETIME_FORMAT of the person's language."""
    if not value:
        return ""
    moment = parse_time(value) if isinstance(value, str) else value
    return date_format(moment.astimezone(UTC), "DATETIME_FORMAT")


def entry_time(index) -> str:
    """When the ledger entry at ``index`` was integrated, for people."""
    entry = Entry.objects.filter(index=index).first() if index is not None else None
    return when(entry.integrated_time) if entry is not None else ""


def day(value) -> str:
    """A calendar day for people: "5 Dec 2026" (in the DATE_FORMAT of their language)."""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return date_format(value, "DATE_FORMAT")


def percent(share: Decimal) -> str:
    """A share as a percentage with at most two decimals: 0.3 -> "30%"."""
    value = (Decimal(share) * 100).quantize(Decimal("0.01")).normalize()
    return number_format(value, force_grouping=True) + "%"


def number(value) -> str:
    """A figure with thousands separators; whole numbers without decimals."""
    value = Decimal(str(value))
    whole = value == value.to_integral_value()
    return number_format(
        value.quantize(Decimal(1)) if whole else value.normalize(), force_grouping=True
    )


def time_left(deadline: datetime, now: datetime) -> str:
    """ "3 days, 4 hours left", "25 minutes left", or "the deadline has passed"."""
    seconds = int((deadline - now).total_seconds())
    if seconds <= 0:
        return _("the deadline has passed")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = max(1, rest // 60) if not (days or hours) else rest // 60
    if days:
        return _("%(days)s d %(hours)s h left") % {"days": days, "hours": hours}
    if hours:
        return _("%(hours)s h %(minutes)s min left") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)s min left") % {"minutes": minutes}


def key_label(fingerprint: str) -> str:
    """A key as people read it: its name and the start of its fingerprint."""
    if not fingerprint:
        return ""
    key = Key.objects.filter(fingerprint=fingerprint).first()
    name = key.name if key is not None else _("unknown key")
    return f"{name} ({fingerprint[:16]}…)"


def member_names(codes) -> dict[str, str]:
    """Members' names by code."""
    return dict(Member.objects.filter(code__in=list(codes)).values_list("code", "name"))
