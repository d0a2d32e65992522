"""Form fields that read numbers and dates written with the ASCII digits 0-9 only (Django's
own take other scripts' digits too: ``int("١٢")`` is 12)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy

ASCII_DIGITS = gettext_lazy("Write it with the digits 0-9.")


def _ascii(value):
    if isinstance(value, str) and not value.isascii():
        raise ValidationError(ASCII_DIGITS, code="ascii")
    return value


class AsciiIntegerField(forms.IntegerField):
    def to_python(self, value):
        return super().to_python(_ascii(value))


class AsciiDateField(forms.DateField):
    def to_python(self, value):
        return super().to_python(_ascii(value))
