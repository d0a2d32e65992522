"""The query filters of the API's lists: django-filter ``FilterSet``s, refused as the API
refuses any bad parameter (a 400 whose detail names the parameter and what it takes).

A filter left empty (``?state=``) reads as absent, as HTML forms send them. A parameter
that is a Python keyword is declared with a trailing underscore (``from_`` is ``from``).
"""

from __future__ import annotations

import keyword
from datetime import date

import django_filters
from django import forms
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend; an invalid filter is a 400 whose detail is each message,
    each naming its parameter."""

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise ValidationError([m for messages in filterset.errors.values() for m in messages])
        return filterset.qs


class IsoDateField(forms.DateField):
    """A day written YYYY-MM-DD (ISO 8601), not in the locale's formats."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from exc


class IsoDateFilter(django_filters.DateFilter):
    field_class = IsoDateField


class TrueFalseField(forms.Field):
    """``true`` or ``false``; anything else is refused (Django's boolean field would read
    it as absent)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if value not in ("true", "false"):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return value == "true"


class TrueFalseFilter(django_filters.BooleanFilter):
    field_class = TrueFalseField


class FilterSet(django_filters.FilterSet):
    """A list's filters, each refusal saying what the parameter takes: "state must be one
    of open, accepted, ..." unless the filter gives its own ``error_messages``."""

    @classmethod
    def get_filters(cls):
        filters = {}
        for name, f in super().get_filters().items():
            if name.endswith("_") and keyword.iskeyword(name[:-1]):
                name = name[:-1]
            messages = f.extra.setdefault("error_messages", {})
            if isinstance(f, TrueFalseFilter):
                messages.setdefault("invalid", f"{name} is true or false")
            elif isinstance(f, django_filters.ChoiceFilter):
                values = ", ".join(str(value) for value, _ in f.extra.get("choices", ()))
                messages.setdefault("invalid_choice", f"{name} must be one of {values}")
            elif isinstance(f, IsoDateFilter):
                messages.setdefault("invalid", f"{name} is a date, YYYY-MM-DD")
            filters[name] = f
        return filters


def choices(values) -> list[tuple[str, str]]:
    """``(value, value)`` pairs for a ``ChoiceFilter`` of plain values."""
    return [(v, v) for v in values]
