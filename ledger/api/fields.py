"""Serializer fields that read numbers and dates written with the ASCII digits 0-9 only.

Python's ``int()``, ``Decimal()`` and the ``\\d`` of regular expressions also take other
scripts' digits (``int("١٢")`` is 12), and so do DRF's integer and date fields: these
refuse them, so that what a request says is what the ledger records, byte for byte.
"""

from __future__ import annotations

from rest_framework import serializers

ASCII_DIGITS = "write it with the digits 0-9"


def _ascii(field, data):
    if isinstance(data, str) and not data.isascii():
        field.fail("ascii")
    return data


class AsciiIntegerField(serializers.IntegerField):
    default_error_messages = {"ascii": f"A valid integer is required: {ASCII_DIGITS}."}

    def to_internal_value(self, data):
        return super().to_internal_value(_ascii(self, data))


class AsciiDateField(serializers.DateField):
    default_error_messages = {"ascii": f"A date, YYYY-MM-DD: {ASCII_DIGITS}."}

    def to_internal_value(self, data):
        return super().to_internal_value(_ascii(self, data))


class AsciiDateTimeField(serializers.DateTimeField):
    default_error_messages = {"ascii": f"An RFC 3339 time: {ASCII_DIGITS}."}

    def to_internal_value(self, data):
        return super().to_internal_value(_ascii(self, data))
